"""The portal's own deployment: see hpc_platform/app/portal/deploy.py and docs/portal.md."""

from hpc_platform.app.portal.deploy import program

program()
