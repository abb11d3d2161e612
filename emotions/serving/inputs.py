"""Request-level helpers of the service: blank and over-long texts, error messages, the body-size limit,
the path a request names inside the app."""

from __future__ import annotations

import math
import unicodedata

from .onnx_predictor import clean_unicode

_BLANK_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}
DEFAULT_MAX_CHARS = 2000              # longer texts are cut (the service and the batch job alike)
EMPTY_AFTER_PREPROCESSING = ("the text is empty after preprocessing (no words the model reads, e.g. only "
                             "punctuation): the labels are the model's guess for an empty text")


def is_blank(text: str) -> bool:
    """True when a text has nothing but whitespace, control and format characters (e.g. zero-width)."""
    return all(ch.isspace() or unicodedata.category(ch) in _BLANK_CATEGORIES for ch in text)


def text_problem(text: object) -> str:
    """"" for a usable text, else why it gets no labels: missing (None, NaN, NA), not a string, or blank.
    The batch job and `/predict/batch` report it per row / item."""
    if text is None or type(text).__name__ == "NAType" or (isinstance(text, float) and math.isnan(text)):
        return "missing text"
    if not isinstance(text, str):
        return f"text is a {type(text).__name__}, not a string"
    return "empty text" if is_blank(text) else ""


def limit_text(text: str, max_chars: int) -> tuple[str, bool]:
    """(text cleaned to valid Unicode and cut to `max_chars` characters, whether it was cut)."""
    truncated = len(text) > max_chars
    return clean_unicode(text[:max_chars] if truncated else text), truncated


def app_path(scope: dict) -> str:
    """The request's path inside the app (without the `root_path` a proxy mounts it under)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def message(error: dict) -> str:
    """One readable line for a pydantic / FastAPI validation error."""
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error")
        return f"invalid JSON body{': ' + str(reason) if reason else ''}"
    return str(error.get("msg", ""))


class BodyTooLarge(Exception):
    """Raised into the app by `BodySizeLimit` when a streamed body goes over the limit."""


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over `max_bytes`.

    A declared Content-Length over the limit is refused before the body is read. A body without one
    (Transfer-Encoding: chunked) or longer than declared is counted as it arrives: once over the limit
    the app stops receiving it, whatever it answered is dropped, and the client gets the 413.
    """

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if size.isdigit() and int(size) > self.max_bytes:
            await self._refuse(scope, receive, send, f"request body of {int(size)} bytes")
            return
        state = {"received": 0, "over": False, "started": False}

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body") or b"")
                if state["received"] > self.max_bytes:
                    state["over"] = True
                    raise BodyTooLarge(state["received"])
            return message

        async def guarded_send(message):
            if state["over"]:                     # the app's answer to a cut body: replaced by the 413
                return
            state["started"] |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:                         # noqa: BLE001 - whatever reading a cut body raised
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await self._refuse(scope, receive, send, f"streamed request body of more than {self.max_bytes} bytes")

    async def _refuse(self, scope, receive, send, what: str) -> None:
        from fastapi.responses import JSONResponse

        response = JSONResponse({"detail": f"{what} is over the limit of {self.max_bytes} bytes"}, status_code=413,
                                headers={"connection": "close"})
        await response(scope, receive, send)


def undecodable_body(error: UnicodeDecodeError) -> dict:
    """A 422 detail entry for a request body that is not valid UTF-8 (names the byte and its position)."""
    return {"loc": ["body", error.start], "type": "json_invalid",
            "msg": f"invalid JSON body: not valid UTF-8 (byte 0x{error.object[error.start]:02x} at position "
                   f"{error.start})"}
