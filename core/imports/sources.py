"""Where import files come from: uploads (several files, ZIP archives of many), the watched
folder `IMPORT_FOLDER` the job runner processes, and the optional live fetch (`ARZTSUCHE_LIVE`).

Every file becomes its own run (`core.imports.runs`). Files uploaded together are read
first, so a therapist listed in one of them is not delisted by another. The live fetch is
off unless configured; when it runs, it asks for each configured area at most once per
`ARZTSUCHE_REFRESH_DAYS`, a few areas per run (spread over the week), one request at a time
with the client's minimum interval, and stops at the first refusal (docs/architecture.md,
"Imports").
"""

from __future__ import annotations

import io
import math
import shutil
import zipfile
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Optional, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.adapters.arztsuche_client import ArztsucheClient, ArztsucheConfigError, ArztsucheError, FetchResult, LiveArea
from core.geo.plz import plz_centroid
from core.imports import diff, runs
from core.imports.parse import parse_bytes
from core.imports.records import ImportFormatError, ParseResult
from core.platform import audit
from core.platform.config import Settings
from core.platform.formatting import BERLIN, format_datetime
from core.platform.locks import lock_import_queue
from core.platform.models import ImportRun
from core.platform.permissions import Actor, Permission
from core.platform.vocab import ImportRunStatus

MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_ZIP_MEMBERS = 5000
MAX_ZIP_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
ACCEPTED_SUFFIXES = (".json", ".zip")

ProgressCallback = Callable[[float, str], None]


# --------------------------------------------------------------------------- uploads and ZIP archives


@dataclass
class UploadedFile:
    name: str
    raw: bytes


def expand_uploads(files: Sequence[UploadedFile]) -> tuple[list[UploadedFile], list[str]]:
    """JSON files as they are, ZIP archives as their JSON members; German problems for the rest."""
    out: list[UploadedFile] = []
    problems: list[str] = []
    for f in files:
        name = f.name or "unbenannt"
        low = name.lower()
        if low.endswith(".zip") or f.raw[:4] == b"PK\x03\x04":
            members, member_problems = _zip_members(name, f.raw)
            out.extend(members)
            problems.extend(member_problems)
        elif len(f.raw) > MAX_FILE_BYTES:
            problems.append(f"„{name}“ ist größer als {MAX_FILE_BYTES // (1024 * 1024)} MB und wurde nicht gelesen.")
        else:
            out.append(UploadedFile(name, f.raw))
    return out, problems


def _zip_members(name: str, raw: bytes) -> tuple[list[UploadedFile], list[str]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        return [], [f"„{name}“ ist kein lesbares ZIP-Archiv (beschädigt oder unvollständig)."]
    members: list[UploadedFile] = []
    problems: list[str] = []
    infos = [i for i in archive.infolist() if not i.is_dir() and not Path(i.filename).name.startswith(".") and "__MACOSX" not in i.filename]
    if len(infos) > MAX_ZIP_MEMBERS:
        return [], [f"„{name}“ enthält mehr als {MAX_ZIP_MEMBERS} Dateien; bitte in mehrere Archive aufteilen."]
    total = 0
    for info in sorted(infos, key=lambda i: i.filename):
        member = f"{name}/{info.filename}"
        if not info.filename.lower().endswith(".json"):
            problems.append(f"„{member}“ ist keine JSON-Datei und wurde übergangen.")
            continue
        total += info.file_size
        if info.file_size > MAX_FILE_BYTES or total > MAX_ZIP_TOTAL_BYTES:
            problems.append(f"„{member}“ ist zu groß und wurde nicht gelesen.")
            continue
        try:
            members.append(UploadedFile(member, archive.read(info)))
        except (zipfile.BadZipFile, OSError, EOFError):
            problems.append(f"„{member}“ konnte nicht entpackt werden (Archiv beschädigt).")
    if not members and not problems:
        problems.append(f"„{name}“ enthält keine JSON-Dateien.")
    return members, problems


def import_uploads(
    session: Session,
    actor: Actor,
    files: Sequence[UploadedFile],
    *,
    now: datetime,
    source: str = runs.SOURCE_UPLOAD,
    include_children_only: bool = False,
    progress: Optional[ProgressCallback] = None,
) -> tuple[list[runs.RunOutcome], list[str]]:
    """One run per JSON file (ZIPs expanded). Returns the outcomes and problems with files
    that could not even be opened. `progress(fraction, text)` while reading."""
    actor.require(Permission.edit)
    lock_import_queue(session)  # before RunContext reads the pending proposals
    expanded, problems = expand_uploads(files)
    today = now.astimezone(BERLIN).date()
    context = runs.RunContext(session)
    parsed: list[ParseResult | ImportFormatError] = []
    for i, f in enumerate(expanded):
        def report(done: int, total: int, i=i, name=f.name) -> None:
            if progress is not None and total:
                progress(0.5 * (i + done / total) / max(1, len(expanded)), f"{name}: {done} von {total} Einträgen gelesen")

        try:
            parsed.append(parse_bytes(f.raw, reference_date=today, progress=report, reuse=context.reuse))
        except ImportFormatError as exc:
            parsed.append(exc)
    outcomes: list[runs.RunOutcome] = []
    # who is listed in any file of the upload is not delisted by another file of it
    seen_in_batch = (
        context.seen_in(r for p in parsed if isinstance(p, ParseResult) for r in p.records)
        | {context.digests[d] for p in parsed if isinstance(p, ParseResult) for d in p.reused}
    ) if len(parsed) > 1 else set()
    for i, (f, result) in enumerate(zip(expanded, parsed)):
        if progress is not None:
            progress(0.5 + 0.5 * i / max(1, len(expanded)), f"{f.name}: Änderungen werden ermittelt …")
        outcomes.append(
            runs.import_file(
                session, actor, filename=f.name, raw=f.raw, now=now, source=source,
                include_children_only=include_children_only, parsed=result, seen_elsewhere=seen_in_batch,
                context=context,
            )
        )
    if progress is not None:
        progress(1.0, "Fertig")
    return outcomes, problems


# --------------------------------------------------------------------------- the watched folder


@dataclass
class FolderSummary:
    files: int = 0
    outcomes: list[runs.RunOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def message(self) -> str:
        if not self.files:
            return "Importordner leer."
        done = sum(1 for o in self.outcomes if o.status == ImportRunStatus.done.value)
        failed = sum(1 for o in self.outcomes if o.failed)
        skipped = sum(1 for o in self.outcomes if o.already_imported)
        new = sum(o.counts.get("new", 0) for o in self.outcomes)
        changed = sum(o.counts.get("changed", 0) for o in self.outcomes)
        delisted = sum(o.counts.get("delisted", 0) for o in self.outcomes)
        text = (
            f"{self.files} Dateien: {done} gelesen, {skipped} bereits importiert, {failed} fehlerhaft; "
            f"{new} neu, {changed} geändert, {delisted} nicht mehr gelistet zur Prüfung."
        )
        if self.problems:
            text += " " + " ".join(self.problems[:3])
        return text


def folder_files(folder: Path) -> list[Path]:
    """The files waiting in the folder (top level only; done/ and failed/ are not read)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in ACCEPTED_SUFFIXES and not p.name.startswith("."))


def process_folder(
    session_scope: Callable[[], AbstractContextManager[Session]],
    actor: Actor,
    folder: Path,
    *,
    now: datetime,
    include_children_only: bool = False,
) -> FolderSummary:
    """Import every waiting file, each in its own unit of work; read files move to done/,
    files that could not be read to failed/ (after the commit, so nothing is lost)."""
    summary = FolderSummary()
    for path in folder_files(folder):
        summary.files += 1
        try:
            raw = path.read_bytes()
        except OSError as exc:
            summary.problems.append(f"„{path.name}“ nicht lesbar: {exc.strerror or exc}.")
            continue
        with session_scope() as session:
            outcomes, problems = import_uploads(
                session, actor, [UploadedFile(path.name, raw)], now=now, source=runs.SOURCE_FOLDER,
                include_children_only=include_children_only,
            )
        summary.outcomes.extend(outcomes)
        summary.problems.extend(problems)
        ok = outcomes and not all(o.failed for o in outcomes)
        _move(path, folder / ("done" if ok else "failed"), now)
    return summary


def _move(path: Path, target_dir: Path, now: datetime) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    if target.exists():
        target = target_dir / f"{path.stem}-{now.astimezone(BERLIN):%Y%m%d-%H%M%S}{path.suffix}"
    shutil.move(str(path), str(target))


# --------------------------------------------------------------------------- the live fetch


@dataclass
class LiveStatus:
    """What the page says about the live fetch."""

    enabled: bool
    explanation: str
    last_at: Optional[datetime] = None
    last_message: str = ""
    areas: list[str] = field(default_factory=list)


OFF_EXPLANATION = (
    "Der Live-Abruf ist ausgeschaltet (ARZTSUCHE_LIVE ist nicht gesetzt). Seit Dezember 2025 beantwortet die "
    "Arztsuche 116117 automatisierte Anfragen nicht mehr (HTTP 500); die Daten kommen deshalb aus Antwortdateien, "
    "die Sie in Ihrem Browser speichern und hier hochladen oder in den Importordner legen."
)


def parse_areas(text: str) -> tuple[list[tuple[str, float]], list[str]]:
    """``"50667:25, 10115:10"`` → [("50667", 25.0), ("10115", 10.0)]; problems in German."""
    areas: list[tuple[str, float]] = []
    problems: list[str] = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        plz, _, radius = part.partition(":")
        plz = plz.strip()
        try:
            km = float(radius.strip().replace(",", ".")) if radius.strip() else 10.0
        except ValueError:
            problems.append(f"ARZTSUCHE_AREAS: Umkreis „{radius.strip()}“ bei {plz} ist keine Zahl.")
            continue
        if not (len(plz) == 5 and plz.isdigit()):
            problems.append(f"ARZTSUCHE_AREAS: „{plz}“ ist keine fünfstellige PLZ.")
            continue
        if not 1 <= km <= 100:
            problems.append(f"ARZTSUCHE_AREAS: Umkreis {km:g} km bei {plz} liegt nicht zwischen 1 und 100 km.")
            continue
        areas.append((plz, km))
    return areas, problems


def live_config_problems(settings: Settings) -> list[str]:
    problems = []
    if not settings.ARZTSUCHE_CONTACT.strip():
        problems.append("ARZTSUCHE_CONTACT fehlt (Kontaktadresse für den User-Agent).")
    if not settings.ARZTSUCHE_AUTHORIZATION.strip():
        problems.append("ARZTSUCHE_AUTHORIZATION fehlt.")
    areas, area_problems = parse_areas(settings.ARZTSUCHE_AREAS)
    problems.extend(area_problems)
    if not areas and not area_problems:
        problems.append("ARZTSUCHE_AREAS ist leer (keine Suchgebiete).")
    return problems


def _last_live_runs(session: Session) -> dict[str, ImportRun]:
    out: dict[str, ImportRun] = {}
    for run in session.execute(
        select(ImportRun).where(ImportRun.source == runs.SOURCE_LIVE).order_by(ImportRun.id.desc()).limit(500)
    ).scalars():
        label = (run.details or {}).get("area")
        if label and label not in out:
            out[label] = run
    return out


def live_status(session: Session, actor: Actor, settings: Settings) -> LiveStatus:
    actor.require(Permission.edit)
    last = session.execute(
        select(ImportRun).where(ImportRun.source == runs.SOURCE_LIVE).order_by(ImportRun.id.desc()).limit(1)
    ).scalar_one_or_none()
    last_at = last.started_at if last else None
    last_message = ""
    if last is not None:
        details = last.details or {}
        if last.status == ImportRunStatus.failed:
            last_message = f"Letzter Abruf ({details.get('area', '?')}) am {format_datetime(last.started_at)} gestoppt: {(last.errors or [''])[0]}"
        else:
            last_message = (
                f"Letzter Abruf ({details.get('area', '?')}) am {format_datetime(last.started_at)}: "
                f"{last.records_total} Einträge, {last.new_count} neu, {last.changed_count} geändert."
            )
    areas = [f"{plz} ({km:g} km)" for plz, km in parse_areas(settings.ARZTSUCHE_AREAS)[0]]
    if not settings.ARZTSUCHE_LIVE:
        return LiveStatus(False, OFF_EXPLANATION, last_at, last_message, areas)
    problems = live_config_problems(settings)
    if problems:
        return LiveStatus(False, "Der Live-Abruf ist eingeschaltet, aber nicht nutzbar: " + " ".join(problems), last_at, last_message, areas)
    return LiveStatus(
        True,
        f"Der Live-Abruf ist eingeschaltet: jedes Suchgebiet höchstens alle {settings.ARZTSUCHE_REFRESH_DAYS} Tage, "
        f"eine Anfrage nach der anderen mit mindestens {settings.ARZTSUCHE_MIN_INTERVAL_S} s Abstand; bei einer "
        "Ablehnung wird gestoppt und nicht wiederholt.",
        last_at, last_message, areas,
    )


def client_from_settings(settings: Settings) -> ArztsucheClient:
    return ArztsucheClient(
        authorization=settings.ARZTSUCHE_AUTHORIZATION,
        contact=settings.ARZTSUCHE_CONTACT,
        url=settings.ARZTSUCHE_URL,
        min_interval_s=settings.ARZTSUCHE_MIN_INTERVAL_S,
    )


@dataclass
class LiveSummary:
    fetched: int = 0
    outcomes: list[runs.RunOutcome] = field(default_factory=list)
    stopped: str = ""
    not_due: int = 0

    def message(self) -> str:
        if self.stopped:
            return f"Live-Abruf gestoppt nach {self.fetched} Gebieten: {self.stopped}"
        if not self.fetched:
            return f"Live-Abruf: kein Suchgebiet fällig ({self.not_due} noch aktuell)."
        new = sum(o.counts.get("new", 0) for o in self.outcomes)
        changed = sum(o.counts.get("changed", 0) for o in self.outcomes)
        return f"Live-Abruf: {self.fetched} Gebiete gelesen, {new} neu, {changed} geändert zur Prüfung."


def refresh_live(
    session_scope: Callable[[], AbstractContextManager[Session]],
    actor: Actor,
    settings: Settings,
    *,
    now: datetime,
    client: Optional[ArztsucheClient] = None,
) -> LiveSummary:
    """Fetch the configured areas that are due (each at most once per ARZTSUCHE_REFRESH_DAYS;
    at most a seventh of them per run, so the requests spread over the week)."""
    summary = LiveSummary()
    if not settings.ARZTSUCHE_LIVE:
        summary.stopped = "ausgeschaltet (ARZTSUCHE_LIVE)."
        return summary
    problems = live_config_problems(settings)
    if problems:
        summary.stopped = " ".join(problems)
        return summary
    try:
        client = client or client_from_settings(settings)
    except ArztsucheConfigError as exc:
        summary.stopped = str(exc)
        return summary
    configured, _ = parse_areas(settings.ARZTSUCHE_AREAS)
    per_run = max(1, math.ceil(len(configured) / 7))
    due: list[LiveArea] = []
    with session_scope() as session:
        last = _last_live_runs(session)
        for plz, km in configured:
            run = last.get(plz)
            if run is not None and run.started_at > now - timedelta(days=settings.ARZTSUCHE_REFRESH_DAYS):
                summary.not_due += 1
                continue
            centre = plz_centroid(session, plz)
            if centre is None:
                summary.not_due += 1
                continue
            due.append(LiveArea(plz, centre[0], centre[1], km))
    for area in due[:per_run]:
        try:
            result: FetchResult = client.fetch(area)
        except ArztsucheError as exc:
            with session_scope() as session:
                run = ImportRun(
                    source=runs.SOURCE_LIVE, filename=f"Live-Abruf {area.label}", content_hash=runs.content_hash(exc.message.encode()),
                    status=ImportRunStatus.failed, started_at=now, finished_at=now, error_count=1, errors=[exc.message],
                    details={"area": area.label, "radius_km": area.radius_km, "http_status": exc.status},
                )
                session.add(run)
                session.flush()
                audit.record(session, actor, "import.live", "import_run", run.id, {"area": area.label, "stopped": exc.message}, now=now)
            summary.stopped = exc.message
            break
        summary.fetched += 1
        with session_scope() as session:
            outcome = runs.import_file(
                session, actor, filename=f"Live-Abruf {area.label} ({area.radius_km:g} km)", raw=result.body, now=now,
                source=runs.SOURCE_LIVE, include_children_only=settings.IMPORT_CHILDREN_ONLY,
                area=diff.SearchArea(centre=(area.lat, area.lon), radius_km=area.radius_km),
                details={"area": area.label, "radius_km": area.radius_km},
            )
            audit.record(session, actor, "import.live", "import_run", outcome.run_id, {"area": area.label}, now=now)
        summary.outcomes.append(outcome)
    return summary
