import sys

from wakecall.cli import main

sys.exit(main())
