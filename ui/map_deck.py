"""Build the pydeck map for a MapView: therapists by state, patients, distance rings, on
our own base layer (PLZ points as a faint backdrop, city names) drawn from the PLZ table.

By default no outside tile server is asked (a basemap request tells the server which area,
perhaps a patient's neighbourhood, a coordinator looks at): `map_provider=None`. The setting
MAP_TILES chooses CARTO ("carto") or a self-hosted Mapbox-GL style URL, shown with its
attribution. Literal string arguments need inner quotes in pydeck ("'pixels'"). Tooltips
are HTML: every text in them is escaped (a name is never markup)."""

from __future__ import annotations

import html
import json
import math
from typing import Any, Optional
from urllib.parse import quote

import pydeck as pdk

from core.geo.plz import GEONAMES_ATTRIBUTION, MapBackdrop
from core.platform.config import Settings

from core.platform.formatting import format_km, format_number
from core.matching.map_view import MAP_STATES, PATIENT_COLOR, MapView

RING_COLOR = (60, 60, 60)
BACKDROP_COLOR = (120, 130, 145, 70)
CITY_LABELS = 60
CARTO_ATTRIBUTION = "Kartenhintergrund © CARTO, © OpenStreetMap-Mitwirkende"
# A map style with only a background layer, as a data: URL (pydeck accepts a dict only for
# Mapbox): the browser reads it without any request.
OFFLINE_STYLE = "data:application/json;charset=utf-8," + quote(json.dumps({
    "version": 8,
    "sources": {},
    "layers": [{"id": "background", "type": "background", "paint": {"background-color": "#f5f7fa"}}],
}, separators=(",", ":")))


def attribution(settings: Settings) -> str:
    """The line under the map: our own layer's source, plus the tile server's when one is set."""
    parts = [f"Kartengrundlage: eigene Ebene aus den PLZ-Mittelpunkten ({GEONAMES_ATTRIBUTION})"]
    if settings.MAP_TILES == "carto":
        parts.append(settings.MAP_TILES_ATTRIBUTION or CARTO_ATTRIBUTION)
    elif settings.MAP_TILES:
        parts.append(settings.MAP_TILES_ATTRIBUTION or "Kartenhintergrund: eigener Kartenserver")
    return " · ".join(parts)


def _base_layers(backdrop: Optional[MapBackdrop]) -> list[pdk.Layer]:
    if backdrop is None:
        return []
    return [
        pdk.Layer(
            "ScatterplotLayer",
            id="backdrop",
            data=[{"p": [lon, lat]} for lat, lon in backdrop.points],
            get_position="p",
            get_fill_color=list(BACKDROP_COLOR),
            get_radius=2,
            radius_units="'pixels'",
            pickable=False,
        ),
        pdk.Layer(
            "TextLayer",
            id="cities",
            data=[{"name": name, "p": [lon, lat]} for name, lat, lon in backdrop.cities[:CITY_LABELS]],
            get_position="p",
            get_text="name",
            get_size=12,
            get_color=[70, 80, 95, 200],
            get_text_anchor="'start'",
            get_pixel_offset=[6, 0],
            character_set="'auto'",  # umlauts (München, Köln) are not in the default ASCII atlas
            pickable=False,
        ),
    ]

MAX_RING_COLOR = (200, 30, 30)


def _zoom(view: MapView, height_px: int) -> float:
    """Web-Mercator zoom at which the largest ring (plus a margin) fits the map's height."""
    if not view.rings_km or view.center is None:
        return 9
    metres_across = 2 * max(view.rings_km) * 1000 * 1.15
    metres_per_px_at_zoom0 = 156543.03 * math.cos(math.radians(view.center[0]))
    return max(3.0, min(14.0, math.log2(metres_per_px_at_zoom0 * height_px / metres_across)))


def build_deck(
    view: MapView, height_px: int = 560, *, backdrop: Optional[MapBackdrop] = None, settings: Optional[Settings] = None,
) -> pdk.Deck:
    esc = html.escape
    therapists = [
        {
            "id": t.id,
            "name": esc(t.name),
            "lat": t.lat,
            "lon": t.lon,
            "color": list(MAP_STATES[t.state][1]),
            "state": esc(MAP_STATES[t.state][0]),
            "methods": esc(t.methods or ""),
            "hours": esc(t.phone_hours_today or ""),
            "distance": format_km(t.distance_km) if t.distance_km is not None else "",
            "approx": " (Lage ungefähr)" if t.approximate else "",
        }
        for t in view.therapists
    ]
    patients = [
        {
            "id": p.search_id,
            "name": esc(p.label),
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
    layers = _base_layers(backdrop)
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
    tiles = settings.MAP_TILES if settings is not None else ""
    provider: Optional[str] = "carto" if tiles else None
    style: Any = tiles if tiles.startswith(("https://", "http://")) else None
    if not tiles:
        # Streamlit fills in a CARTO style when none is given; a data: URL style with only a
        # background layer needs no request at all.
        style = OFFLINE_STYLE
    return pdk.Deck(
        layers=layers,
        initial_view_state=pdk.ViewState(latitude=center[0], longitude=center[1], zoom=_zoom(view, height_px)),
        map_provider=provider,
        map_style=style,
        tooltip={"html": "<b>{name}</b><br/>{state}<br/>{methods}<br/>{distance}{approx}<br/>{hours}"},
    )
