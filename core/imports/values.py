"""Single values of an entry: names, street, numbers, coordinates, PLZ, e-mail, gender, lists."""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Iterable, Optional
from core.imports.records import LAT_RANGE, LON_RANGE, _EMAIL_RE, _PLACEHOLDER_NAMES, _PLZ_RE, _SPACED_HYPHEN_RE, _SURNAME_PARTICLES, _TITLE_WORDS, _WEEKDAY_WORDS, _WS_RE


# --------------------------------------------------------------------------- names


def _clean_name(text: str) -> str:
    text = _WS_RE.sub(" ", text).strip()
    return _SPACED_HYPHEN_RE.sub("-", text)


def _is_title_token(token: str) -> bool:
    low = token.lower().rstrip(",")
    if "." in low:
        return True
    return low.replace("-", "") in _TITLE_WORDS


def split_display_name(full: str) -> tuple[Optional[str], str, str]:
    """``"Dipl.-Psych. Lena Probe"`` → (``"Dipl.-Psych."``, ``"Lena"``, ``"Probe"``).

    Leading title tokens (with a dot, or Dr/Prof/PD …) form the title; surname particles
    (von, van, de, zu …) stay with the surname; ``"Probe, Lena"`` is understood; a stray
    space around a hyphen (``"Meier -Lüdenscheid"``) is removed."""
    text = _clean_name(full)
    trailing_title: list[str] = []
    if "," in text:
        head, _, tail = text.partition(",")
        tail_tokens = tail.split()
        if tail_tokens and all(_is_title_token(t) for t in tail_tokens):
            trailing_title = tail_tokens
            text = head.strip()
        elif tail_tokens:
            # "Probe, Dr. Lena" or "Probe, Lena"
            text = f"{tail.strip()} {head.strip()}"
    tokens = text.split()
    titles: list[str] = []
    while len(tokens) > 1 and _is_title_token(tokens[0]):
        titles.append(tokens.pop(0))
    titles.extend(trailing_title)
    title = " ".join(titles) or None
    if not tokens:
        return title, "", ""
    if len(tokens) == 1:
        return title, "", tokens[0]
    start = len(tokens) - 1
    while start > 1 and tokens[start - 1].lower() in _SURNAME_PARTICLES:
        start -= 1
    return title, " ".join(tokens[:start]), " ".join(tokens[start:])


def _check_placeholder_name(last: str, first: Optional[str], warnings: list[str]) -> None:
    for label, value in (("Nachname", last), ("Vorname", first)):
        if value and value.strip().lower() in _PLACEHOLDER_NAMES:
            warnings.append(f"{label} „{value}“ sieht wie ein Platzhalter aus – bitte prüfen.")


def join_street(street: Optional[str], number: Optional[str]) -> Optional[str]:
    """Street with house number, without doubling a number that is already there."""
    if not street:
        return number or None
    if not number:
        return street
    if street.replace(" ", "").lower().endswith(number.replace(" ", "").lower()):
        return street
    return f"{street} {number}"


# --------------------------------------------------------------------------- values


def _kind_de(value: Any, *, nominative: bool = False) -> str:
    """What a JSON value is, for messages: "enthält eine Liste" / "ist eine Liste"."""
    if value is None:
        return "leer (null)" if nominative else "nichts (null)"
    if isinstance(value, bool):
        kind = "Wahrheitswert"
    elif isinstance(value, (int, float)):
        return "eine Zahl"
    elif isinstance(value, str):
        kind = "Text"
    elif isinstance(value, list):
        return "eine Liste"
    elif isinstance(value, dict):
        return "ein Objekt"
    else:
        return "ein unbekannter Wert" if nominative else "einen unbekannten Wert"
    return f"ein {kind}" if nominative else f"einen {kind}"


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def _json_msg_de(msg: str) -> str:
    table = {
        "Expecting value": "Wert erwartet",
        "Expecting ',' delimiter": "Komma erwartet",
        "Expecting ':' delimiter": "Doppelpunkt erwartet",
        "Expecting property name enclosed in double quotes": "Feldname in doppelten Anführungszeichen erwartet",
        "Extra data": "zusätzliche Zeichen nach dem Ende des Inhalts",
        "Invalid control character at": "unzulässiges Steuerzeichen",
        "Invalid \\escape": "ungültige Escape-Sequenz",
        "Illegal trailing comma before end of object": "überzähliges Komma vor „}“",
        "Illegal trailing comma before end of array": "überzähliges Komma vor „]“",
    }
    for en, de in table.items():
        if msg.startswith(en):
            return de
    return "Syntaxfehler"


def _text(value: Any, name: str, warnings: list[str], *, allow_number: bool = False) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, str):
        text = _WS_RE.sub(" ", value).strip()
        return text or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not allow_number:
            warnings.append(f"„{name}“ ist eine Zahl statt Text; übernommen.")
        return str(value)
    warnings.append(f"„{name}“ hat den unerwarteten Wert {_short(value)}; ignoriert.")
    return None


def _number(value: Any, name: str, warnings: list[str]) -> Optional[float]:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "."))
        except ValueError:
            pass
        else:
            warnings.append(f"„{name}“ ist Text statt Zahl; übernommen.")
            return number
    warnings.append(f"„{name}“ hat den unerwarteten Wert {_short(value)}; ignoriert.")
    return None


def _coordinates(lat_raw: Any, lon_raw: Any, warnings: list[str]) -> tuple[Optional[float], Optional[float]]:
    lat = _number(lat_raw, "lat", warnings)
    lon = _number(lon_raw, "lon", warnings)
    if lat is None and lon is None:
        return None, None
    if lat is None or lon is None:
        warnings.append("Nur eine der beiden Koordinaten angegeben; die Adresse wird geokodiert.")
        return None, None
    if lat == 0 and lon == 0:
        warnings.append("Koordinaten 0/0 sind ein Platzhalter; die Adresse wird geokodiert.")
        return None, None
    if not (LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1]):
        warnings.append(f"Koordinaten {lat}/{lon} liegen außerhalb Deutschlands; die Adresse wird geokodiert.")
        return None, None
    return lat, lon


def _plz(value: Any, warnings: list[str]) -> Optional[str]:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value).zfill(5)
        if _PLZ_RE.match(text):
            warnings.append(f"PLZ als Zahl angegeben; als „{text}“ übernommen.")
            return text
    elif isinstance(value, str):
        text = value.strip()
        if _PLZ_RE.match(text):
            return text
        if text.isdigit() and len(text) == 4:
            warnings.append(f"PLZ „{text}“ hat nur vier Stellen; als „0{text}“ übernommen.")
            return "0" + text
    warnings.append(f"PLZ {_short(value)} ist keine fünfstellige Postleitzahl; ignoriert.")
    return None


def _email(value: Any, warnings: list[str]) -> Optional[str]:
    text = _text(value, "email", warnings)
    if text is None:
        return None
    text = text.replace(" ", "")
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not _EMAIL_RE.match(text):
        warnings.append(f"E-Mail-Adresse „{_short(text)}“ ist ungültig; ignoriert.")
        return None
    return text


def _gender(value: Any, warnings: list[str]) -> str:
    if value is None:
        return "unspecified"
    if not isinstance(value, str):
        warnings.append(f"„geschlecht“ hat den unerwarteten Wert {_short(value)}; ignoriert.")
        return "unspecified"
    low = value.strip().lower()
    if not low:
        return "unspecified"
    table = {
        "f": "female", "w": "female", "weiblich": "female", "female": "female", "frau": "female",
        "m": "male", "männlich": "male", "maennlich": "male", "male": "male", "mann": "male",
        "d": "diverse", "x": "diverse", "divers": "diverse", "diverse": "diverse",
        "u": "unspecified", "unbekannt": "unspecified", "keine angabe": "unspecified",
    }
    if low in table:
        return table[low]
    warnings.append(f"Unbekanntes Geschlecht „{_short(value)}“; als „keine Angabe“ übernommen.")
    return "unspecified"


def _salutation(value: Any, warnings: list[str]) -> str:
    if value is None:
        return "none"
    if not isinstance(value, str):
        warnings.append(f"„anrede“ hat den unerwarteten Wert {_short(value)}; ignoriert.")
        return "none"
    words = value.strip().lower().split()
    if not words:
        return "none"
    first = words[0].rstrip(".")
    if first in ("frau", "fr"):
        return "frau"
    if first in ("herr", "hr", "herrn"):
        return "herr"
    warnings.append(f"Unbekannte Anrede „{_short(value)}“; ohne Anrede übernommen.")
    return "none"


def _string_list(value: Any, name: str, warnings: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        warnings.append(f"„{name}“ ist {_kind_de(value, nominative=True)} statt einer Liste; ignoriert.")
        return []
    out = []
    for item in value:
        if isinstance(item, str):
            text = _WS_RE.sub(" ", item).strip()
            if text:
                out.append(text)
        elif isinstance(item, dict) and isinstance(item.get("value"), str):
            out.append(item["value"].strip())
        else:
            warnings.append(f"Wert {_short(item)} in „{name}“ ist kein Text; ignoriert.")
    return out


def _value_list(value: Any, name: str, warnings: list[str]) -> list[str]:
    """``[{"value": "…"}]`` (extra keys allowed) or plain strings."""
    return _string_list(value, name, warnings)


def _key_values(value: Any, name: str, warnings: list[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        warnings.append(f"„{name}“ ist {_kind_de(value, nominative=True)} statt einer Liste; ignoriert.")
        return []
    out = []
    for item in value:
        if isinstance(item, dict):
            label = item.get("value") or item.get("key")
            if isinstance(label, (str, int)):
                out.append(str(label))
        elif isinstance(item, str):
            out.append(item)
    return out


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = item.casefold()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _weekday_word(token: Any) -> Optional[int]:
    if not isinstance(token, str):
        return None
    low = unicodedata.normalize("NFC", token).strip().rstrip(".").lower()
    if low in _WEEKDAY_WORDS:
        return _WEEKDAY_WORDS[low]
    return _WEEKDAY_WORDS.get(low[:2]) if len(low) == 3 else None
