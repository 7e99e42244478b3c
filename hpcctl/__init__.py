"""hpcctl: the platform's command line (validate, plan, check, catalog)."""
