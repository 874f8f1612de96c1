"""The composition root of core: wires every capability's event handlers onto the bus.

Every entry point calls `bootstrap()` once at start-up (the dashboard, the job runner, the
demo loader, the CLI, benchmarks and the test suite); publishing an event before that
raises (core.platform.events.BusNotWired), so no consequence is ever skipped silently.
"""

from __future__ import annotations

from core.calls import handlers as call_handlers
from core.inquiries import handlers as inquiry_handlers
from core.mail import handlers as mail_handlers
from core.platform import events, lengths, logs


def bootstrap() -> None:
    logs.install()  # log lines never carry personal data (core/platform/logs.py)
    lengths.install()  # an overlong text is a validation error, never a database error
    if events.is_wired():
        return
    mail_handlers.register()
    inquiry_handlers.register()
    call_handlers.register()
    events.mark_wired()
