"""``python -m dsmsyncd.cli``: the same as the ``dsmsyncd`` console script."""

import sys

from dsmsyncd.cli.main import main

sys.exit(main())
