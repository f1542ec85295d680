"""`python -m flmn_core COMMAND ...`: the `flmn` command without installing the package."""

import sys

from flmn_core.cli import main

sys.exit(main())
