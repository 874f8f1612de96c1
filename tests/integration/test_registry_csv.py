"""CSV import/export on both databases: German conventions, preview naming every bad row,
all-or-nothing commit, duplicates, the 5,000-row acceptance case, audited export."""

from __future__ import annotations

import csv
import io
import time
from datetime import date

import pytest
from sqlalchemy import func, select

from core.registry import patients
from core.registry import csv_files as registry_csv
from core.registry import therapists
from core.platform.models import AuditEntry, Patient, Therapist
from core.registry.patients import PatientFilter
from core.platform.permissions import PermissionDenied
from core.registry.csv_files import ImportRefused
from core.registry.therapists import TherapistFilter
from core.platform.vocab import CoordinatesSource
from tests.support.registry_fixtures import COORD, NOW, TODAY, VIEWER



def _csv(rows: list[list[str]], *, bom: bool = True, sep: str = ";", encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\r\n").writerows(rows)
    return (("\ufeff" if bom else "") + buf.getvalue()).encode(encoding)


def _read(data: bytes) -> list[list[str]]:
    assert data.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def _count(s, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


THERAPIST_HEADER = ["Anrede", "Titel", "Vorname", "Nachname", "PLZ", "Ort", "Telefon", "E-Mail", "Verfahren", "Telefonische Erreichbarkeit", "Sprachen"]


def _letters(i: int) -> str:
    """0 -> 'Aa', 1 -> 'Ab' … : distinct names without digits."""
    out = ""
    while True:
        out = "abcdefghijklmnopqrstuvwxyz"[i % 26] + out
        i //= 26
        if not i:
            break
    return "A" + out


def _therapist_rows(n: int) -> list[list[str]]:
    plzs = ["10115", "20095", "01067", "80331"]
    return [
        ["Frau" if i % 2 else "Herr", "Dr." if i % 5 == 0 else "", f"Vorname{_letters(i)}", f"Nachname{_letters(i)}", plzs[i % 4], "",
         f"030 {1_000_000 + i}", f"praxis{i}@example.de", "VT|TP" if i % 3 else "ST", "Mo 8:00-9:00; Do 12:00-12:50",
         "Englisch" if i % 7 == 0 else ""]
        for i in range(n)
    ]


def test_5000_therapists_with_3_bad_rows_then_fixed(db_session, plz_table):
    rows = _therapist_rows(5000)
    bad = {
        # row index -> (column, bad value); spreadsheet line = index + 2
        17: (4, "1011x"),
        2500: (7, "kaputt@"),
        4998: (9, "Mo 12:00-09:00"),
    }
    broken = [list(r) for r in rows]
    for i, (col, value) in bad.items():
        broken[i][col] = value
    started = time.perf_counter()
    preview = registry_csv.preview_import(db_session, COORD, "therapists", _csv([THERAPIST_HEADER] + broken), today=TODAY)
    assert not preview.ok and preview.total_rows == 5000 and preview.valid_count == 4997
    assert [(p.line, list(p.errors)) for p in preview.problems] == [
        (19, ["plz"]), (2502, ["email"]), (5000, ["phone_hours"]),
    ]
    assert "PLZ muss fünfstellig sein" in preview.problems[0].errors["plz"]
    assert preview.problems[1].errors["email"].startswith("E-Mail: „kaputt@“")
    assert "Ende muss nach dem Beginn" in preview.problems[2].errors["phone_hours"]
    assert preview.problems[0].name == f"Nachname{_letters(17)}, Vorname{_letters(17)}"
    assert "3 fehlerhaft" in preview.summary() and "nichts importiert" in preview.summary()
    with pytest.raises(ImportRefused) as info:
        registry_csv.commit_import(db_session, COORD, "therapists", _csv([THERAPIST_HEADER] + broken), now=NOW, today=TODAY)
    assert len(info.value.preview.problems) == 3
    assert _count(db_session, Therapist) == 0

    result = registry_csv.commit_import(db_session, COORD, "therapists", _csv([THERAPIST_HEADER] + rows), now=NOW, today=TODAY, filename="kbv.csv")
    elapsed = time.perf_counter() - started
    assert result.created == 5000 and _count(db_session, Therapist) == 5000
    assert "5.000 Therapeut:innen importiert" in result.message()  # German number format (plural helper)
    t = db_session.scalars(select(Therapist).where(Therapist.last_name == f"Nachname{_letters(2)}")).one()
    assert t.city == "Dresden" and t.plz == "01067" and t.coordinates_source == CoordinatesSource.plz_centroid
    assert t.phone == "+49301000002" and t.phone_hours == "Mo 08:00-09:00; Do 12:00-12:50" and t.methods == {"VT", "TP"}
    assert _count(db_session, AuditEntry) == 5001  # one per therapist plus the summary
    assert elapsed < 30, f"5,000-row preview + refused commit + commit took {elapsed:.1f} s"


def test_template_is_german_csv_and_its_example_row_is_valid(db_session, plz_table):
    for kind in registry_csv.KINDS:
        data = registry_csv.template_csv(kind)
        rows = _read(data)
        assert rows[0] == registry_csv.headers(kind) and len(rows) == 2
        assert b";" in data
        preview = registry_csv.preview_import(db_session, COORD, kind, data, today=TODAY)
        assert preview.ok, preview.problems


def test_patient_import_with_german_formats_and_reasons(db_session, plz_table):
    header = ["Vorname", "Nachname", "Geburtsdatum", "PLZ", "Versichertennummer (KVNR)", "Symptome", "Zeitliche Verfügbarkeit",
              "Verträge unterschrieben", "Bemerkung"]
    rows = [
        ["Jana", "Müller", "14.03.1990", "1067", "A123456780", "Schlafstörungen|Mobbing", "Mo 9-12", "ja", "egal"],
        ["Ben", "Kurz", "31.02.1990", "10115", "A123456781", "Kopfweh", "Mo 12-9", "vielleicht", ""],
        ["", "", "", "", "", "", "", "", ""],  # blank line is skipped
        ["Eva", "Lang", "1990-01-01", "80331", "", "", "", "nein", ""],
    ]
    preview = registry_csv.preview_import(db_session, COORD, "patients", _csv([header] + rows, bom=False), today=TODAY)
    assert preview.total_rows == 3 and preview.valid_count == 2
    (problem,) = preview.problems
    assert problem.line == 3 and set(problem.errors) == {"birth_date", "insurance_number", "symptoms", "availability", "contracts_signed"}
    assert "Unbekannte Spalten werden ignoriert: Bemerkung." in preview.notes
    fixed = [list(r) for r in rows]
    fixed[1] = ["Ben", "Kurz", "28.02.1990", "10115", "A123456780", "Mobbing", "Mo 9-12", "ja", ""]
    result = registry_csv.commit_import(db_session, COORD, "patients", _csv([header] + fixed), now=NOW, today=TODAY)
    assert result.created == 3
    jana = db_session.scalars(select(Patient).where(Patient.last_name == "Müller")).one()
    assert jana.plz == "01067" and jana.city == "Dresden" and jana.lat == 51.05
    assert jana.symptoms == ["Schlafstörungen", "Mobbing"] and jana.availability == "Mo 09:00-12:00"
    assert jana.birth_date == date(1990, 3, 14) and jana.contracts_signed is True


def test_windows_1252_and_comma_files_are_read_with_a_note(db_session):
    data = _csv([["Vorname", "Nachname", "Ort"], ["Jörg", "Weiß", "Köln"]], bom=False, sep=",", encoding="cp1252")
    preview = registry_csv.preview_import(db_session, COORD, "patients", data, today=TODAY)
    assert preview.ok and preview.rows[0][1]["last_name"] == "Weiß"
    assert any("Windows-1252" in n for n in preview.notes) and any("Trennzeichen" in n for n in preview.notes)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "leer"),
        (_csv([["Name", "Ort"], ["A", "B"]]), "Pflichtspalten fehlen: Vorname, Nachname"),
    ],
)
def test_unreadable_files(db_session, data, words):
    preview = registry_csv.preview_import(db_session, COORD, "patients", data, today=TODAY)
    assert not preview.ok and words in preview.summary()


def test_header_only_file_has_no_rows(db_session):
    preview = registry_csv.preview_import(db_session, COORD, "patients", _csv([["Vorname", "Nachname"]]), today=TODAY)
    assert not preview.ok and preview.summary() == "Die Datei enthält keine Datenzeilen."


def test_row_with_too_many_cells(db_session):
    data = _csv([["Vorname", "Nachname"], ["Jana", "Müller", "Rest; mit Semikolon"]])
    preview = registry_csv.preview_import(db_session, COORD, "patients", data, today=TODAY)
    assert preview.problems[0].line == 2 and "mehr Zellen als die Kopfzeile" in preview.problems[0].message()


def test_duplicate_warnings_against_database_and_within_file(db_session):
    therapists.create_therapist(db_session, COORD, {"first_name": "Tom", "last_name": "Berg", "plz": "10115", "email": "t@berg.de"}, now=NOW, today=TODAY)
    header = ["Vorname", "Nachname", "PLZ", "E-Mail"]
    rows = [
        ["tom", "BERG", "10115", ""],  # same name + PLZ as in the database
        ["Lisa", "Kern", "20095", "T@berg.de"],  # same e-mail as in the database
        ["Uwe", "Neu", "20095", "uwe@neu.de"],
        ["Uwe", "Neu", "20095", ""],  # same as line 4 of the file
        ["Ida", "Ok", "20095", "ida@ok.de"],
    ]
    preview = registry_csv.preview_import(db_session, COORD, "therapists", _csv([header] + rows), today=TODAY)
    assert preview.ok
    by_line = {w.line: w.message for w in preview.warnings}
    assert set(by_line) == {2, 3, 5}
    assert "gleicher Name und gleiche PLZ wie Berg, Tom" in by_line[2] and "im Bestand" in by_line[2]
    assert "gleiche E-Mail-Adresse" in by_line[3]
    assert "wie Zeile 4" in by_line[5]
    result = registry_csv.commit_import(db_session, COORD, "therapists", _csv([header] + rows), now=NOW, today=TODAY, skip_duplicates=True)
    assert (result.created, result.skipped_duplicates) == (2, 3)
    assert _count(db_session, Therapist) == 3


def test_patient_duplicates(db_session):
    patients.create_patient(db_session, COORD, {"first_name": "Jana", "last_name": "Müller", "birth_date": "14.03.1990"}, now=NOW, today=TODAY)
    data = _csv([["Vorname", "Nachname", "Geburtsdatum"], ["JANA", "müller", "14.03.1990"], ["Jana", "Müller", "15.03.1990"]])
    preview = registry_csv.preview_import(db_session, COORD, "patients", data, today=TODAY)
    assert [w.line for w in preview.warnings] == [2]


def test_viewer_may_neither_import_nor_export(db_session):
    with pytest.raises(PermissionDenied):
        registry_csv.preview_import(db_session, VIEWER, "patients", registry_csv.template_csv("patients"), today=TODAY)
    with pytest.raises(PermissionDenied):
        registry_csv.commit_import(db_session, VIEWER, "patients", registry_csv.template_csv("patients"), now=NOW, today=TODAY)
    with pytest.raises(PermissionDenied):
        registry_csv.export_csv(db_session, VIEWER, "patients", PatientFilter(), today=TODAY, now=NOW)


def test_export_of_current_filter_is_audited_and_reimportable(db_session, plz_table):
    for i, plz in enumerate(["10115", "10115", "20095"]):
        therapists.create_therapist(
            db_session, COORD,
            {"first_name": f"T{'abc'[i]}", "last_name": "Berg", "plz": plz, "phone": "030 1234567", "methods": "VT|AP",
             "phone_hours": "Mo 8-9", "languages": "Englisch", "knows_us": True},
            now=NOW, today=TODAY, allow_duplicate=True,
        )
    flt = TherapistFilter(plz_prefix="10")
    data = registry_csv.export_csv(db_session, COORD, "therapists", flt, today=TODAY, now=NOW)
    rows = _read(data)
    assert rows[0][:4] == ["Nr.", "Status", "Sperrgrund", "Status seit"] and len(rows) == 3
    row = dict(zip(rows[0], rows[1]))
    assert row["PLZ"] == "10115" and row["Telefon"] == "030 1234567" and row["Verfahren"] == "VT|AP"
    assert row["Kennt uns"] == "ja" and row["Telefonische Erreichbarkeit"] == "Mo 08:00-09:00" and row["Status"] == "aktiv"
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "therapist.export")).one()
    assert entry.changes == {"count": 2, "filter": "PLZ 10…"} and entry.actor_name == "t.koord"
    # the export reads back without a single problem (export-only columns are ignored)
    preview = registry_csv.preview_import(db_session, COORD, "therapists", data, today=TODAY)
    assert preview.ok and not preview.notes and len(preview.warnings) == 2


def test_patient_export_contains_search_state_and_german_dates(db_session):
    from core.registry import searches

    p = patients.create_patient(
        db_session, COORD,
        {"first_name": "Jana", "last_name": "Müller", "birth_date": "14.03.1990", "plz": "10115", "insurer": "AOK",
         "symptoms": ["Mobbing"], "availability": "Mo 9-12", "contracts_signed": True, "consent_given": True},
        now=NOW, today=TODAY,
    )
    searches.start_search(db_session, COORD, p.id, today=TODAY, now=NOW)
    rows = _read(registry_csv.export_csv(db_session, COORD, "patients", PatientFilter(), today=TODAY, now=NOW))
    row = dict(zip(rows[0], rows[1]))
    assert row["Nr."] == str(p.id) and row["Platzsuche"] == "aktiv" and row["Platzsuche seit"] == "23.11.2026"
    assert row["Geburtsdatum"] == "14.03.1990" and row["Status"] == "auf der Suche" and row["Symptome"] == "Mobbing"


FORMULA_NAME = '=HYPERLINK("http://x","y")'


@pytest.mark.parametrize("kind", ["patients", "therapists"])
def test_12_7_formula_cells_are_written_as_text_and_the_import_restores_them(db_session, kind):
    create = patients.create_patient if kind == "patients" else therapists.create_therapist
    flt = PatientFilter() if kind == "patients" else TherapistFilter()
    create(db_session, COORD, {"first_name": "@Anna", "last_name": FORMULA_NAME, "notes": "-1+1 und =1+1", "city": "+Ort"},
           now=NOW, today=TODAY)
    data = registry_csv.export_csv(db_session, COORD, kind, flt, today=TODAY, now=NOW)
    row = dict(zip(*_read(data)[:2]))
    # a spreadsheet shows these as text: the first character is an apostrophe (OWASP CSV injection)
    assert row["Nachname"] == "'" + FORMULA_NAME and row["Vorname"] == "'@Anna"
    assert row["Notizen"] == "'-1+1 und =1+1" and row["Ort"] == "'+Ort"
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for line in _read(data) for cell in line)
    # … and the import of that very file gives back the original values
    result = registry_csv.commit_import(db_session, COORD, kind, data, now=NOW, today=TODAY)
    model = Patient if kind == "patients" else Therapist
    imported = db_session.get(model, result.first_id)
    assert (imported.last_name, imported.first_name, imported.notes, imported.city) == (FORMULA_NAME, "@Anna", "-1+1 und =1+1", "+Ort")


def test_12_16_csv_cells_with_nul_bytes_are_row_problems_and_nothing_is_imported(db_session):
    data = _csv([["Vorname", "Nachname", "Notizen"], ["Ida", "Neu", "gut"], ["Ole", "A\x00lt", "x\x00"]])
    preview = registry_csv.preview_import(db_session, COORD, "patients", data, today=TODAY)
    assert not preview.ok and [p.line for p in preview.problems] == [3]
    assert set(preview.problems[0].errors) == {"last_name", "notes"}
    assert all("unzulässiges Steuerzeichen" in m for m in preview.problems[0].errors.values())
    with pytest.raises(ImportRefused):
        registry_csv.commit_import(db_session, COORD, "patients", data, now=NOW, today=TODAY)
    assert _count(db_session, Patient) == 0


def test_12_16_csv_methods_with_a_dangling_separator_are_a_row_problem(db_session):
    data = _csv([["Vorname", "Nachname", "Verfahren"], ["Eva", "Berg", "VT/"]])
    preview = registry_csv.preview_import(db_session, COORD, "therapists", data, today=TODAY)
    assert not preview.ok and preview.problems[0].errors["methods"].startswith("Verfahren:")
