"""What patients and therapists share (core.registry.records), once for both kinds on both
databases: editors only, hidden contact/health fields for viewers."""

from __future__ import annotations

import pytest

from core.platform.permissions import PermissionDenied
from core.registry import patient_detail, patients, therapists
from tests.support.registry_fixtures import COORD, NOW, PATIENT, THERAPIST, TODAY, VIEWER

KINDS = {
    "patient": (patients, PATIENT, patients.create_patient, patients.update_patient, patients.list_patients,
                lambda s, a, i: patient_detail.get_patient(s, a, i, today=TODAY)),
    "therapist": (therapists, THERAPIST, therapists.create_therapist, therapists.update_therapist, therapists.list_therapists,
                  lambda s, a, i: therapists.get_therapist(s, a, i, today=TODAY)),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_viewer_cannot_create_or_edit_and_sees_no_sensitive_fields(db_session, kind):
    module, good, create, update, list_rows, get = KINDS[kind]
    record = create(db_session, COORD, good, now=NOW, today=TODAY)
    with pytest.raises(PermissionDenied):
        create(db_session, VIEWER, good, now=NOW, today=TODAY)
    with pytest.raises(PermissionDenied):
        update(db_session, VIEWER, record.id, {"city": "X"}, now=NOW, today=TODAY)
    detail = get(db_session, VIEWER, record.id)
    assert not detail.sensitive_visible
    assert not set(module.SENSITIVE) & set(detail.values)
    rows, total = list_rows(db_session, VIEWER, today=TODAY)
    assert total == 1 and rows[0].email is None and rows[0].phone is None
    assert list_rows(db_session, COORD, today=TODAY)[0][0].email == good["email"]
    full = get(db_session, COORD, record.id)
    assert full.sensitive_visible and set(module.SENSITIVE) <= set(full.values)
