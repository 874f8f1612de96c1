"""The stable contract name for the canonical weekly time windows (docs/architecture.md,
"Contracts"): the implementation lives in core.platform.timewindows."""

from core.platform.timewindows import *  # noqa: F401,F403
from core.platform.timewindows import format, parse  # noqa: F401
