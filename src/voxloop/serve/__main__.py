"""``python -m voxloop.serve --model DIR ...``: the serve command on its own."""

from __future__ import annotations

import argparse
import sys

from voxloop.errors import VoxloopError
from voxloop.serve.command import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxloop serve", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except VoxloopError as e:
        print(f"voxloop serve: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
