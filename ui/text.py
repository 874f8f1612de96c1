"""Free text (names, notes, replies) shown as text, never as Markdown or HTML.

Streamlit renders Markdown in st.markdown, st.caption, st.info/warning/error, st.toast,
st.subheader, labels and more. A patient's note `![x](https://tracker/p.png)` would make the
browser fetch that URL. Every piece of user data that goes into such text passes through
`md()`, which backslash-escapes Markdown's punctuation (and `<`, `>` and `$`), so it shows
literally. Tables (st.dataframe text cells) and st.text/st.code need no escaping.
"""

from __future__ import annotations

import re
from typing import Any, Optional

# CommonMark allows a backslash before any ASCII punctuation; these are the ones that start
# markup in Streamlit's renderer (links, images, emphasis, code, HTML, math, directives, tables).
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:=\"'&])")


def md(value: Optional[Any]) -> str:
    """`value` as Markdown that displays exactly these characters (line breaks kept)."""
    if value is None:
        return ""
    text = _SPECIAL.sub(r"\\\1", str(value))
    return text.replace("\r\n", "\n").replace("\n", "  \n")


def md_join(values, sep: str = ", ") -> str:
    return sep.join(md(v) for v in values)
