"""The domain layer: the stack-config schema and its validators, the EC2 instance catalog, limits
and the pure derivations (placement, Spot share, performance, cost). It imports nothing from the
layers above it (the component library, the application, the command line)."""
