"""Build the pydeck map for a MapView: therapists by state, patients, distance rings.

Layers render without a basemap (offline); the Carto basemap appears when the browser is
online. Literal string arguments need inner quotes in pydeck ("'pixels'")."""

from __future__ import annotations

import math

import pydeck as pdk

from core.platform.formatting import format_km, format_number
from core.matching.map_view import MAP_STATES, PATIENT_COLOR, MapView

RING_COLOR = (60, 60, 60)
MAX_RING_COLOR = (200, 30, 30)


def _zoom(view: MapView, height_px: int) -> float:
    """Web-Mercator zoom at which the largest ring (plus a margin) fits the map's height."""
    if not view.rings_km or view.center is None:
        return 9
    metres_across = 2 * max(view.rings_km) * 1000 * 1.15
    metres_per_px_at_zoom0 = 156543.03 * math.cos(math.radians(view.center[0]))
    return max(3.0, min(14.0, math.log2(metres_per_px_at_zoom0 * height_px / metres_across)))


def build_deck(view: MapView, height_px: int = 560) -> pdk.Deck:
    therapists = [
        {
            "id": t.id,
            "name": t.name,
            "lat": t.lat,
            "lon": t.lon,
            "color": list(MAP_STATES[t.state][1]),
            "state": MAP_STATES[t.state][0],
            "methods": t.methods,
            "hours": t.phone_hours_today,
            "distance": format_km(t.distance_km) if t.distance_km is not None else "",
            "approx": " (Lage ungefähr)" if t.approximate else "",
        }
        for t in view.therapists
    ]
    patients = [
        {
            "id": p.search_id,
            "name": p.label,
            "lat": p.lat,
            "lon": p.lon,
            "color": list(PATIENT_COLOR),
            "state": f"wartet seit {format_number(p.waiting_days)} Tagen",
            "methods": "",
            "hours": "",
            "distance": "",
            "approx": "",
        }
        for p in view.patients
    ]
    layers = []
    if view.rings_km and view.patients:
        p = view.patients[0]
        rings = [
            {
                "lat": p.lat,
                "lon": p.lon,
                "radius_m": km * 1000,
                "km": km,
                "color": list(MAX_RING_COLOR if km == p.max_km else RING_COLOR),
            }
            for km in view.rings_km
        ]
        layers.append(
            pdk.Layer(
                "ScatterplotLayer",
                id="rings",
                data=rings,
                get_position=["lon", "lat"],
                get_radius="radius_m",
                radius_units="'meters'",
                filled=False,
                stroked=True,
                get_line_color="color",
                line_width_min_pixels=2,
                pickable=False,
            )
        )
    layers.append(
        pdk.Layer(
            "ScatterplotLayer",
            id="therapists",
            data=therapists,
            get_position=["lon", "lat"],
            get_fill_color="color",
            get_radius=6,
            radius_units="'pixels'",
            stroked=True,
            get_line_color=[255, 255, 255],
            line_width_min_pixels=1,
            pickable=True,
        )
    )
    layers.append(
        pdk.Layer(
            "ScatterplotLayer",
            id="patients",
            data=patients,
            get_position=["lon", "lat"],
            get_fill_color="color",
            get_radius=9 if view.rings_km else 5,
            radius_units="'pixels'",
            stroked=True,
            get_line_color=[255, 255, 255],
            line_width_min_pixels=2,
            pickable=True,
        )
    )
    center = view.center or (51.16, 10.45)
    return pdk.Deck(
        layers=layers,
        initial_view_state=pdk.ViewState(latitude=center[0], longitude=center[1], zoom=_zoom(view, height_px)),
        map_style=None,
        tooltip={"html": "<b>{name}</b><br/>{state}<br/>{methods}<br/>{distance}{approx}<br/>{hours}"},
    )
