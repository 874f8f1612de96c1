"""HTTP client for a Nominatim-compatible geocoder (self-hosted or the public OSM server).

Only therapist practice addresses ever reach this module (docs/architecture.md, "Privacy"); the service in
`core.geocoding` builds the `PracticeAddress` from a Therapist row and nothing else.

Politeness, as the Nominatim usage policy asks:
- at most one request per second across the whole process, and never two at once
  (`RateLimiter`, shared by every client unless a test injects its own);
- an identifying User-Agent that carries the operator's contact, plus the `email` parameter;
- retries with exponential backoff on 429 and 5xx, honouring `Retry-After` (capped);
- a timeout on every request.

Plain urllib from the standard library: the client needs exact control over the query
string, the headers, the Retry-After handling and the process-wide limiter; geopy's
Nominatim would hide the status codes behind its own exception mapping and its
RateLimiter is per wrapped function, neither process-wide nor thread-safe.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Iterator, Optional, Protocol

PUBLIC_NOMINATIM_HOSTS = {"nominatim.openstreetmap.org"}
MAX_RESPONSE_BYTES = 1_000_000


class GeocoderError(RuntimeError):
    """The geocoder could not answer (network, HTTP error, bad response); try again later."""


class GeocoderConfigError(ValueError):
    """The geocoder settings cannot be used; the message is German and names the setting."""


@dataclass(frozen=True)
class PracticeAddress:
    """A therapist's practice address: public business data, safe to send to a geocoder."""

    street: str
    plz: str
    city: str

    def one_line(self) -> str:
        return ", ".join(p for p in (self.street, f"{self.plz} {self.city}".strip()) if p)


@dataclass(frozen=True)
class GeocodeResult:
    lat: float
    lon: float
    display_name: Optional[str] = None


class Geocoder(Protocol):
    """What the geocoding service needs: an address in, a result or None (not found) out.

    Raises GeocoderError when the service cannot answer right now."""

    def geocode(self, address: PracticeAddress) -> Optional[GeocodeResult]: ...


class RateLimiter:
    """At most one request per `min_interval_s`, and never two at the same time.

    `slot()` holds a lock for the whole request, waits until `min_interval_s` has passed
    since the previous request *ended*, and records the end time when the block exits.
    Measuring from the end keeps the gap at the server at least `min_interval_s` whatever
    the network latency. Clock and sleep are injectable for tests.
    """

    def __init__(
        self,
        min_interval_s: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if min_interval_s < 0:
            raise ValueError("min_interval_s must be >= 0")
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_end: Optional[float] = None

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._last_end is not None:
                wait = self._last_end + self.min_interval_s - self._clock()
                if wait > 0:
                    self._sleep(wait)
            try:
                yield
            finally:
                self._last_end = self._clock()


# One limiter for the whole process: every client shares it unless told otherwise.
PROCESS_LIMITER = RateLimiter(1.0)


def _user_agent(user_agent: str, contact: str) -> str:
    ua = (user_agent or "").strip() or "therapieplatz-dashboard/1.0"
    contact = (contact or "").strip()
    return f"{ua} ({contact})" if contact and contact not in ua else ua


def _search_url(base_url: str) -> str:
    base = base_url.strip().rstrip("/")
    return base if base.endswith("/search") else base + "/search"


def parse_retry_after(value: Optional[str], *, now: datetime) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def parse_search_response(payload: object) -> Optional[GeocodeResult]:
    """The first hit of a Nominatim `/search?format=jsonv2` answer; None for `[]`."""
    if not isinstance(payload, list):
        raise GeocoderError(f"unexpected geocoder answer: {type(payload).__name__} instead of a list")
    if not payload:
        return None
    first = payload[0]
    if not isinstance(first, dict):
        raise GeocoderError("unexpected geocoder answer: list item is not an object")
    try:
        lat = float(first["lat"])
        lon = float(first["lon"])
    except (KeyError, TypeError, ValueError):
        raise GeocoderError("geocoder answer without usable lat/lon") from None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise GeocoderError(f"geocoder answer out of range: {lat}, {lon}")
    name = first.get("display_name")
    return GeocodeResult(lat=lat, lon=lon, display_name=str(name) if name is not None else None)


class NominatimGeocoder:
    """Geocodes practice addresses through `<base_url>/search` (Nominatim JSON v2)."""

    def __init__(
        self,
        base_url: str,
        *,
        user_agent: str,
        contact: str = "",
        timeout_s: float = 10,
        limiter: Optional[RateLimiter] = None,
        max_retries: int = 3,
        backoff_base_s: float = 2.0,
        max_backoff_s: float = 60.0,
        free_form_fallback: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        if not base_url.strip():
            raise GeocoderConfigError("GEOCODER_URL ist leer; ohne Geocoder gelten nur PLZ-Mittelpunkte.")
        parsed = urllib.parse.urlsplit(base_url.strip())
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise GeocoderConfigError(
                f"GEOCODER_URL muss mit http:// oder https:// beginnen (gefunden: {base_url!r})."
            )
        if parsed.hostname in PUBLIC_NOMINATIM_HOSTS and "@" not in (contact or ""):
            raise GeocoderConfigError(
                "Für den öffentlichen Nominatim-Server muss GEOCODER_CONTACT eine E-Mail-Adresse "
                "enthalten (Nutzungsrichtlinie von OpenStreetMap)."
            )
        self.search_url = _search_url(base_url)
        self.user_agent = _user_agent(user_agent, contact)
        self.email = contact.strip() if contact and "@" in contact else None
        self.timeout_s = timeout_s
        self.limiter = limiter if limiter is not None else PROCESS_LIMITER
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.max_backoff_s = max_backoff_s
        self.free_form_fallback = free_form_fallback
        self._sleep = sleep
        self._wall_clock = wall_clock

    @classmethod
    def from_settings(cls, settings, **kwargs) -> Optional["NominatimGeocoder"]:
        """The configured geocoder, or None when GEOCODER_URL is empty (offline mode)."""
        if not settings.GEOCODER_URL.strip():
            return None
        return cls(
            settings.GEOCODER_URL,
            user_agent=settings.GEOCODER_USER_AGENT,
            contact=settings.GEOCODER_CONTACT,
            timeout_s=settings.GEOCODER_TIMEOUT_S,
            **kwargs,
        )

    # ------------------------------------------------------------------ queries

    def structured_params(self, address: PracticeAddress) -> dict[str, str]:
        params = {"format": "jsonv2"}
        if address.street:
            params["street"] = address.street
        if address.plz:
            params["postalcode"] = address.plz
        if address.city:
            params["city"] = address.city
        params.update({"country": "de", "limit": "1"})
        if self.email:
            params["email"] = self.email
        return params

    def free_form_params(self, address: PracticeAddress) -> dict[str, str]:
        params = {"format": "jsonv2", "q": address.one_line(), "countrycodes": "de", "limit": "1"}
        if self.email:
            params["email"] = self.email
        return params

    def geocode(self, address: PracticeAddress) -> Optional[GeocodeResult]:
        """Structured search first; if that finds nothing, one free-form `q=` search."""
        result = self.search(self.structured_params(address))
        if result is None and self.free_form_fallback and address.street:
            result = self.search(self.free_form_params(address))
        return result

    # ------------------------------------------------------------------ transport

    def _backoff(self, attempt: int, retry_after: Optional[float]) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff_s)
        return min(self.backoff_base_s * (2**attempt), self.max_backoff_s)

    def search(self, params: dict[str, str]) -> Optional[GeocodeResult]:
        url = self.search_url + "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(
            url, headers={"User-Agent": self.user_agent, "Accept": "application/json"}
        )
        last_error = "unknown error"
        attempt = 0
        while True:
            retry_after: Optional[float] = None
            with self.limiter.slot():
                try:
                    with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                        body = response.read(MAX_RESPONSE_BYTES + 1)
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise GeocoderError("geocoder answer too large")
                    try:
                        payload = json.loads(body.decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                        raise GeocoderError(f"geocoder answer is not JSON: {exc}") from None
                    return parse_search_response(payload)
                except urllib.error.HTTPError as exc:
                    exc.close()
                    if exc.code != 429 and exc.code < 500:
                        raise GeocoderError(f"geocoder answered HTTP {exc.code} {exc.reason}") from None
                    last_error = f"HTTP {exc.code} {exc.reason}"
                    retry_after = parse_retry_after(exc.headers.get("Retry-After"), now=self._wall_clock())
                except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
                    reason = getattr(exc, "reason", exc)
                    last_error = f"{type(exc).__name__}: {reason}"
                if attempt >= self.max_retries:
                    raise GeocoderError(f"geocoder failed after {attempt + 1} attempts: {last_error}")
                # Back off while holding the slot: the whole process slows down, not one thread.
                self._sleep(self._backoff(attempt, retry_after))
            attempt += 1
