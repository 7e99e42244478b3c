"""Custom CloudWatch metrics the head node's monitoring agent publishes, and dashboards/alarms read."""

SLURM_NAMESPACE = "HPC/Slurm"
# Dimensions: ClusterName, and Queue for the per-queue metrics.
SLURM_PENDING_JOBS = "PendingJobs"
SLURM_RUNNING_JOBS = "RunningJobs"
SLURM_IDLE_NODES = "IdleNodes"
SLURM_ALLOCATED_NODES = "AllocatedNodes"
SLURM_DOWN_NODES = "DownNodes"
SPOT_INTERRUPTIONS = "SpotInterruptions"
