"""HTML of received mail, made safe to show, and plain text from HTML (pure functions).

`sanitize_html` runs nh3 (the Ammonia sanitiser) with a small allow-list: text formatting,
lists, tables and links only. Not kept: scripts, styles (element and attribute, so no
`url(...)` can load anything), iframes/objects/embeds/forms, event handlers, and every image
(a remote image is a tracking pixel; an inline one is not worth the risk). Links keep http(s)
and mailto only and get `rel="noopener noreferrer nofollow"`.

`html_to_text` turns (already sanitised) HTML into readable text: block elements become line
breaks, `<br>` a newline, list items a dash; entities are decoded.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

MAX_HTML_CHARS = 2_000_000

ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt", "em",
    "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "li", "ol", "p", "pre", "q", "s",
    "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul",
})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "ol": {"start"},
}
# Removed together with everything inside them (not only the tags).
DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "noscript", "template",
                                  "head", "title", "svg", "math", "frameset", "frame", "applet"})
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def sanitize_html(html: str) -> str:
    """Safe HTML to show (may be empty). Never raises for any input string."""
    if not html:
        return ""
    html = html[:MAX_HTML_CHARS]
    try:
        cleaned = nh3.clean(
            html,
            tags=set(ALLOWED_TAGS),
            clean_content_tags=set(DROPPED_WITH_CONTENT),
            attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
            url_schemes=set(URL_SCHEMES),
            strip_comments=True,
            link_rel="noopener noreferrer nofollow",
        )
    except BaseException:  # noqa: BLE001 - a sanitiser failure must not show the raw HTML
        return ""
    return cleaned.strip()


_BLOCK = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
                    "pre", "hr", "table", "ul", "ol", "dl", "dt", "dd", "caption"})
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self._skip += 1
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK and tag not in ("br", "li"):
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


_SPACES = re.compile(r"[ \t\u00a0]+")
_MANY_BLANK = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    if not html:
        return ""
    parser = _TextExtractor()
    try:
        parser.feed(html[:MAX_HTML_CHARS])
        parser.close()
    except BaseException:  # noqa: BLE001 - HTMLParser is lenient, but never let it escape
        pass
    text = "".join(parser.parts)
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return _MANY_BLANK.sub("\n\n", "\n".join(lines)).strip()
