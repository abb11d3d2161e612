"""Foundations every layer uses: project paths and the data-root layout, atomic file writes and hashes, the hub check."""
