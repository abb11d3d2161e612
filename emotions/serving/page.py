"""The try-it page at `/`: a text box and one bar per emotion, with the label's threshold marked.

The page (`static/page.html`) is a static shell with inline CSS and JavaScript and no external asset, so
it works offline. It is open like the docs pages; what it shows comes from two protected routes, which
it calls with the API key typed into it (kept in the tab's sessionStorage): `GET /page/model` (labels,
thresholds) and `POST /predict`. So nothing about the model is shown to a visitor without a key.
"""

from __future__ import annotations

from importlib.resources import files

PAGE_FILE = "page.html"
MODEL_ROUTE = "/page/model"


def page_html() -> str:
    """The page, as shipped in the package."""
    return files(__package__).joinpath("static", PAGE_FILE).read_text(encoding="utf-8")


def page_model(predictor) -> dict:
    """What the page needs to draw the bars: labels, and per label its decision threshold (multilabel)."""
    labels = [str(label) for label in predictor.labels]
    thresholds = ({label: float(t) for label, t in zip(labels, predictor.thresholds)}
                  if predictor.multilabel else None)
    return {"task": str(predictor.task or ""), "kind": str(predictor.kind), "labels": labels,
            "multilabel": bool(predictor.multilabel), "thresholds": thresholds}


def add_page(app, predictor) -> None:
    """Register GET / (the page) and GET /page/model (its data) on `app`."""
    from fastapi.responses import HTMLResponse

    html = page_html()
    model = page_model(predictor)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"})

    @app.get(MODEL_ROUTE, summary="Labels and thresholds, for the page at /")
    async def model_for_page() -> dict:
        return model


# inline script and style only; requests only to this service (an injected label cannot load anything)
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
