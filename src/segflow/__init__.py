"""segflow: customer segmentation and customer migration.

The public entry points a notebook user needs:

>>> import segflow
>>> project = segflow.Project.open("my_project")      # doctest: +SKIP
>>> project.run()                                      # doctest: +SKIP

Each stage of the pipeline is a package: ``sources`` (ingest), ``quality`` (audit),
``features``, ``segments``, ``migration``, ``models``, ``campaigns``, ``report``.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("segflow")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

from segflow.errors import SegflowError  # noqa: E402

__all__ = ["SegflowError", "__version__", "Project"]


def __getattr__(name: str):  # lazy: importing segflow should not import the whole pipeline
    if name == "Project":
        from segflow.project import Project

        return Project
    raise AttributeError(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"Project"})
