import sys

from hpcctl.cli import main

sys.exit(main())
