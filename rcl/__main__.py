import sys

from rcl.cli import main

sys.exit(main())
