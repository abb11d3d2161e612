"""Request-level helpers of the service: blank and over-long texts, error messages, the body-size limit."""

from __future__ import annotations

import unicodedata

from .onnx_predictor import clean_unicode

_BLANK_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}
EMPTY_AFTER_PREPROCESSING = ("the text is empty after preprocessing (no words the model reads, e.g. only "
                             "punctuation): the labels are the model's guess for an empty text")


def is_blank(text: str) -> bool:
    """True when a text has nothing but whitespace, control and format characters (e.g. zero-width)."""
    return all(ch.isspace() or unicodedata.category(ch) in _BLANK_CATEGORIES for ch in text)


def limit_text(text: str, max_chars: int) -> tuple[str, bool]:
    """(text cleaned to valid Unicode and cut to `max_chars` characters, whether it was cut)."""
    truncated = len(text) > max_chars
    return clean_unicode(text[:max_chars] if truncated else text), truncated


def message(error: dict) -> str:
    """One readable line for a pydantic / FastAPI validation error."""
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error")
        return f"invalid JSON body{': ' + str(reason) if reason else ''}"
    return str(error.get("msg", ""))


class BodySizeLimit:
    """ASGI middleware: 413 for a request whose Content-Length is over `max_bytes`."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            size = dict(scope.get("headers") or ()).get(b"content-length", b"")
            if size.isdigit() and int(size) > self.max_bytes:
                from fastapi.responses import JSONResponse
                response = JSONResponse({"detail": f"request body of {int(size)} bytes is over the limit of "
                                                   f"{self.max_bytes} bytes"}, status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def undecodable_body(error: UnicodeDecodeError) -> dict:
    """A 422 detail entry for a request body that is not valid UTF-8 (names the byte and its position)."""
    return {"loc": ["body", error.start], "type": "json_invalid",
            "msg": f"invalid JSON body: not valid UTF-8 (byte 0x{error.object[error.start]:02x} at position "
                   f"{error.start})"}
