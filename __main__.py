"""Entry point for `pulumi up` / `pulumi preview`: the whole program lives in hpc_platform.program."""

from hpc_platform.program import program

program()
