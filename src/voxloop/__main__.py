"""``python -m voxloop`` is the ``voxloop`` command."""

import sys

from voxloop.cli import main

sys.exit(main())
