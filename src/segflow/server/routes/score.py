"""Real-time scoring: ``POST /api/v1/score``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["score"])
