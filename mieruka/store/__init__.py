"""Stores: where readings live.  One interface, two backends (embedded SQLite,
InfluxDB), so that collectors, analytics, replay and the API never know which
one they have.  `open_store(cfg)` picks the backend from the site config.
"""
from __future__ import annotations

from .base import Aggregate, Store, open_store

__all__ = ["Aggregate", "Store", "open_store"]
