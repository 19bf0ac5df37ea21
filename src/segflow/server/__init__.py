"""FastAPI app: JSON API and dashboard pages (extra ``segflow[server]``)."""

from segflow.server.app import create_app
from segflow.server.deps import ServerSettings

__all__ = ["ServerSettings", "create_app"]
