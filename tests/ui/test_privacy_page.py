"""AppTest of Datenschutz (issue 15.1/15.2): admins export and see who saw what; others can't open it."""

from __future__ import annotations

import pytest

from core.platform.db import get_engine, unit_of_work
from core.platform.vocab import Role
from tests.support import seed
from tests.support.apptest import login


def _patient(url: str) -> int:
    with unit_of_work(get_engine(url)) as s:
        p, _ = seed.patient_with_search(s, first_name="Ida", last_name="Import")
        return p.id


def test_admin_exports_and_sees_the_export_in_the_access_list(app_db):
    pid = _patient(app_db)
    at = login(Role.admin)
    at.switch_page("pages/privacy.py").run()
    assert not at.exception
    at.text_input(key="privacy_patient").input(f"P{pid}").run()
    assert f"P{pid}: Ida Import" in [t.value for t in at.text]
    at.button(key="privacy_export").click().run()
    assert not at.exception
    seen = at.dataframe[-1].value
    assert "Patient:in: Auskunft nach Art. 15 DSGVO erstellt" in set(seen["Aktion"])
    # an active search blocks anonymisation, with the reason
    assert any("läuft noch oder ist pausiert" in w.value for w in at.warning)


def test_bad_reference_gives_a_german_message(app_db):
    at = login(Role.admin)
    at.switch_page("pages/privacy.py").run()
    at.text_input(key="privacy_patient").input("A12").run()
    assert [e.value for e in at.error] == ["Bitte eine Patientennummer wie P152 eingeben."]


@pytest.mark.parametrize("role", [Role.coordinator, Role.viewer])
def test_non_admins_get_no_privacy_page(app_db, role):
    at = login(role)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/privacy.py")  # not in their navigation at all
