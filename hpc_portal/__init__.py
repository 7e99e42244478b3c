"""hpc-portal: the self-service portal's command line (serve, worker, user add, migrate)."""
