"""Calls: the phone side of the work (issue 10) – when to call, capacity, the call list.

Pure rules live in `slots` (when one therapist can be phoned) and `schedule` (planning many
calls under the agency's phone capacity). Contract (DESIGN §14): `next_call_slot`.
"""

from core.calls.schedule import (
    BookedCall,
    CallBoard,
    CallRequest,
    PlannedCall,
    schedule_calls,
)
from core.calls.slots import (
    BERLIN,
    DEFAULT_FALLBACK_PHONE_HOURS,
    FALLBACK_LABEL,
    next_call_slot,
    window_end_at,
)

__all__ = [
    "BERLIN",
    "BookedCall",
    "CallBoard",
    "CallRequest",
    "DEFAULT_FALLBACK_PHONE_HOURS",
    "FALLBACK_LABEL",
    "PlannedCall",
    "next_call_slot",
    "schedule_calls",
    "window_end_at",
]
