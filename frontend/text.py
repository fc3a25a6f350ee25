"""User-supplied text (column names, file names, API messages) made safe for Markdown.

``gr.Markdown`` renders HTML, so anything from a file or the API is escaped before it is shown.
"""

from __future__ import annotations

import html
import re

MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]{}#|~!])")


def plain(text: object) -> str:
    """``text`` as literal Markdown: HTML escaped, Markdown punctuation backslash-escaped."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(str(text), quote=False))


def error(text: object) -> str:
    return f"**Error:** {plain(text)}"


def info(text: object) -> str:
    return plain(text)
