"""Entry point of `python -m jobs`."""

import os

from core.platform.config import load_or_exit
from jobs.options import interval_override_or_exit

# Bad settings end here with one line and exit 2, before the heavy imports below.
load_or_exit()
interval_override_or_exit(os.environ)

from jobs.process import main  # noqa: E402

raise SystemExit(main())
