"""Pure field rules (core.validation): good and bad values, German messages naming the field."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.platform import validation as v
from core.platform.validation import FieldError
from core.platform.vocab import SYMPTOMS

TODAY = date(2026, 11, 23)


def _err(fn, *args, **kwargs) -> FieldError:
    with pytest.raises(FieldError) as info:
        fn(*args, **kwargs)
    return info.value


# --------------------------------------------------------------------------- PLZ


@pytest.mark.parametrize("raw, clean", [("10115", "10115"), (" 10115 ", "10115"), ("", None), (None, None)])
def test_plz_good(raw, clean):
    assert v.validate_plz(raw) == clean


def test_plz_leading_zero_restored_only_for_imports():
    assert v.validate_plz("1067", restore_leading_zero=True) == "01067"
    assert "fünfstellig" in _err(v.validate_plz, "1067").message


@pytest.mark.parametrize("raw", ["1011", "101155", "1011a", "ABCDE", "10 11"])
def test_plz_bad_format(raw):
    e = _err(v.validate_plz, raw)
    assert e.field == "plz" and "PLZ muss fünfstellig sein" in e.message


def test_plz_checked_against_table_only_when_loaded():
    assert v.validate_plz("99999", known=None) == "99999"
    assert v.validate_plz("10115", known={"10115"}) == "10115"
    e = _err(v.validate_plz, "99999", known={"10115"})
    assert "PLZ 99999 ist unbekannt" in e.message


# --------------------------------------------------------------------------- e-mail, phone


@pytest.mark.parametrize("raw, clean", [("max@example.de", "max@example.de"), (" Max@Example.DE ", "Max@example.de"), ("", None)])
def test_email_good(raw, clean):
    assert v.validate_email(raw) == clean


@pytest.mark.parametrize("raw", ["max@", "max.example.de", "max@@example.de", "max@example", "mäx@example.de", "a b@example.de"])
def test_email_bad(raw):
    e = _err(v.validate_email, raw)
    assert e.field == "email" and e.message.startswith("E-Mail:") and "keine gültige E-Mail-Adresse" in e.message


@pytest.mark.parametrize(
    "raw, e164, shown",
    [
        ("030 1234567", "+49301234567", "030 1234567"),
        ("0176-12345678", "+4917612345678", "0176 12345678"),
        ("+49 (0)40 123456", "+4940123456", "040 123456"),
        ("0049 89 1234567", "+49891234567", "089 1234567"),
        ("+43 1 234567", "+431234567", "+43 1 234567"),
    ],
)
def test_phone_good_stored_e164_shown_national(raw, e164, shown):
    assert v.normalise_phone(raw) == e164
    assert v.phone_display(e164) == shown


@pytest.mark.parametrize("raw", ["12", "abc", "030", "+49 123", "0176-1234567890123"])
def test_phone_bad(raw):
    e = _err(v.normalise_phone, raw, field="fax")
    assert e.field == "fax" and e.message.startswith("Fax:")


# --------------------------------------------------------------------------- KVNR


def test_kvnr_check_digit_reference_example():
    assert v.kvnr_check_digit("A12345678") == 0
    assert v.validate_kvnr("A123456780") == "A123456780"
    assert v.validate_kvnr(" a 123 456 780 ") == "A123456780"
    assert v.validate_kvnr("") is None


@pytest.mark.parametrize("raw", ["A12345678", "A1234567801", "1234567890", "AB12345678", "Ä123456780"])
def test_kvnr_bad_format(raw):
    e = _err(v.validate_kvnr, raw)
    assert e.field == "insurance_number" and "Buchstaben und 9 Ziffern" in e.message


def test_kvnr_wrong_check_digit():
    e = _err(v.validate_kvnr, "A123456781")
    assert "Prüfziffer" in e.message


@given(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), st.text("0123456789", min_size=8, max_size=8), st.integers(1, 8), st.integers(1, 9))
def test_kvnr_changing_any_single_digit_breaks_the_check(letter, digits, pos, delta):
    body = letter + digits
    valid = body + str(v.kvnr_check_digit(body))
    assert v.validate_kvnr(valid) == valid
    changed = list(valid)
    changed[pos] = str((int(changed[pos]) + delta) % 10)
    with pytest.raises(FieldError):
        v.validate_kvnr("".join(changed))


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize("raw", ["23.11.1990", "1990-11-23", date(1990, 11, 23), "23.11.2012"])
def test_birth_date_good(raw):
    assert v.validate_birth_date(raw, today=TODAY) is not None


@pytest.mark.parametrize(
    "raw, words",
    [
        ("24.11.2026", "Zukunft"),
        ("24.11.2012", "13 Jahre"),  # one day short of 14
        ("22.11.1915", "nicht plausibel"),  # 111 years old
        ("31.02.1990", "kein gültiges Datum"),
        ("1990/11/23", "TT.MM.JJJJ"),
    ],
)
def test_birth_date_bad(raw, words):
    e = _err(v.validate_birth_date, raw, today=TODAY)
    assert e.field == "birth_date" and e.message.startswith("Geburtsdatum") and words in e.message


def test_birth_date_bounds_are_inclusive():
    assert v.validate_birth_date("23.11.2012", today=TODAY) == date(2012, 11, 23)  # exactly 14
    assert v.validate_birth_date("24.11.1915", today=TODAY) == date(1915, 11, 24)  # 110


def test_prior_therapy_end():
    born = date(1990, 1, 1)
    assert v.validate_prior_therapy_end("01.06.2020", birth_date=born, today=TODAY) == date(2020, 6, 1)
    assert v.validate_prior_therapy_end(TODAY, birth_date=born, today=TODAY) == TODAY
    assert "Zukunft" in _err(v.validate_prior_therapy_end, "24.11.2026", birth_date=born, today=TODAY).message
    e = _err(v.validate_prior_therapy_end, "01.01.1989", birth_date=born, today=TODAY)
    assert e.field == "prior_therapy_end" and "vor dem Geburtsdatum" in e.message


# --------------------------------------------------------------------------- health


@pytest.mark.parametrize("raw, clean", [("F32", "F32"), ("f32.1", "F32.1"), (" F45.41 ", "F45.41"), ("", None)])
def test_icd_good(raw, clean):
    assert v.validate_icd10_f(raw) == clean


@pytest.mark.parametrize("raw", ["G32.1", "F3", "F32.", "F32.123", "32.1", "F32-1"])
def test_icd_bad(raw):
    e = _err(v.validate_icd10_f, raw)
    assert e.field == "diagnosis" and "Kapitel F" in e.message


def test_symptoms_good():
    assert v.validate_symptoms([]) == []
    assert v.validate_symptoms(SYMPTOMS[:6]) == SYMPTOMS[:6]
    assert v.validate_symptoms("schlafstörungen|Mobbing| Mobbing ") == ["Schlafstörungen", "Mobbing"]


def test_symptoms_bad():
    assert "höchstens 6" in _err(v.validate_symptoms, SYMPTOMS[:7]).message
    e = _err(v.validate_symptoms, ["Mobbing", "Kopfweh"])
    assert e.field == "symptoms" and "Kopfweh" in e.message


# --------------------------------------------------------------------------- preferences


@pytest.mark.parametrize(
    "raw, clean",
    [
        (["TP", "VT"], ["VT", "TP"]),
        ("VT|ST", ["VT", "ST"]),
        ("vt, ap", ["VT", "AP"]),
        ("VT/TP", ["VT", "TP"]),
        ("Verhaltenstherapie (VT)", ["VT"]),
        ("", []),
    ],
)
def test_methods_good(raw, clean):
    assert v.validate_methods(raw) == clean


@pytest.mark.parametrize("raw", ["XY", ["VT", "Gestalt"], "VT|Hypnose"])
def test_methods_bad(raw):
    e = _err(v.validate_methods, raw, field="preferred_methods")
    assert e.field == "preferred_methods" and "kein Verfahren" in e.message


@pytest.mark.parametrize("raw, clean", [(1, 1), ("200", 200), ("25", 25), ("", None)])
def test_max_distance_good(raw, clean):
    assert v.validate_max_distance(raw) == clean


@pytest.mark.parametrize("raw, words", [(0, "zwischen 1 und 200"), (201, "zwischen 1 und 200"), ("zehn", "ganze Zahl"), ("2,5", "ganze Zahl")])
def test_max_distance_bad(raw, words):
    e = _err(v.validate_max_distance, raw)
    assert e.field == "max_distance_km" and words in e.message


def test_age_range():
    assert v.validate_age_range(18, 65) == (18, 65)
    assert v.validate_age_range("", 65) == (None, 65)
    assert v.validate_age_range(30, 30) == (30, 30)
    e = _err(v.validate_age_range, 40, 30)
    assert e.field == "age_max" and "Mindestalter" in e.message
    assert _err(v.validate_age_range, -1, 30).field == "age_min"


def test_windows_field():
    assert v.validate_windows("mo 9-12", field="availability") == "Mo 09:00-12:00"
    assert v.validate_windows("", field="availability") is None
    e = _err(v.validate_windows, "Mo 12-9", field="phone_hours")
    assert e.field == "phone_hours" and e.message.startswith("Telefonische Erreichbarkeit:")


def test_booleans_and_choices():
    assert v.boolean("consent_given", "ja") is True and v.boolean("consent_given", "0") is False
    assert v.boolean("consent_given", "", default=False) is False
    assert "kein Ja/Nein-Wert" in _err(v.boolean, "consent_given", "vielleicht").message
    from core.platform.vocab import Gender

    assert v.choice("gender", Gender, "weiblich") is Gender.female
    assert v.choice("gender", Gender, "FEMALE") is Gender.female
    assert "erlaubt:" in _err(v.choice, "gender", Gender, "xyz").message


def test_names_and_lengths():
    assert v.name("last_name", "  Müller   Lüdenscheidt ") == "Müller Lüdenscheidt"
    assert "fehlt" in _err(v.name, "first_name", " ").message
    assert "Ziffern" in _err(v.name, "last_name", "R2D2").message
    assert "zu lang" in _err(v.text, "city", "x" * 101, max_len=100).message


def test_languages():
    assert v.validate_languages("englisch|Türkisch|Englisch") == ["Englisch", "Türkisch"]
    assert v.validate_languages(["Arabisch"]) == ["Arabisch"]


def test_collector_gathers_every_error():
    c = v.Collector()
    c.check("plz", v.validate_plz, "1")
    c.check("email", v.validate_email, "x@")
    c.check("city", v.text, "city", "Berlin", max_len=100)
    assert set(c.errors) == {"plz", "email"} and c.values == {"city": "Berlin"}
    with pytest.raises(v.ValidationErrors) as info:
        c.raise_if_errors()
    assert "PLZ" in str(info.value) and "E-Mail" in str(info.value)


# --------------------------------------------------------------------------- issue 12, point 16: bad input


@pytest.mark.parametrize("raw", ["VT/", "/TP", "VT/ "])
def test_12_16_methods_with_dangling_separator_give_a_german_field_message(raw):
    e = _err(v.validate_methods, raw, field="methods")  # was AttributeError ("unerwarteter Fehler")
    assert e.field == "methods" and e.message.startswith("Verfahren:") and "VT/TP" in e.message


@pytest.mark.parametrize("fn, raw", [
    (v.validate_plz, "١٠١١٥"),  # Arabic-Indic digits
    (v.validate_plz, "１０１１５"),  # full-width digits
    (v.validate_kvnr, "A١٢٣٤٥٦٧٨٠"),
    (v.validate_icd10_f, "F٣٢.١"),
])
def test_12_16_non_ascii_digits_do_not_pass_plz_kvnr_icd(fn, raw):
    e = _err(fn, raw)
    assert "muss" in e.message or "kein Code" in e.message


@pytest.mark.parametrize("fn, args", [
    (v.text, ("notes", "Hallo\x00Welt")),
    (v.name, ("last_name", "Mül\x00ler")),
    (v.validate_reason, ("Beschwerde\x00",)),
])
def test_12_16_nul_bytes_in_text_give_a_german_field_message(fn, args):
    e = _err(fn, *args, max_len=100) if fn is v.text else _err(fn, *args)
    assert "unzulässiges Steuerzeichen" in e.message
