"""Free text (names, notes, replies) shown as text, never as Markdown or HTML.

Streamlit renders Markdown in st.markdown, st.caption, st.info/warning/error, st.toast,
st.subheader, labels and more. A patient's note `![x](https://tracker/p.png)` would make the
browser fetch that URL. Every piece of user data that goes into such text passes through
`md()`, which backslash-escapes what would start markup (and `<`, `>`, `$`), so it shows
literally. Tables (st.dataframe text cells) and st.text/st.code need no escaping.
"""

from __future__ import annotations

import re
from typing import Any, Optional

# CommonMark allows a backslash before any ASCII punctuation. Escaped everywhere: what starts
# inline markup in Streamlit's renderer (links and images need "[", HTML and autolinks "<",
# emphasis, code, math, strikethrough, tables, directives like :red[…] need "["); at the start
# of a line also what starts a block (heading, list, quote, rule).
_INLINE = re.compile(r"([\\`*_\[\]<>$~|])")
_BLOCK = re.compile(r"^(\s*)([#+\-=])", re.MULTILINE)  # heading, bullet list, setext rule
_ORDERED = re.compile(r"^(\s*\d+)([.)])", re.MULTILINE)  # "1. " ordered list


def md(value: Optional[Any]) -> str:
    """`value` as Markdown that displays exactly these characters (line breaks kept)."""
    if value is None:
        return ""
    text = _INLINE.sub(r"\\\1", str(value).replace("\r\n", "\n"))
    text = _ORDERED.sub(r"\1\\\2", _BLOCK.sub(r"\1\\\2", text))
    return text.replace("\n", "  \n")


def md_join(values, sep: str = ", ") -> str:
    return sep.join(md(v) for v in values)
