"""How the service answers a request it cannot serve: 413 for too many texts, 422 with one readable
line per validation error (no input echoed back), 500 without internals."""

from __future__ import annotations

import logging

from .inputs import message, undecodable_body
from .onnx_predictor import clean_unicode

log = logging.getLogger("emotions.serving.service")


def add_error_handlers(app, max_batch: int) -> None:
    """Register the validation, HTTP and unhandled-error handlers on `app`."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        errors = exc.errors()
        for e in errors:
            if e.get("type") == "too_long" and tuple(e.get("loc", ())) == ("body", "texts"):
                n = e.get("input")
                n = len(n) if isinstance(n, list) else "too many"
                return JSONResponse({"detail": f"batch of {n} texts is over the limit of {max_batch} "
                                               f"(--max-batch); split it"}, status_code=413)
        # no "input" echoed back: it may be huge or hold characters JSON cannot encode
        detail = [{"loc": list(e.get("loc", ())), "msg": clean_unicode(message(e)), "type": e.get("type", "")}
                  for e in errors]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException):
        if isinstance(exc.__cause__, UnicodeDecodeError):       # FastAPI answers 400 for a body it cannot decode
            return JSONResponse({"detail": [undecodable_body(exc.__cause__)]}, status_code=422)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception):
        log.exception("unhandled error: %s", exc)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)
