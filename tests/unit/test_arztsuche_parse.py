"""The 116117 parser (`core.arztsuche.parse_response`) on self-written fixtures in both response
generations and the predecessor's snapshot format, plus files it must refuse."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from core import timewindows
from core.arztsuche import ImportFormatError, TherapistRecord, load_json, parse_bytes, parse_document, parse_response
from core.imports.hours import merge_ranges, parse_time_ranges
from core.imports.records import entry_digest
from core.imports.values import split_display_name

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "arztsuche"


def load(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def by_last_name(records: list[TherapistRecord]) -> dict[str, TherapistRecord]:
    return {r.last_name: r for r in records}


@pytest.fixture(scope="module")
def current():
    return parse_document(load("current_2026.json"))


@pytest.fixture(scope="module")
def legacy():
    return parse_document(load("legacy_2025.json"), reference_date=date(2025, 12, 22))


@pytest.fixture(scope="module")
def snapshot():
    return parse_document(load("snapshot_52062.json"))


# --------------------------------------------------------------------------- current generation


def test_contract_returns_records_of_the_current_format():
    records = parse_response(load("current_2026.json"))
    assert all(isinstance(r, TherapistRecord) for r in records)
    assert [r.last_name for r in records][:2] == ["Beispiel", "Muster"]


def test_current_reference_entry_all_fields(current):
    anna = by_last_name(current.records)["Beispiel"]
    assert (anna.title, anna.first_name, anna.last_name) == ("Dipl.-Psych.", "Anna", "Beispiel")
    assert anna.display_name == "Dipl.-Psych. Anna Beispiel"
    assert (anna.salutation, anna.gender) == ("frau", "female")
    assert anna.street == "Musterstraße 12a"
    assert (anna.street_name, anna.house_number) == ("Musterstraße", "12a")
    assert (anna.plz, anna.city) == ("50667", "Köln")
    assert (anna.lat, anna.lon) == (50.9381, 6.9571)
    assert anna.phone == "0221 4710123"
    assert anna.fax == "0221 4710124"
    assert anna.email == "kontakt@praxis-beispiel.example"
    assert anna.website == "https://www.praxis-beispiel.example"
    assert anna.languages == ["Englisch", "Spanisch"]
    assert anna.methods == {"VT"}
    assert anna.method_settings == {"VT": ["Einzel", "Gruppe"]}
    assert (anna.adults, anna.children, anna.group, anna.individual) == (True, False, True, True)
    assert anna.generation == "current"
    assert anna.warnings == []


def test_current_phone_hours_match_the_reference_table(current):
    anna, jonas = current.records[0], current.records[1]
    assert anna.phone_hours == "Mo 12:00-12:50; Mi 12:00-12:50; Do 08:00-08:50; Fr 08:30-09:00, 13:00-13:25"
    assert anna.phone_dates == [
        ("2026-03-11", "12:00", "12:50"),
        ("2026-03-12", "08:00", "08:50"),
        ("2026-03-13", "08:30", "09:00"),
        ("2026-03-13", "13:00", "13:25"),
        ("2026-03-16", "12:00", "12:50"),
    ]
    assert jonas.phone_hours == "Mo 07:30-08:00, 13:00-14:00; Do 07:30-08:00"
    # the canonical text round-trips through core.timewindows
    assert timewindows.format(timewindows.parse(anna.phone_hours)) == anna.phone_hours
    assert anna.phone_windows == timewindows.parse(anna.phone_hours)


def test_current_other_hour_types_are_kept_raw(current):
    anna = current.records[0]
    assert {"type": "01", "label": "Sprechstunde", "date": "2026-03-11", "weekday": "Mi", "ranges": ["09:00-13:00"]} in anna.other_hours
    assert {h["type"] for h in anna.other_hours} == {"01", "05"}
    jonas = current.records[1]
    assert {h["type"] for h in jonas.other_hours} == {"01", "02", "06"}


def test_current_methods_of_second_entry(current):
    jonas = by_last_name(current.records)["Muster"]
    assert jonas.methods == {"TP", "AP"}
    assert jonas.method_settings == {"AP": ["Einzel"], "TP": ["Einzel", "Gruppe"]}
    assert jonas.email is None and jonas.fax is None
    assert jonas.phone == "0221 4710555" and jonas.mobile == "0170 0000001"
    assert jonas.website == "www.muster-psychotherapie.example"


def test_umlauts_missing_fields_unpadded_times_and_unknown_hour_types(current):
    j = by_last_name(current.records)["Weiß-Öztürk"]
    assert (j.first_name, j.title) == ("Jürgen", None)
    assert j.street == "Königsbrücker Straße 5 b"
    assert j.plz == "01099"  # leading zero kept
    # no lat/lon, e-mail, fax or website keys at all
    assert (j.lat, j.lon, j.email, j.fax, j.website) == (None, None, None, None, None)
    # only a mobile number: it is the phone to call
    assert j.phone == "0151 0000042"
    assert j.methods == {"ST"}
    # several ranges per day, unpadded times ("8:00", "7:05"), an en dash
    assert j.phone_hours == "Mi 08:00-09:00, 09:30-10:00, 16:00-17:15; Do 07:05-07:55"
    assert {h["type"] for h in j.other_hours} == {"03", "99"}
    assert any("„03“" in w for w in j.warnings) and any("„99“" in w for w in j.warnings)


def test_keine_sprechzeiten(current):
    s = by_last_name(current.records)["Lüdke"]
    assert s.no_hours is True
    assert s.phone_hours == ""
    assert s.phone_windows == [] and s.other_hours == []
    assert s.warnings == []


def test_children_only_entry(current):
    k = by_last_name(current.records)["Kinderlieb"]
    assert k.children is True and k.adults is False
    assert k.children_only
    assert k.methods == {"VT"}


def test_group_only_entry_and_same_weekday_twice_with_overlaps(current):
    g = by_last_name(current.records)["Gruppmann"]
    assert g.group is True and g.individual is False and g.group_only
    # 2026-03-11 and 2026-03-18 are both Wednesdays: 12:00-12:50 and 12:30-13:15 merge;
    # 09:00-10:00 and 09:30-10:30 on one day merge too.
    assert g.phone_hours == "Mo 10:00-11:00; Mi 09:00-10:30, 12:00-13:15"


def test_odd_values_are_tolerated_and_reported_per_entry(current):
    g = by_last_name(current.records)["Sonderfall"]
    assert g.plz == "04109"  # a number 4109 → "04109"
    assert (g.lat, g.lon) == (51.3397, 12.3731)  # "51,3397" as text
    assert g.email is None
    assert g.gender == "female" and g.salutation == "frau"  # unknown "X?" → from the salutation
    assert g.languages == ["Französisch"]  # a string instead of a list
    assert g.methods == {"VT"}
    assert g.street == "Am Markt"
    assert g.phone_hours == "Mi 11:00-11:30"
    text = " | ".join(g.warnings)
    for expected in (
        "Unbekannte Felder ignoriert: neuesFeld",
        "PLZ als Zahl",
        "„lat“ ist Text statt Zahl",
        "E-Mail-Adresse „keine-adresse“ ist ungültig",
        "Verfahren „Hypnotherapie“ nicht erkannt",
        "„10:00 - 09:00“: das Ende liegt nicht nach dem Beginn",
        "„halb zehn“ nicht erkannt",
        "Unbekanntes Datumsformat „kein Datum“",
        "Tag 3 in „tsz“ ist ein Text",
        "Unbekanntes Geschlecht „X?“",
    ):
        assert expected in text, expected
    # other entries are not affected by this one's problems
    assert by_last_name(current.records)["Beispiel"].warnings == []


def test_unusable_entries_are_skipped_with_a_reason(current):
    assert current.entries_total == 9
    assert len(current.records) == 7
    reasons = {s.index: s.reason for s in current.skipped}
    assert reasons[8] == "Eintrag 8 ist ein Text statt eines Objekts."
    assert "Name fehlt" in reasons[9]
    assert current.more_results is False
    assert current.warnings == []


# --------------------------------------------------------------------------- legacy generation


def test_legacy_reference_entry(legacy):
    lena = by_last_name(legacy.records)["Probe"]
    assert (lena.title, lena.first_name, lena.last_name) == ("Dipl.-Psych.", "Lena", "Probe")
    assert lena.generation == "legacy"
    assert lena.plz == "04109"
    assert lena.street == "Probeallee 7"
    assert lena.phone_hours == "Mo 09:10-10:00; Di 12:00-12:50, 16:00-16:25"
    assert lena.phone_dates[0] == ("2025-12-22", "09:10", "10:00")
    assert lena.other_hours == [
        {"type": "01", "label": "Sprechstunde", "date": "2025-12-22", "weekday": "Mo", "ranges": ["10:00-13:00"]}
    ]
    assert lena.methods == {"VT"}
    assert lena.adults and lena.children and not lena.children_only
    assert lena.website == "http://www.probe-praxis.example"
    assert lena.email is None


def test_legacy_names_with_particles_umlauts_and_several_titles(legacy):
    b = by_last_name(legacy.records)["von der Ähre"]
    assert (b.title, b.first_name) == ("Dr. med.", "Björn")
    assert b.methods == {"TP", "AP"}
    assert b.group and b.individual
    assert b.languages == ["Englisch", "Polnisch"]  # "englisch" twice is one language
    u = by_last_name(legacy.records)["Çelik"]
    assert (u.title, u.first_name) == ("Prof. Dr.", "Ümit")
    assert u.street == "Straße des 17. Juni 100"
    assert (u.salutation, u.gender) == ("none", "unspecified")


def test_legacy_several_ranges_in_one_string_same_weekday_twice_and_year_rollover(legacy):
    b = by_last_name(legacy.records)["von der Ähre"]
    # 22.12. Mo "8:00-9:00, 13:00-13:30" + 29.12. Mo "8:30-9:45" merge; 02.01. is in the next year
    assert b.phone_hours == "Mo 08:00-09:45, 13:00-13:30; Di 07:00-08:00; Fr 11:00-11:30"
    assert ("2026-01-02", "11:00", "11:30") in b.phone_dates
    assert {h["type"] for h in b.other_hours} == {"02", "Akutsprechstunde"}
    assert any("Unbekannte Zeitart „Akutsprechstunde“" in w for w in b.warnings)


def test_legacy_without_reference_date_uses_the_weekday_abbreviation():
    result = parse_document(load("legacy_2025.json"))
    b = by_last_name(result.records)["von der Ähre"]
    assert b.phone_hours == "Mo 08:00-09:45, 13:00-13:30; Di 07:00-08:00; Fr 11:00-11:30"
    assert ("02.01.", "11:00", "11:30") in b.phone_dates


def test_legacy_weekday_mismatch_is_reported_and_the_date_wins():
    data = {"arztPraxisDatas": [{"name": "Eva Test", "plz": "10115", "tsz": [
        {"d": "22.12.", "t": "Di.", "tszDesTyps": [{"typ": "Telefonische Erreichbarkeit", "sprechzeiten": [{"zeit": "9:00-10:00"}]}]}
    ]}]}
    (rec,) = parse_response(data, reference_date=date(2025, 12, 20))
    assert rec.phone_hours == "Mo 09:00-10:00"
    assert any("kein Di" in w for w in rec.warnings)


def test_legacy_children_only_group_only_and_keine_sprechzeiten(legacy):
    c = by_last_name(legacy.records)["Klein"]
    assert c.children_only and c.methods == {"VT"}
    g = by_last_name(legacy.records)["Gruppe"]
    assert g.group_only and g.adults and not g.children
    assert (g.lat, g.lon) == (None, None)
    u = by_last_name(legacy.records)["Çelik"]
    assert u.no_hours and u.phone_hours == ""
    assert u.methods == {"ST"}


def test_generation_is_detected_per_entry():
    data = load("current_2026.json")
    data["arztPraxisDatas"] = [data["arztPraxisDatas"][0], load("legacy_2025.json")["arztPraxisDatas"][0]]
    records = parse_response(data)
    assert [r.generation for r in records] == ["current", "legacy"]
    assert records[1].phone_hours == "Mo 09:10-10:00; Di 12:00-12:50, 16:00-16:25"


# --------------------------------------------------------------------------- snapshot (predecessor)


def test_snapshot_format(snapshot):
    assert snapshot.format == "snapshot"
    assert snapshot.area_plz == "52062"
    hanna = by_last_name(snapshot.records)["Schröder"]
    assert (hanna.title, hanna.first_name, hanna.salutation, hanna.gender) == ("Dr.", "Hanna", "frau", "female")
    assert hanna.street == "Pontstraße 21" and hanna.plz == "52062" and hanna.city == "Aachen"
    assert hanna.phone_hours == "Mo 08:00-09:00; Mi 12:00-12:50, 16:00-16:25; Fr 07:30-08:00"
    assert hanna.methods == {"VT", "TP"}
    assert hanna.languages == ["Englisch"]
    assert (hanna.lat, hanna.lon) == (None, None)
    assert hanna.generation == "snapshot"


def test_snapshot_full_name_children_only_deleted_and_unknown_weekday(snapshot):
    kh = by_last_name(snapshot.records)["de Vries"]
    assert kh.first_name == "Karl-Heinz" and kh.methods == {"AP"}
    assert kh.phone_hours == "Di 10:00-10:30"
    assert any("Funday" in w for w in kh.warnings)
    ida = by_last_name(snapshot.records)["Jung"]
    assert ida.children_only
    assert "Weg" not in by_last_name(snapshot.records)
    assert "gelöscht" in snapshot.skipped[0].reason


# --------------------------------------------------------------------------- refused files


@pytest.mark.parametrize(
    "name, code, words",
    [
        ("invalid.json", "invalid_json", ["kein gültiges JSON", "Zeile 2"]),
        ("truncated.json", "truncated", ["endet mitten im Inhalt", "nicht vollständig"]),
        ("wrong_shape.json", "wrong_shape", ["„arztPraxisDatas“ fehlt", "„results“"]),
        ("top_level_list.json", "wrong_shape", ["eine Liste statt eines JSON-Objekts"]),
    ],
)
def test_refused_files_give_a_german_reason(name, code, words):
    with pytest.raises(ImportFormatError) as info:
        parse_bytes((FIXTURES / name).read_bytes())
    assert info.value.code == code
    for w in words:
        assert w in info.value.message


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        ("{\"arztPraxisDatas\": []}".encode("utf-16"), "encoding"),
        (b'{"arztPraxisDatas": [{"name": "Probe', "truncated"),
        (b'{"arztPraxisDatas": [] } x', "invalid_json"),
    ],
)
def test_load_json_errors(raw, code):
    with pytest.raises(ImportFormatError) as info:
        load_json(raw)
    assert info.value.code == code


@pytest.mark.parametrize(
    "data, words",
    [
        ({"arztPraxisDatas": {"1": {}}}, "„arztPraxisDatas“ enthält ein Objekt statt einer Liste"),
        ({"therapists": "viele"}, "„therapists“ der Stichtagsdatei enthält einen Text"),
        (42, "enthält eine Zahl statt eines JSON-Objekts"),
    ],
)
def test_wrong_shapes(data, words):
    with pytest.raises(ImportFormatError) as info:
        parse_response(data)
    assert words in info.value.message


def test_bom_and_empty_list_are_fine():
    result = parse_bytes(b"\xef\xbb\xbf" + json.dumps({"arztPraxisDatas": [], "moreResults": True}).encode())
    assert result.records == []
    assert result.more_results is True
    assert any("gekürzt" in w for w in result.warnings)


def test_progress_is_reported():
    data = {"arztPraxisDatas": [{"vorname": "A", "name": f"N{i}", "plz": "10115"} for i in range(1200)]}
    calls = []
    parse_document(data, progress=lambda done, total: calls.append((done, total)), progress_every=500)
    assert calls == [(500, 1200), (1000, 1200), (1200, 1200)]


# --------------------------------------------------------------------------- small pieces


@pytest.mark.parametrize(
    "text, ranges",
    [
        ("9:10-10:00", [(550, 600)]),
        ("09:00 - 13:00", [(540, 780)]),
        ("8:00-9:00, 13:00-13:30", [(480, 540), (780, 810)]),
        ("8-12; 14 bis 16 Uhr", [(480, 720), (840, 960)]),
        ("7.30–8.00", [(450, 480)]),
        ("22:00-24:00", [(1320, 1440)]),
        ("22:00-0:00", [(1320, 1440)]),
    ],
)
def test_time_ranges(text, ranges):
    assert parse_time_ranges(text) == (ranges, [])


def test_ranges_until_midnight_keep_a_valid_canonical_text():
    data = {"arztPraxisDatas": [{"vorname": "A", "name": "Spät", "plz": "10115", "tsz": [
        {"d": "2026-03-13", "typTsz": [{"typ": "07", "sprechzeiten": [{"z": "22:00 - 24:00"}]}]}
    ]}]}
    (rec,) = parse_response(data)
    assert rec.phone_hours.startswith("Fr 22:00-")
    assert timewindows.parse(rec.phone_hours)


def test_merge_ranges():
    assert merge_ranges([(600, 660), (540, 610), (700, 720), (660, 680)]) == [(540, 680), (700, 720)]


@pytest.mark.parametrize(
    "full, expected",
    [
        ("Dipl.-Psych. Lena Probe", ("Dipl.-Psych.", "Lena", "Probe")),
        ("Dr. med. Björn von der Ähre", ("Dr. med.", "Björn", "von der Ähre")),
        ("Anna Maria Schmidt", (None, "Anna Maria", "Schmidt")),
        ("Probe, Lena", (None, "Lena", "Probe")),
        ("Lena Probe, M.Sc.", ("M.Sc.", "Lena", "Probe")),
        ("Eva Meier -Lüdenscheid", (None, "Eva", "Meier-Lüdenscheid")),
        ("Prof. Dr. Müller", ("Prof. Dr.", "", "Müller")),
        ("Null", (None, "", "Null")),
    ],
)
def test_split_display_name(full, expected):
    assert split_display_name(full) == expected


def test_placeholder_surname_is_kept_but_reported():
    (rec,) = parse_response({"arztPraxisDatas": [{"vorname": "Nina", "name": "Null", "plz": "10115"}]})
    assert rec.last_name == "Null"
    assert any("Platzhalter" in w for w in rec.warnings)


def test_coordinates_outside_germany_or_placeholder_are_dropped():
    recs = parse_response({"arztPraxisDatas": [
        {"vorname": "A", "name": "Null-Insel", "plz": "10115", "lat": 0, "lon": 0},
        {"vorname": "B", "name": "Paris", "plz": "10115", "lat": 48.85, "lon": 2.35},
        {"vorname": "C", "name": "Halb", "plz": "10115", "lat": 52.5},
    ]})
    assert all((r.lat, r.lon) == (None, None) for r in recs)
    assert all(r.warnings for r in recs)


def test_record_as_dict_is_json_ready(current):
    text = json.dumps(current.records[0].as_dict(), ensure_ascii=False)
    assert '"methods": ["VT"]' in text


def test_entry_digest_ignores_what_changes_from_search_to_search():
    entry = load("current_2026.json")["arztPraxisDatas"][0]
    moved = {**entry, "id": "17", "distance": 9000, "geoeffnet": "OPEN", "nteStart": "", "nteEnde": ""}
    assert entry_digest(entry) == entry_digest(moved)
    assert entry_digest(entry) != entry_digest({**entry, "tel": "0221 1"})
    seen = {entry_digest(entry)}
    result = parse_document({"arztPraxisDatas": [moved, load("current_2026.json")["arztPraxisDatas"][1]]}, reuse=seen.__contains__)
    assert result.reused == [entry_digest(entry)]
    assert [r.last_name for r in result.records] == ["Muster"]
    assert result.records[0].entry_hash
