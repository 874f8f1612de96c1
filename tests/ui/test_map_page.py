"""AppTest for the map: the deck spec has therapists by state colour, the patient and the rings."""

from __future__ import annotations

import json
from datetime import date

from core.platform.db import get_engine, unit_of_work
from core.matching.map_view import MAP_STATES, MapState
from core.platform.models import Inquiry
from core.platform.vocab import Role
from tests.support.apptest import login
from tests.support.seed import patient_with_search, therapist


def _seed(url):
    with unit_of_work(get_engine(url)) as s:
        patient_with_search(s, last_name="Kartenprobe", lat=52.52, lon=13.40, max_distance_km=25, plz="10178")
        therapist(s, last_name="Frei", lat=52.53, lon=13.41, email="frei@example.org")
        therapist(s, last_name="Kuehl", lat=52.50, lon=13.35, next_contact_at=date(2099, 1, 1), email="kuehl@example.org")
        busy = therapist(s, last_name="Belegt", lat=52.55, lon=13.45, email="gemeinsam@example.org")
        s.add(Inquiry(therapist_id=busy.id, channel="email", status="sent", size=1))
        # same practice address as "Belegt": matching hides the whole practice, so does the map
        therapist(s, last_name="Kollegin", lat=52.545, lon=13.44, email="Gemeinsam@Example.org")
        therapist(s, last_name="Gesperrt", lat=52.51, lon=13.42, status="blocked", email="gesperrt@example.org")


def _deck(at):
    charts = at.get("deck_gl_json_chart")
    assert charts, "no map rendered"
    return json.loads(charts[0].proto.json)


def test_patient_mode_deck_spec(app_db):
    _seed(app_db)
    at = login(Role.coordinator)
    at.switch_page("pages/map.py").run()
    at.text_input(key="map_patient_query").input("Kartenprobe").run()
    assert not at.exception and not at.error
    spec = _deck(at)
    layers = {layer["id"]: layer for layer in spec["layers"]}
    assert set(layers) == {"backdrop", "cities", "rings", "therapists", "patients"}
    ring_radii = sorted(r["radius_m"] for r in layers["rings"]["data"])
    assert ring_radii == [5000, 10000, 20000, 25000]
    colors = {row["name"].split()[-1]: tuple(row["color"]) for row in layers["therapists"]["data"]}
    assert colors["Frei"] == MAP_STATES[MapState.contactable][1]
    assert colors["Kuehl"] == MAP_STATES[MapState.cooling][1]
    assert colors["Belegt"] == MAP_STATES[MapState.open_inquiry][1]
    assert colors["Kollegin"] == MAP_STATES[MapState.open_inquiry][1]
    assert colors["Gesperrt"] == MAP_STATES[MapState.unavailable][1]
    assert layers["therapists"]["pickable"] is True
    assert "Luftlinie" in layers["therapists"]["data"][0]["distance"]
    assert len(layers["patients"]["data"]) == 1
    assert any("GeoNames" in c.value for c in at.caption)


def test_region_mode_for_viewer(app_db):
    _seed(app_db)
    at = login(Role.viewer)
    at.switch_page("pages/map.py").run()
    at.segmented_control(key="map_mode").set_value("Region").run()
    at.text_input(key="map_region").input("10").run()
    assert not at.exception and not at.error
    layers = {layer["id"]: layer for layer in _deck(at)["layers"]}
    assert "rings" not in layers
    assert len(layers["therapists"]["data"]) == 5 and len(layers["patients"]["data"]) == 1


def _therapist_id(url, last_name):
    from sqlalchemy import select

    from core.platform.models import Therapist

    with unit_of_work(get_engine(url)) as s:
        return s.scalar(select(Therapist.id).where(Therapist.last_name == last_name))


def test_card_creates_inquiry_when_eligible_and_explains_when_not(app_db):
    from sqlalchemy import func, select

    from core.platform.models import InquiryPatient

    _seed(app_db)
    at = login(Role.coordinator)
    at.switch_page("pages/map.py").run()
    at.text_input(key="map_patient_query").input("Kartenprobe").run()

    # a therapist with an open inquiry: the card says why not, no button
    at.query_params["map_therapist"] = str(_therapist_id(app_db, "Belegt"))
    at.run()
    assert not at.exception and not at.error
    assert any("Nicht anfragbar" in m.value for m in at.markdown)
    assert not [b for b in at.button if (b.label or "").startswith("Anfrage mit")]

    # a contactable one: one click creates a draft inquiry with this patient
    at.query_params["map_therapist"] = str(_therapist_id(app_db, "Frei"))
    at.run()
    buttons = [b for b in at.button if (b.label or "").startswith("Anfrage mit")]
    assert len(buttons) == 1, [m.value for m in at.markdown]
    buttons[0].click().run()
    assert not at.exception and not at.error
    assert any("erstellt (noch nicht gesendet)" in t.value.replace("\\", "") for t in at.toast)  # shown escaped (md)
    assert any("Nicht anfragbar" in m.value for m in at.markdown)  # the card shows the new state
    with unit_of_work(get_engine(app_db)) as s:
        assert s.scalar(select(func.count()).select_from(InquiryPatient)) == 1


def test_viewer_card_has_no_create_button(app_db):
    _seed(app_db)
    at = login(Role.viewer)
    at.switch_page("pages/map.py").run()
    at.text_input(key="map_patient_query").input("Kartenprobe").run()
    at.query_params["map_therapist"] = str(_therapist_id(app_db, "Frei"))
    at.run()
    assert not at.exception and not at.error
    assert not [b for b in at.button if (b.label or "").startswith("Anfrage mit")]


def test_point23_own_base_layer_and_no_tile_server_by_default(app_db, monkeypatch):
    """Without a setting the map asks no outside tile server (no CARTO request telling it which
    area a coordinator looks at) and draws our own base layer from the PLZ table: faint PLZ
    points and city names. MAP_TILES=carto brings CARTO's basemap with its attribution."""
    from core.platform.config import get_settings
    from core.platform.models import PlzCentroid

    _seed(app_db)
    with unit_of_work(get_engine(app_db)) as s:
        for n in range(8):
            s.add(PlzCentroid(plz=f"101{n:02d}", city="Berlin", state_code="BE", lat=52.50 + n / 100, lon=13.38))
        s.add(PlzCentroid(plz="14467", city="Potsdam", state_code="BB", lat=52.40, lon=13.06))
    at = login(Role.coordinator)
    at.switch_page("pages/map.py").run()
    at.text_input(key="map_patient_query").input("Kartenprobe").run()
    spec = _deck(at)
    raw = json.dumps(spec)
    assert spec.get("mapProvider") is None and "cartocdn" not in raw and "mapbox" not in raw.lower()
    assert spec["mapStyle"].startswith("data:application/json")  # an inline style without sources: nothing to fetch
    layers = {layer["id"]: layer for layer in spec["layers"]}
    assert len(layers["backdrop"]["data"]) >= 2 and layers["backdrop"]["pickable"] is False
    assert [c["name"] for c in layers["cities"]["data"]] == ["Berlin"]  # places with many PLZ get a label
    assert not any("CARTO" in c.value for c in at.caption)
    assert any("eigene Ebene" in c.value and "GeoNames" in c.value for c in at.caption)

    monkeypatch.setenv("MAP_TILES", "carto")
    get_settings.cache_clear()
    at.run()
    spec = _deck(at)
    assert spec.get("mapProvider") == "carto"
    assert any("CARTO" in c.value for c in at.caption)


def test_point13_tooltip_names_are_escaped(app_db):
    with unit_of_work(get_engine(app_db)) as s:
        patient_with_search(s, last_name="Kartenprobe", lat=52.52, lon=13.40, max_distance_km=25, plz="10178")
        therapist(s, last_name='<img src="http://127.0.0.1:9/x.png">', lat=52.53, lon=13.41, email="img@example.org")
    at = login(Role.coordinator)
    at.switch_page("pages/map.py").run()
    at.text_input(key="map_patient_query").input("Kartenprobe").run()
    layers = {layer["id"]: layer for layer in _deck(at)["layers"]}
    names = [row["name"] for row in layers["therapists"]["data"]]
    assert names and all("<img" not in n for n in names) and any("&lt;img" in n for n in names)
