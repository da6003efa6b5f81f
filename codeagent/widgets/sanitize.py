"""Make model and sandbox text safe to show in the notebook: nothing runs, nothing is fetched.

Output shown live in a notebook is trusted by the frontend: HTML with a <script> from a model-written script
would run in the user's browser, next to the notebook's own kernel. And anything that makes the browser load a
URL (an ``<img>``, a stylesheet) sends data out the moment the output renders, and again whenever the saved
notebook is opened: the sandbox's no-network rule would be bypassed by the notebook itself. So HTML goes through
``nh3`` (Rust's ammonia) with an allow-list of tables and text markup; no attribute but digit-only
``colspan``/``rowspan`` passes, and no tag that loads anything. In the rendered answer, images become their alt
text with the URL shown as text, and links to other sites say where they go. text/plain loses terminal control
sequences (OSC 52 writes the clipboard, OSC 8 hides a link's target).
"""

from __future__ import annotations

import base64
import binascii
import html
from typing import Any
from urllib.parse import urlsplit

import nh3

from codeagent.sandbox.host.output import mark_imitations, strip_controls

MAX_IMAGE_BYTES = 10_000_000
MAX_TEXT_CHARS = 100_000
ALLOWED_TAGS = frozenset(
    {
        *("table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption"),
        *("div", "span", "p", "br", "b", "i", "strong", "em", "code", "pre", "ul", "ol", "li"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "hr", "small", "sub", "sup"),
    }
)
SPAN_ATTRS = frozenset({"colspan", "rowspan"})
DROP_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "template", "svg", "math", "noscript"})
#: The rendered answer (Markdown) may also link, quote and align table cells; links only to these schemes.
ANSWER_TAGS = ALLOWED_TAGS | {"a", "blockquote", "del", "s"}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_ALIGN = {"text-align:left", "text-align:center", "text-align:right"}


def _digits_only(tag: str, attr: str, value: str) -> str | None:
    return value if attr in SPAN_ATTRS and value.isdigit() and len(value) <= 4 else None


def sanitize_html(text: str) -> str:
    """Only allow-listed tags, digits-only colspan/rowspan, escaped text; scripts and styles dropped whole."""
    return nh3.clean(
        text,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_CONTENT),
        attributes={"td": set(SPAN_ATTRS), "th": set(SPAN_ATTRS)},
        attribute_filter=_digits_only,
        strip_comments=True,
        link_rel=None,
        url_schemes=set(),
    )


def sanitize_answer_html(text: str) -> str:
    """The answer's HTML (from Markdown): links to http(s)/mailto only, opened without referrer or opener."""
    return nh3.clean(
        text,
        tags=set(ANSWER_TAGS),
        clean_content_tags=set(DROP_CONTENT),
        attributes={"a": {"href", "title"}},
        tag_attribute_values={"th": {"style": _ALIGN}, "td": {"style": _ALIGN}},
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        url_schemes=set(LINK_SCHEMES),
        url_relative="deny",
    )


def link_note(href: str) -> str:
    """The visible mark after a link: where it goes (a link is never followed by itself, but may be clicked)."""
    try:
        parts = urlsplit(href)
    except ValueError:
        return " (link)"
    where = parts.hostname or parts.path if parts.scheme == "mailto" else parts.hostname
    return f" (↗ {where or 'link'})"


def image_text(src: str, alt: str) -> str:
    """What an image in model text becomes: its alt text and its URL, as text (nothing is loaded)."""
    shown = src if len(src) <= 200 else src[:200] + "…"
    return f"[image: {alt or 'no description'} — not loaded: {shown}]"


def _valid_base64_image(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        return False
    try:
        base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return False
    return True


def safe_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """text/plain from the model or the sandbox: capped, without control sequences."""
    return strip_controls(text[: limit * 2])[:limit]


def escape(text: Any) -> str:
    """Text from the model or the sandbox as HTML text: without control sequences, escaped."""
    return html.escape(strip_controls(str(text)), quote=True)


def safe_bundle(bundle: dict[str, Any]) -> dict[str, Any] | None:
    """The displayable part of ``{"data": ..., "metadata": ...}`` from the sandbox, or None."""
    data = bundle.get("data") or {}
    safe: dict[str, Any] = {}
    for mime in ("image/png", "image/jpeg"):
        if _valid_base64_image(data.get(mime)):
            safe[mime] = data[mime]
    if isinstance(data.get("text/html"), str):
        safe["text/html"] = sanitize_html(data["text/html"])
    if isinstance(data.get("text/plain"), str):
        safe["text/plain"] = mark_imitations(safe_text(data["text/plain"]))  # shown live, beside the view
    if not safe:
        return None
    metadata = {}
    for mime in ("image/png", "image/jpeg"):
        meta = (bundle.get("metadata") or {}).get(mime)
        if mime in safe and isinstance(meta, dict):
            metadata[mime] = {k: v for k, v in meta.items() if k in ("width", "height") and isinstance(v, int)}
    return {"data": safe, "metadata": metadata}
