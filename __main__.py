"""Entry point for `pulumi up` / `pulumi preview`: the whole program lives in hpc_platform.app.program."""

from hpc_platform.app.program import program

program()
