"""Pretrained text encoders that work offline."""
