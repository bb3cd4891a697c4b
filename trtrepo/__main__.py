"""``python -m trtrepo``: the same as the ``trtrepo`` command."""

import sys

from trtrepo.cli import main

if __name__ == "__main__":
    sys.exit(main())
