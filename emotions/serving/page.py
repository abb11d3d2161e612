"""The try-it page at `/` (placeholder: being built)."""

from __future__ import annotations


def add_page(app, predictor) -> None:
    """Register GET / on `app`: a page to try `predictor` (labels, thresholds) in a browser."""
