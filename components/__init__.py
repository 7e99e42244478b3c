"""Components of the HPC platform; each module holds one ComponentResource."""
