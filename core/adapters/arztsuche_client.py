"""The optional, polite live fetch from the KBV doctor search (``POST …/api/data``).

The main input of the importer is a response file a coordinator saved from their own
browser; this client is an opt-in extra (setting ``ARZTSUCHE_LIVE``). It is deliberately
plain (docs/architecture.md, "Imports"):

- one request at a time in the whole process, and at least `min_interval_s` (default 60 s)
  between the end of one request and the start of the next; clock and sleep are injectable;
- an honest User-Agent that names the tool and carries the operator's contact;
- the request the site's own web app sends (Authorization from configuration, the
  computed ``req-val`` header, the JSON body) and nothing more: no Origin/Referer, no
  browser client hints, no cookie warm-up; cookies the server sets are refused, so none is
  ever replayed; no proxies (environment proxy settings are ignored);
- no retries. 403, 429 and 5xx (since December 2025 the site answers scripted requests with
  an empty HTTP 500) stop the whole run with a clear German message; nothing is tried again
  with altered headers. The next attempt is the next scheduled refresh.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable, Optional, Sequence

import requests

ARZTSUCHE_URL = "https://arztsuche.116117.de/api/data"
PSYCHOTHERAPY_CATEGORY = "12"
DEFAULT_MIN_INTERVAL_S = 60.0
DEFAULT_TIMEOUT_S = 30.0
MAX_RESPONSE_BYTES = 20 * 1024 * 1024
TOOL_NAME = "therapieplatz-dashboard/1.0"

METHOD_CODES = {"VT": "V", "TP": "T", "AP": "A", "ST": "S"}
FILTER_TITLES = {
    "fgg": "Fachgebiet Kategorie",
    "ptv": "Psychotherapie: Verfahren",
    "pta": "Psychotherapie: Altersgruppe",
    "pts": "Psychotherapie: Setting",
}

ADVICE = (
    "Bitte speichern Sie die Antwort der Arztsuche in Ihrem eigenen Browser und laden Sie die "
    "Datei unter „Importe“ hoch."
)


class ArztsucheConfigError(ValueError):
    """The live-fetch settings cannot be used; the message is German and names the setting."""


class ArztsucheError(RuntimeError):
    """The live fetch stopped. `message` is German; `status` the HTTP status if there was one."""

    def __init__(self, message: str, *, status: Optional[int] = None, retry_after_s: Optional[float] = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s


class ArztsucheBlocked(ArztsucheError):
    """403, 429 or 5xx: the site does not want this request. Never retried."""


@dataclass(frozen=True)
class LiveArea:
    """One configured search area: a label (usually the PLZ), its centre and the radius."""

    label: str
    lat: float
    lon: float
    radius_km: float


@dataclass
class FetchResult:
    area: LiveArea
    body: bytes
    data: Any
    started_at_ms: int
    elapsed_s: float


@dataclass
class FetchReport:
    """What a run of `fetch_all` did: the answers it got, and why it stopped early (if)."""

    results: list[FetchResult] = field(default_factory=list)
    error: Optional[ArztsucheError] = None
    not_fetched: list[LiveArea] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        return self.error is not None


# --------------------------------------------------------------------------- request pieces


def req_val(lat: float, lon: float, epoch_ms: int) -> str:
    """The ``req-val`` header the site's JavaScript computes from the search centre and the
    current time: base64 of ``n s1 o s2 p s3 q`` where n/p are the last integer digit and
    the first decimal of ``lat + 1.1``, o/q the same of ``lon + 2.3``, and s1..s3 the last,
    second-to-last and third-to-last digits of the epoch milliseconds."""
    n, p = _digits(lat + 1.1)
    o, q = _digits(lon + 2.3)
    s = str(int(epoch_ms))
    s = s.rjust(3, "0")
    token = f"{n}{s[-1]}{o}{s[-2]}{p}{s[-3]}{q}"
    return base64.b64encode(token.encode("ascii")).decode("ascii")


def _digits(value: float) -> tuple[str, str]:
    text = repr(float(value))
    whole, _, frac = text.partition(".")
    if "e" in whole or "e" in frac:
        text = f"{value:.10f}"
        whole, _, frac = text.partition(".")
    return whole[-1], (frac[:1] or "0")


def request_body(
    lat: float,
    lon: float,
    radius_km: float,
    *,
    methods: Sequence[str] = (),
    age_groups: Sequence[str] = (),
    settings: Sequence[str] = (),
) -> dict[str, Any]:
    """The body the web app sends for a psychotherapy search around (lat, lon).

    `methods` are VT/TP/AP/ST, `age_groups` E/K, `settings` E/G (all optional filters)."""
    filters = [{"title": FILTER_TITLES["fgg"], "fieldName": "fgg", "selectedCodes": [PSYCHOTHERAPY_CATEGORY]}]
    if methods:
        filters.append({"title": FILTER_TITLES["ptv"], "fieldName": "ptv", "selectedCodes": [METHOD_CODES[m] for m in methods]})
    if age_groups:
        filters.append({"title": FILTER_TITLES["pta"], "fieldName": "pta", "selectedCodes": list(age_groups)})
    if settings:
        filters.append({"title": FILTER_TITLES["pts"], "fieldName": "pts", "selectedCodes": list(settings)})
    return {
        "r": radius_km,
        "locType": "LATLON",
        "lat": lat,
        "lon": lon,
        "plz": None,
        "osmId": None,
        "osmType": None,
        "filterSelections": filters,
        "locOrigin": "USER_INPUT",
        "searchTrigger": "INITIAL",
        "viaDeeplink": False,
    }


def honest_user_agent(contact: str) -> str:
    contact = (contact or "").strip()
    return f"{TOOL_NAME} (Vermittlung von Therapieplätzen; Kontakt: {contact})"


class _RefuseAllCookies(http.cookiejar.DefaultCookiePolicy):
    """Never store a cookie, so none is ever sent back."""

    def set_ok(self, cookie, request):  # noqa: D401 - CookiePolicy API
        return False

    def return_ok(self, cookie, request):
        return False


class Pacer:
    """One request at a time and at least `min_interval_s` from the end of one request to
    the start of the next. Shared by every client of the process unless a test injects its own."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_end: Optional[float] = None

    def run(self, min_interval_s: float, call: Callable[[], Any]) -> Any:
        with self._lock:
            if self._last_end is not None:
                wait = self._last_end + min_interval_s - self._clock()
                if wait > 0:
                    self._sleep(wait)
            try:
                return call()
            finally:
                self._last_end = self._clock()


PROCESS_PACER = Pacer()


# --------------------------------------------------------------------------- the client


class ArztsucheClient:
    def __init__(
        self,
        *,
        authorization: str,
        contact: str,
        url: str = ARZTSUCHE_URL,
        min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        pacer: Optional[Pacer] = None,
        epoch_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        session: Optional[requests.Session] = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        if not (authorization or "").strip():
            raise ArztsucheConfigError(
                "ARZTSUCHE_AUTHORIZATION ist leer: ohne den Zugangswert der Arztsuche ist kein Live-Abruf möglich."
            )
        if not (contact or "").strip():
            raise ArztsucheConfigError(
                "ARZTSUCHE_CONTACT ist leer: der Live-Abruf nennt sich im User-Agent mit einer Kontaktadresse "
                "(E-Mail oder Web-Adresse) und findet ohne sie nicht statt."
            )
        parsed = urllib.parse.urlsplit((url or "").strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ArztsucheConfigError(f"ARZTSUCHE_URL muss mit http:// oder https:// beginnen (gefunden: {url!r}).")
        if min_interval_s < 0:
            raise ArztsucheConfigError("ARZTSUCHE_MIN_INTERVAL_S darf nicht negativ sein.")
        self.url = url.strip()
        self.authorization = authorization.strip()
        self.user_agent = honest_user_agent(contact)
        self.min_interval_s = float(min_interval_s)
        self.timeout_s = timeout_s
        self.pacer = pacer if pacer is not None else PROCESS_PACER
        self._epoch_ms = epoch_ms
        self.max_response_bytes = max_response_bytes
        self.session = session if session is not None else requests.Session()
        self.session.trust_env = False  # no proxies or netrc from the environment
        self.session.cookies.set_policy(_RefuseAllCookies())
        self.session.cookies.clear()

    def headers(self, lat: float, lon: float, epoch_ms: int) -> dict[str, str]:
        return {
            "Authorization": self.authorization,
            "req-val": req_val(lat, lon, epoch_ms),
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }

    def fetch(self, area: LiveArea, **filters: Sequence[str]) -> FetchResult:
        """One search. Raises ArztsucheBlocked / ArztsucheError (never retries)."""
        return self.pacer.run(self.min_interval_s, lambda: self._fetch_now(area, filters))

    def fetch_all(
        self, areas: Iterable[LiveArea], *, on_result: Optional[Callable[[FetchResult], None]] = None, **filters: Sequence[str]
    ) -> FetchReport:
        """The areas one after the other; the first failure stops the run."""
        report = FetchReport()
        pending = list(areas)
        while pending:
            area = pending.pop(0)
            try:
                result = self.fetch(area, **filters)
            except ArztsucheError as exc:
                report.error = exc
                report.not_fetched = [area, *pending]
                break
            report.results.append(result)
            if on_result is not None:
                on_result(result)
        return report

    # ---------------------------------------------------------------- internals

    def _fetch_now(self, area: LiveArea, filters: dict[str, Sequence[str]]) -> FetchResult:
        started = time.monotonic()
        now_ms = int(self._epoch_ms())
        body = json.dumps(request_body(area.lat, area.lon, area.radius_km, **filters), ensure_ascii=False).encode("utf-8")
        try:
            response = self.session.post(
                self.url,
                data=body,
                headers=self.headers(area.lat, area.lon, now_ms),
                timeout=self.timeout_s,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise ArztsucheError(
                f"Die Arztsuche hat für „{area.label}“ nicht innerhalb von {self.timeout_s:.0f} s geantwortet. "
                "Der Live-Abruf wurde gestoppt und wird erst beim nächsten geplanten Lauf wieder versucht."
            ) from None
        except requests.RequestException as exc:
            raise ArztsucheError(
                f"Die Arztsuche ist nicht erreichbar ({type(exc).__name__}). Der Live-Abruf wurde gestoppt "
                "und wird erst beim nächsten geplanten Lauf wieder versucht."
            ) from None
        try:
            status = response.status_code
            self._check_status(response, area)
            raw = self._read_body(response)
        finally:
            response.close()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ArztsucheBlocked(
                f"Die Arztsuche hat für „{area.label}“ kein JSON geliefert (HTTP {status}); vermutlich eine "
                f"Sperr- oder Prüfseite. Der Live-Abruf wurde gestoppt. {ADVICE}",
                status=status,
            ) from None
        return FetchResult(area=area, body=raw, data=data, started_at_ms=now_ms, elapsed_s=time.monotonic() - started)

    def _read_body(self, response: requests.Response) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.max_response_bytes:
                raise ArztsucheError(
                    f"Die Antwort der Arztsuche ist größer als {self.max_response_bytes // (1024 * 1024)} MB; abgebrochen."
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _check_status(self, response: requests.Response, area: LiveArea) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 403:
            raise ArztsucheBlocked(
                f"Die Arztsuche hat den Abruf für „{area.label}“ abgelehnt (HTTP 403). Der Live-Abruf wurde "
                f"gestoppt und wird nicht mit veränderten Angaben wiederholt. {ADVICE}",
                status=status,
            )
        if status == 429:
            retry_after = _retry_after_s(response.headers.get("Retry-After"))
            wait = f" Die Arztsuche bittet um eine Pause von {_duration_de(retry_after)}." if retry_after else ""
            raise ArztsucheBlocked(
                f"Die Arztsuche meldet zu viele Anfragen (HTTP 429).{wait} Der Live-Abruf wurde gestoppt und "
                "wird erst beim nächsten geplanten Lauf wieder versucht.",
                status=status,
                retry_after_s=retry_after,
            )
        if status >= 500:
            raise ArztsucheBlocked(
                f"Die Arztsuche antwortet mit einem Serverfehler (HTTP {status}). Seit Dezember 2025 beantwortet "
                "sie automatisierte Anfragen ohne Browser-Sitzung so. Der Live-Abruf wurde gestoppt; er wird "
                f"weder wiederholt noch mit veränderten Angaben versucht. {ADVICE}",
                status=status,
            )
        if status == 401:
            raise ArztsucheError(
                "Die Arztsuche hat den Zugangswert abgelehnt (HTTP 401); bitte ARZTSUCHE_AUTHORIZATION prüfen. "
                "Der Live-Abruf wurde gestoppt.",
                status=status,
            )
        if 300 <= status < 400:
            raise ArztsucheBlocked(
                f"Die Arztsuche leitet den Abruf um (HTTP {status}); vermutlich auf eine Prüfseite. Der Live-Abruf "
                f"wurde gestoppt; der Umleitung wird nicht gefolgt. {ADVICE}",
                status=status,
            )
        raise ArztsucheError(
            f"Die Arztsuche hat den Abruf für „{area.label}“ nicht angenommen (HTTP {status}). Der Live-Abruf wurde gestoppt.",
            status=status,
        )


def _retry_after_s(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _duration_de(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} Sekunden"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} Minuten"
    return f"{seconds / 3600:.0f} Stunden"
