"""``python -m rcl``: runs the command line (:mod:`rcl.cli`).

Layer: outer shell.
"""

import sys

from rcl.cli import main

sys.exit(main())
