import sys

from hpc_portal.cli import main

sys.exit(main())
