"""Issue 12 point 22 (one plural helper, no "Zeile(n)") and point 4 (one visible reference per
kind of record with a prefix, never a bare "Nr.")."""

from __future__ import annotations

import re
from pathlib import Path

from core.inquiries.answers import AnswerReport
from core.mail import templates as mt
from core.planning.planner import BatchReport
from core.platform import references
from core.platform.formatting import count_of, plural
from core.platform.vocab import ResponseType
from core.registry.csv_files import ImportPreview, ImportResult

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["core", "pages", "ui", "demo", "templates", "jobs", "app.py"]


def _files(*suffixes: str):
    for entry in SCANNED:
        path = ROOT / entry
        for f in ([path] if path.is_file() else sorted(path.rglob("*"))):
            if f.suffix in suffixes and "__pycache__" not in f.parts:
                yield f


# --------------------------------------------------------------------------- point 22


def test_point22_plural_helper():
    assert plural(1, "Zeile", "Zeilen") == "1 Zeile"
    assert plural(0, "Zeile", "Zeilen") == "0 Zeilen"
    assert plural(1200, "Zeile", "Zeilen") == "1.200 Zeilen"
    assert count_of(1, "therapist") == "1 Therapeut:in"
    assert count_of(3, "patient") == "3 Patient:innen"
    assert mt._anzahl(1, "Person", "Personen") == "1 Person"


def test_point22_messages_use_the_plural_helper():
    assert ImportPreview(kind="therapists", total_rows=1).summary().startswith("1 Zeile gelesen")
    assert ImportResult(kind="therapists", created=1, skipped_duplicates=0, first_id=1, last_id=1).message() == (
        "1 Therapeut:in importiert."
    )
    report = AnswerReport(inquiry_id=1, response_type=ResponseType.all_accepted, placed=[5], conflicts=[6])
    assert "1 Patient:in vermittelt" in report.summary() and "1 Konflikt:" in report.summary()
    assert BatchReport(created=[1], dropped=1).summary().startswith("1 Anfrage erstellt, 1 Patient:in passte nicht mehr")


def _texts(f: Path):
    """(line number, text) of what a person may read: string literals of Python files, every
    line of templates."""
    import io
    import tokenize

    if f.suffix != ".py":
        yield from enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        return
    for tok in tokenize.generate_tokens(io.StringIO(f.read_text(encoding="utf-8")).readline):
        if tok.type == tokenize.STRING and tok.string.lstrip("rbfuRBFU").startswith(('"""', "'''")):
            continue  # docstrings are English code documentation, not screen text
        if tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            yield tok.start[0], tok.string


def test_point22_no_bracketed_plurals_anywhere():
    bad = re.compile(r"[a-zäöü]:?in\(nen\)|[a-zäöü]{2}\((?:n|en|nen|e|s)\)(?=[\s.,:;\"'!?]|$)", re.IGNORECASE)
    altair_field = re.compile(r"^(?:sum|count|mean|median|min|max|distinct)\(\w+\):[QNOT]$")  # chart encodings, not German
    found = []
    for f in _files(".py", ".html", ".txt"):
        for no, text in _texts(f):
            if "Never" in text or "nie " in text:
                continue
            if bad.search(text) and not altair_field.match(text.strip("\"'")):
                found.append(f"{f.relative_to(ROOT)}:{no}: {text.strip()[:120]}")
    assert not found, "bracketed plural instead of formatting.plural:\n" + "\n".join(found)


# --------------------------------------------------------------------------- point 4


def test_point4_one_reference_form_per_kind():
    assert references.patient_ref(152) == "P152"
    assert references.therapist_ref(81) == "T81"
    assert references.search_ref(150) == "S150"
    assert references.inquiry_ref(253) == "A253"
    assert mt.inquiry_reference(253) == "A253"  # the mails use the same helper
    assert references.parse_ref("p152", "patient") == 152
    assert references.parse_ref(" A 253 ") == 253
    assert references.parse_ref("S150", "patient") is None  # a search is not a patient
    assert references.parse_ref("152", "patient") == 152  # a bare number only where the kind is known
    assert references.parse_ref("152") is None


def test_point4_no_bare_nr_on_screens():
    """Pages and ui never label a column or field "Nr." (it meant the patient here and the
    search there); they show P152 / T81 / S150 / A253 from core.platform.references."""
    found = []
    for f in _files(".py"):
        rel = f.relative_to(ROOT)
        if rel.parts[0] not in {"pages", "ui"} and rel.name != "app.py":
            continue
        for no, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"""["'(\s]Nr\.(?!\w)""", line) and "Hausnr" not in line:
                found.append(f"{rel}:{no}: {line.strip()}")
    assert not found, "bare 'Nr.' on a screen:\n" + "\n".join(found)
