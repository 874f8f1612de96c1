"""Bad input everywhere (issue 15.4): every form validator, the registry's cleaning and the
time-window parser take any text – control characters, NUL bytes, non-ASCII digits, huge
strings – and either accept it or refuse it with a German message; never an unhandled
exception. The CSV import has its own fuzz test (tests/integration/test_fuzz_csv.py)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.platform import timewindows
from core.platform import validation as v
from core.registry import patients, therapists

TODAY = date(2026, 11, 23)

# text people type, paste or a broken client sends: any unicode incl. controls and NUL,
# plus the shapes the validators look for, so both branches get exercised
SAMPLES = ["", " ", "\x00", "VT/", "VT, /", "/", "12345", "١٢٣٤٥", "A123456780", "A١٢٣٤٥٦٧٨٠", "F32.1", "F٣٢.1",
           "=1+1", "Mo 09:00-12:00", "mo-fr 8-12", "24:00", "x" * 5000, "2026-13-40", "31.02.2026", "-5", "1e309",
           "nan", "VT\x00", "10115\x00"]
nasty = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(SAMPLES),
    st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=10), st.text(max_size=10)),
)
value = st.one_of(nasty, st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), st.lists(nasty, max_size=4))


def _german(message: str) -> bool:
    return bool(message) and "Traceback" not in message and "object has no attribute" not in message


VALIDATORS = [
    lambda x: v.text("notes", x, max_len=200),
    lambda x: v.boolean("open_to_group", x),
    lambda x: v.integer("max_distance_km", x, lo=1, hi=200),
    lambda x: v.parse_date("birth_date", x),
    lambda x: v.split_list(x),
    lambda x: v.name("first_name", x),
    lambda x: v.validate_plz(x),
    lambda x: v.validate_email(x),
    lambda x: v.normalise_phone(x),
    lambda x: v.validate_website(x),
    lambda x: v.validate_kvnr(x),
    lambda x: v.validate_birth_date(x, today=TODAY),
    lambda x: v.validate_icd10_f(x),
    lambda x: v.validate_symptoms(x),
    lambda x: v.validate_methods(x),
    lambda x: v.validate_max_distance(x),
    lambda x: v.validate_windows(x, field="availability"),
    lambda x: v.validate_languages(x),
    lambda x: v.validate_reason(x),
]


@settings(deadline=None)
@given(st.sampled_from(range(len(VALIDATORS))), value)
def test_validators_accept_or_refuse_in_german(index, raw):
    try:
        VALIDATORS[index](raw)
    except v.FieldError as exc:
        assert _german(exc.message)
    except v.ValidationErrors as exc:
        assert all(_german(m) for m in exc.errors.values())


@pytest.mark.parametrize("sample", SAMPLES + [None, 0, -1, 3.5, [], ["VT", None], [1, 2]])
@pytest.mark.parametrize("index", range(len(VALIDATORS)))
def test_every_validator_takes_every_known_bad_sample(index, sample):
    test_validators_accept_or_refuse_in_german.hypothesis.inner_test(index, sample)


@pytest.mark.parametrize("check", [v.validate_plz, v.validate_kvnr, v.validate_icd10_f])
@pytest.mark.parametrize("sample", ["١٢٣٤٥", "A١٢٣٤٥٦٧٨٠", "F٣٢.1", "１０１１５"])
def test_non_ascii_digits_never_pass_the_code_checks(check, sample):
    try:
        accepted = check(sample)
    except v.FieldError:
        return
    assert accepted is None or accepted.isascii(), f"{check.__name__} accepted {sample!r}"


@settings(deadline=None)
@given(st.one_of(nasty, st.none()))
def test_timewindow_parser_accepts_or_names_the_problem(text):
    try:
        windows = timewindows.parse(text)
    except timewindows.TimeWindowError as exc:
        assert _german(exc.message)
    else:
        # whatever it accepts has one canonical spelling that parses to the same windows
        assert timewindows.parse(timewindows.format(windows)) == windows


FIELDS = ["first_name", "last_name", "birth_date", "plz", "email", "phone", "insurance_number", "diagnosis",
          "symptoms", "max_distance_km", "availability", "gender", "salutation", "methods", "phone_hours",
          "website", "languages", "age_min", "age_max", "notes", "preferred_methods", "transport"]


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), value, max_size=8), st.booleans())
def test_registry_cleaning_accepts_or_lists_german_field_errors(raw, from_csv):
    for clean in (patients.clean, therapists.clean):
        try:
            clean(raw, today=TODAY, from_csv=from_csv)
        except v.ValidationErrors as exc:
            assert exc.errors and all(_german(m) for m in exc.errors.values())
