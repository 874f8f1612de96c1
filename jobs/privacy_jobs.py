"""Privacy job (thin call into core): anonymise patients past the retention period."""

from __future__ import annotations

from core.platform.formatting import to_local
from core.platform.permissions import SYSTEM
from core.privacy import anonymise
from jobs.spec import JobContext


def retention(ctx: JobContext) -> str:
    with ctx.session_scope() as session:
        done = anonymise.anonymise_expired(
            session, SYSTEM, today=to_local(ctx.now).date(), now=ctx.now,
            retention_days=ctx.settings.PATIENT_RETENTION_DAYS,
        )
    return f"{done} {'Patient:in' if done == 1 else 'Patient:innen'} anonymisiert"
