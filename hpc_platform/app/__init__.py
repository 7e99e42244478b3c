"""The application layer: the Pulumi program and its config-to-args wiring, the per-environment
table, the offline engine, the Automation API entry point and the plan report. It builds on the
component library (`components/`) and the domain layer (`hpc_platform.domain`)."""
