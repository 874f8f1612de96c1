"""One Settings object, read from the environment and an optional `.env` file.

Every parameter of docs/architecture.md ("Parameters") plus the technical settings (database, SMTP, geocoder,
imports, secrets). Values are validated once; a bad value raises `SettingsError` whose
message names the setting, and `load_or_exit()` turns that into one line on stderr and
exit code 2 (never a traceback).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from core.platform import timewindows

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names it."""


def _int(name: str, lo: int, hi: int):
    def conv(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(f"{name} muss eine ganze Zahl sein (gefunden: {raw!r}).") from None
        if not lo <= value <= hi:
            raise SettingsError(f"{name} muss zwischen {lo} und {hi} liegen (gefunden: {value}).")
        return value

    return conv


def _bool(name: str):
    def conv(raw: str) -> bool:
        value = raw.strip().lower()
        if value in {"1", "true", "yes", "ja", "on"}:
            return True
        if value in {"0", "false", "no", "nein", "off", ""}:
            return False
        raise SettingsError(f"{name} muss true oder false sein (gefunden: {raw!r}).")

    return conv


def _choice(name: str, *choices: str):
    def conv(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise SettingsError(f"{name} muss einer von {', '.join(choices)} sein (gefunden: {raw!r}).")
        return value

    return conv


def _database_url(raw: str) -> str:
    value = raw.strip()
    if value.startswith("sqlite:///"):
        return value
    if value.startswith("postgresql+psycopg2://"):
        return value
    if value.startswith("postgresql://") or value.startswith("postgres://"):
        raise SettingsError(
            "DATABASE_URL muss den Treiber nennen: postgresql+psycopg2://… statt postgresql://…"
        )
    raise SettingsError(
        f"DATABASE_URL wird nicht unterstützt (gefunden: {value!r}); erlaubt sind sqlite:///… "
        "und postgresql+psycopg2://…"
    )


def _phone_hours(raw: str) -> str:
    """CALL_FALLBACK_HOURS: weekly windows in the canonical form (docs/architecture.md)."""
    try:
        normal = timewindows.normalise(raw)
    except timewindows.TimeWindowError as exc:
        raise SettingsError(f"CALL_FALLBACK_HOURS: {exc.message}") from None
    if not normal:
        raise SettingsError("CALL_FALLBACK_HOURS darf nicht leer sein, z. B. „Mo 09:00-12:00; Di 09:00-12:00“.")
    return normal


def _str(raw: str) -> str:
    return raw.strip()


@dataclass(frozen=True)
class Settings:
    # Domain parameters (docs/architecture.md, "Parameters")
    MAX_INQUIRY_SIZE: int = 6
    PLZ_PREFIX_DIGITS: int = 2
    DEFAULT_MAX_DISTANCE_KM: int = 25
    MAX_OPEN_INQUIRIES_PER_SEARCH: int = 4
    COOLING_WEEKS: int = 4
    EMAIL_MIN_INTERVAL_DAYS: int = 7
    FOLLOW_UP_DAYS: int = 7
    INQUIRY_EXPIRY_DAYS: int = 21
    CALL_SLOT_MINUTES: int = 5
    CALL_HORIZON_DAYS: int = 14
    MAX_CALL_ATTEMPTS: int = 3
    CALLERS: int = 1
    CALL_FALLBACK_HOURS: str = "Mo 09:00-12:00; Di 09:00-12:00; Mi 09:00-12:00; Do 09:00-12:00; Fr 09:00-12:00"
    EMAIL_MAX_ATTEMPTS: int = 5
    # Database
    DATABASE_URL: str = "sqlite:///var/app.db"
    # Security
    SECRET_KEY: str = ""
    SESSION_HOURS: int = 12
    SESSION_IDLE_MINUTES: int = 60  # a login unused this long ends (besides SESSION_HOURS)
    COOKIE_SECURE: bool = False
    LOGIN_MAX_FAILURES: int = 5  # free failed tries per typed name and source, then growing waits
    LOGIN_LOCK_MINUTES: int = 15  # the longest wait
    # Behind a reverse proxy: the header carrying the client address (e.g. X-Forwarded-For;
    # its last entry, the one the proxy added, is used). Empty: the connection's own address.
    LOGIN_SOURCE_HEADER: str = ""
    # E-mail
    SMTP_MODE: str = "folder"  # folder | smtp | log
    SMTP_HOST: str = "localhost"
    SMTP_PORT: int = 587
    SMTP_SECURITY: str = "starttls"  # starttls | ssl | plain
    SMTP_USER: str = ""
    SMTP_PASSWORD: str = ""
    SMTP_TIMEOUT_S: int = 30
    MAIL_FOLDER: str = "var/mail"
    EMAIL_SENDER: str = "vermittlung@example.de"
    EMAIL_SENDER_NAME: str = "Therapieplatz-Vermittlung"
    # Legal footer of every e-mail
    COMPANY_NAME: str = "Therapieplatz-Vermittlung (Demo)"
    COMPANY_ADDRESS: str = "Musterstraße 1, 10115 Berlin"
    COMPANY_REGISTER: str = ""
    COMPANY_MANAGING_DIRECTOR: str = ""
    PRIVACY_SENTENCE: str = (
        "Wir verarbeiten Ihre Daten ausschließlich zur Vermittlung eines Therapieplatzes."
    )
    # Mailbox for replies and bounces (Posteingang); off while IMAP_HOST is empty
    IMAP_HOST: str = ""
    IMAP_PORT: int = 993
    IMAP_SECURITY: str = "ssl"  # ssl (implicit TLS) | starttls | plain (tests only)
    IMAP_USER: str = ""
    IMAP_PASSWORD: str = ""  # a secret: from the environment or .env, never the repository
    IMAP_FOLDER: str = "INBOX"
    IMAP_PROCESSED_FOLDER: str = "Verarbeitet"
    IMAP_TIMEOUT_S: int = 30
    # Geography
    GEONAMES_PATH: str = "var/geonames/DE.txt"
    GEOCODER_URL: str = ""  # empty: PLZ centroids only (offline)
    GEOCODER_USER_AGENT: str = "therapieplatz-dashboard/1.0"
    GEOCODER_CONTACT: str = ""
    GEOCODER_TIMEOUT_S: int = 10
    # Map base layer: "" = only our own layer (PLZ points and city names, no outside
    # requests); "carto" = CARTO's basemap; or the URL of a (self-hosted) Mapbox-GL style.
    MAP_TILES: str = ""
    MAP_TILES_ATTRIBUTION: str = ""  # shown under the map; CARTO's is filled in automatically
    # Imports
    IMPORT_FOLDER: str = "var/imports"
    IMPORT_CHILDREN_ONLY: bool = False  # also import entries only for children and adolescents
    ARZTSUCHE_LIVE: bool = False
    ARZTSUCHE_AREAS: str = ""  # "PLZ:radius_km, ..." e.g. "50667:25, 10115:10"
    ARZTSUCHE_URL: str = "https://arztsuche.116117.de/api/data"
    ARZTSUCHE_AUTHORIZATION: str = ""  # the static Basic value of the site's web app (a secret setting)
    ARZTSUCHE_CONTACT: str = ""  # e-mail or URL named in the User-Agent; required for the live fetch
    ARZTSUCHE_MIN_INTERVAL_S: int = 60
    ARZTSUCHE_REFRESH_DAYS: int = 7
    # Privacy: anonymise patients this many days after their search ended (0: never automatically)
    PATIENT_RETENTION_DAYS: int = 730
    # Job runner
    HEARTBEAT_SECONDS: int = 30
    JOB_LOCK_PATH: str = "var/jobs.lock"
    # Where the extra values came from (not a setting)
    _source: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def inbox_enabled(self) -> bool:
        """The Posteingang reads a mailbox only when IMAP_HOST is set."""
        return bool(self.IMAP_HOST)

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    def path(self, value: str) -> Path:
        """Resolve a configured path relative to the project root."""
        p = Path(value)
        return p if p.is_absolute() else PROJECT_ROOT / p


def _map_tiles(value: str) -> str:
    text = (value or "").strip()
    if text in ("", "carto") or text.startswith(("https://", "http://")):
        return text
    raise SettingsError(
        f"MAP_TILES={value!r}: leer (nur eigene Kartenebene), „carto“ oder die URL eines Kartenstils (https://…)."
    )


_CONVERTERS: dict[str, Any] = {
    "MAX_INQUIRY_SIZE": _int("MAX_INQUIRY_SIZE", 1, 20),
    "PLZ_PREFIX_DIGITS": _int("PLZ_PREFIX_DIGITS", 1, 5),
    "DEFAULT_MAX_DISTANCE_KM": _int("DEFAULT_MAX_DISTANCE_KM", 1, 200),
    "MAX_OPEN_INQUIRIES_PER_SEARCH": _int("MAX_OPEN_INQUIRIES_PER_SEARCH", 1, 50),
    "COOLING_WEEKS": _int("COOLING_WEEKS", 0, 52),
    "EMAIL_MIN_INTERVAL_DAYS": _int("EMAIL_MIN_INTERVAL_DAYS", 0, 90),
    "FOLLOW_UP_DAYS": _int("FOLLOW_UP_DAYS", 1, 90),
    "INQUIRY_EXPIRY_DAYS": _int("INQUIRY_EXPIRY_DAYS", 1, 365),
    "CALL_SLOT_MINUTES": _int("CALL_SLOT_MINUTES", 1, 120),
    "CALL_HORIZON_DAYS": _int("CALL_HORIZON_DAYS", 1, 90),
    "MAX_CALL_ATTEMPTS": _int("MAX_CALL_ATTEMPTS", 1, 20),
    "CALLERS": _int("CALLERS", 1, 50),
    "CALL_FALLBACK_HOURS": _phone_hours,
    "EMAIL_MAX_ATTEMPTS": _int("EMAIL_MAX_ATTEMPTS", 1, 20),
    "DATABASE_URL": _database_url,
    "SECRET_KEY": _str,
    "SESSION_HOURS": _int("SESSION_HOURS", 1, 24 * 30),
    "SESSION_IDLE_MINUTES": _int("SESSION_IDLE_MINUTES", 1, 24 * 60),
    "COOKIE_SECURE": _bool("COOKIE_SECURE"),
    "LOGIN_SOURCE_HEADER": _str,
    "LOGIN_MAX_FAILURES": _int("LOGIN_MAX_FAILURES", 1, 100),
    "LOGIN_LOCK_MINUTES": _int("LOGIN_LOCK_MINUTES", 1, 24 * 60),
    "SMTP_MODE": _choice("SMTP_MODE", "folder", "smtp", "log"),
    "SMTP_HOST": _str,
    "SMTP_PORT": _int("SMTP_PORT", 1, 65535),
    "SMTP_SECURITY": _choice("SMTP_SECURITY", "starttls", "ssl", "plain"),
    "SMTP_USER": _str,
    "SMTP_PASSWORD": _str,
    "SMTP_TIMEOUT_S": _int("SMTP_TIMEOUT_S", 1, 600),
    "MAIL_FOLDER": _str,
    "EMAIL_SENDER": _str,
    "EMAIL_SENDER_NAME": _str,
    "COMPANY_NAME": _str,
    "COMPANY_ADDRESS": _str,
    "COMPANY_REGISTER": _str,
    "COMPANY_MANAGING_DIRECTOR": _str,
    "PRIVACY_SENTENCE": _str,
    "IMAP_HOST": _str,
    "IMAP_PORT": _int("IMAP_PORT", 1, 65535),
    "IMAP_SECURITY": _choice("IMAP_SECURITY", "ssl", "starttls", "plain"),
    "IMAP_USER": _str,
    "IMAP_PASSWORD": _str,
    "IMAP_FOLDER": _str,
    "IMAP_PROCESSED_FOLDER": _str,
    "IMAP_TIMEOUT_S": _int("IMAP_TIMEOUT_S", 1, 600),
    "GEONAMES_PATH": _str,
    "GEOCODER_URL": _str,
    "GEOCODER_USER_AGENT": _str,
    "GEOCODER_CONTACT": _str,
    "GEOCODER_TIMEOUT_S": _int("GEOCODER_TIMEOUT_S", 1, 120),
    "MAP_TILES": lambda v: _map_tiles(v),
    "MAP_TILES_ATTRIBUTION": _str,
    "IMPORT_FOLDER": _str,
    "IMPORT_CHILDREN_ONLY": _bool("IMPORT_CHILDREN_ONLY"),
    "ARZTSUCHE_LIVE": _bool("ARZTSUCHE_LIVE"),
    "ARZTSUCHE_AREAS": _str,
    "ARZTSUCHE_URL": _str,
    "ARZTSUCHE_AUTHORIZATION": _str,
    "ARZTSUCHE_CONTACT": _str,
    "ARZTSUCHE_MIN_INTERVAL_S": _int("ARZTSUCHE_MIN_INTERVAL_S", 10, 24 * 3600),
    "ARZTSUCHE_REFRESH_DAYS": _int("ARZTSUCHE_REFRESH_DAYS", 7, 365),
    "PATIENT_RETENTION_DAYS": _int("PATIENT_RETENTION_DAYS", 0, 36500),
    "HEARTBEAT_SECONDS": _int("HEARTBEAT_SECONDS", 1, 3600),
    "JOB_LOCK_PATH": _str,
}

SETTING_NAMES = [f.name for f in fields(Settings) if not f.name.startswith("_")]
DEFAULTS = {f.name: f.default for f in fields(Settings) if not f.name.startswith("_")}


def load_settings(environ: dict[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Build Settings from `.env` (lowest), then the environment (wins)."""
    source: dict[str, str] = {}
    env_path = env_file if env_file is not None else PROJECT_ROOT / ".env"
    if env_path.exists():
        source.update({k: v for k, v in dotenv_values(env_path).items() if v is not None})
    source.update(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for name in SETTING_NAMES:
        if name in source:
            values[name] = _CONVERTERS[name](source[name])
    settings = Settings(**values)
    if settings.SMTP_MODE == "smtp" and not settings.SMTP_HOST:
        raise SettingsError("SMTP_HOST fehlt, obwohl SMTP_MODE=smtp gesetzt ist.")
    if bool(settings.SMTP_USER) != bool(settings.SMTP_PASSWORD):
        raise SettingsError("SMTP_USER und SMTP_PASSWORD müssen gemeinsam gesetzt werden.")
    if settings.IMAP_HOST and not (settings.IMAP_USER and settings.IMAP_PASSWORD):
        raise SettingsError("IMAP_USER und IMAP_PASSWORD fehlen, obwohl IMAP_HOST gesetzt ist.")
    if settings.IMAP_HOST and not settings.IMAP_FOLDER:
        raise SettingsError("IMAP_FOLDER darf nicht leer sein.")
    if settings.IMAP_HOST and settings.IMAP_FOLDER == settings.IMAP_PROCESSED_FOLDER:
        raise SettingsError("IMAP_PROCESSED_FOLDER muss ein anderer Ordner sein als IMAP_FOLDER.")
    if settings.SECRET_KEY and len(settings.SECRET_KEY) < 16:
        raise SettingsError("SECRET_KEY muss mindestens 16 Zeichen lang sein.")
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def load_or_exit() -> Settings:
    """For process entry points: one clear line and exit 2 on a bad setting."""
    try:
        return get_settings()
    except SettingsError as exc:
        print(f"Konfigurationsfehler: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
