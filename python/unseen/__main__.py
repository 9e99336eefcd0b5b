"""``python -m unseen ...``: the unseen command line, run in this process (the same commands,
options and output as the ``unseen`` binary)."""

import sys

from . import _native


def main() -> int:
    return _native.cli_main(["unseen", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
