"""``python -m mlops_cli``: the ``mlops`` command before it is installed as a console script."""

from __future__ import annotations

import sys

from mlops_cli.cli import main

sys.exit(main())
