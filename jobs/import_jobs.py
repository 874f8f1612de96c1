"""Import jobs (thin calls into core): the watched folder IMPORT_FOLDER every few minutes and,
only when ARZTSUCHE_LIVE is set, the polite live refresh of the configured search areas."""

from __future__ import annotations

from core.imports.sources import process_folder, refresh_live
from core.platform.permissions import SYSTEM
from jobs.spec import JobContext


def import_folder(ctx: JobContext) -> str:
    folder = ctx.settings.path(ctx.settings.IMPORT_FOLDER)
    summary = process_folder(
        ctx.session_scope, SYSTEM, folder, now=ctx.now, include_children_only=ctx.settings.IMPORT_CHILDREN_ONLY
    )
    return summary.message()


def live_refresh(ctx: JobContext) -> str:
    if not ctx.settings.ARZTSUCHE_LIVE:
        return "Live-Abruf ausgeschaltet (ARZTSUCHE_LIVE)."
    return refresh_live(ctx.session_scope, SYSTEM, ctx.settings, now=ctx.now).message()
