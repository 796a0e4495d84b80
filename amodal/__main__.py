"""``python -m amodal <command>``: the same as the ``amodal`` script (:mod:`amodal.cli`)."""
import sys

from amodal.cli import main

if __name__ == "__main__":
    sys.exit(main())
