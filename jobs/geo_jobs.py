"""Geocoding job (thin call into core): practice addresses of therapists marked pending get
coordinates from the configured geocoder (or the PLZ centroid when offline)."""

from __future__ import annotations

from core.adapters.geocoder import NominatimGeocoder
from core.geo.geocoding import geocode_pending_therapists
from jobs.spec import JobContext

# At one request per second (Nominatim's policy) a batch takes at most about a minute,
# so runs every two minutes never overlap and work through a backlog of ~36,000 a day.
BATCH = 50


def geocode(ctx: JobContext) -> str:
    geocoder = NominatimGeocoder.from_settings(ctx.settings)
    # geocode_pending_therapists commits per therapist so no write lock is held during HTTP calls.
    with ctx.session_scope() as session:
        summary = geocode_pending_therapists(session, geocoder, limit=BATCH, now=ctx.now)
    return summary.message()
