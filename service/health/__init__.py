"""Health: ``GET /api/health`` answers whether the service is up and its storage answers."""

from __future__ import annotations

from ..core.feature import Feature
from . import routes

FEATURE = Feature("health", blueprints=((routes.bp, "/api"),))
