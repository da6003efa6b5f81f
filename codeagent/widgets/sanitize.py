"""Make a display bundle from the sandbox safe to show in the notebook.

Output shown live in a notebook is trusted by the frontend: HTML with a <script> from a model-written script
would run in the user's browser, next to the notebook's own kernel. So only images, plain text and an
allow-listed subset of HTML (tables and text markup, no attributes but spans) pass.
"""

from __future__ import annotations

import base64
import binascii
import html
from html.parser import HTMLParser
from typing import Any

MAX_IMAGE_BYTES = 10_000_000
ALLOWED_TAGS = frozenset(
    [
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "th",
        "td",
        "caption",
        "div",
        "span",
        "p",
        "br",
        "b",
        "i",
        "strong",
        "em",
        "code",
        "pre",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "small",
        "sub",
        "sup",
    ]
)
VOID_TAGS = frozenset({"br", "hr"})
ALLOWED_ATTRS = frozenset({"colspan", "rowspan"})
DROP_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "template", "svg", "math", "noscript"})


class _AllowListHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROP_CONTENT:
            self.dropping += 1
            return
        if self.dropping or tag not in ALLOWED_TAGS:
            return
        kept = "".join(
            f' {name}="{html.escape(value)}"'
            for name, value in attrs
            if name in ALLOWED_ATTRS and value is not None and value.isdigit()
        )
        self.out.append(f"<{tag}{kept}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROP_CONTENT:
            self.dropping = max(0, self.dropping - 1)
            return
        if not self.dropping and tag in ALLOWED_TAGS and tag not in VOID_TAGS:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.out.append(html.escape(data))


def sanitize_html(text: str) -> str:
    """Only allow-listed tags, digits-only colspan/rowspan, escaped text; scripts and styles dropped whole."""
    parser = _AllowListHTML()
    parser.feed(text)
    parser.close()
    return "".join(parser.out)


def _valid_base64_image(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        return False
    try:
        base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return False
    return True


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
        safe["text/plain"] = data["text/plain"][:100_000]
    if not safe:
        return None
    metadata = {}
    for mime in ("image/png", "image/jpeg"):
        meta = (bundle.get("metadata") or {}).get(mime)
        if mime in safe and isinstance(meta, dict):
            metadata[mime] = {k: v for k, v in meta.items() if k in ("width", "height") and isinstance(v, int)}
    return {"data": safe, "metadata": metadata}
