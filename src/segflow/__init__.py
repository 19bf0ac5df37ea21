"""segflow: customer segmentation and customer migration.

The public entry points a notebook user needs:

>>> import segflow
>>> project = segflow.Project.open("my_project")      # doctest: +SKIP
>>> project.run()                                      # doctest: +SKIP

Each stage of the pipeline is a package: ``sources`` (ingest), ``quality`` (audit),
``features``, ``segments``, ``migration``, ``models``, ``campaigns``, ``report``.
"""

from segflow.errors import SegflowError

__all__ = ["SegflowError", "__version__", "Project"]


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("segflow")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0"


def __getattr__(name: str):  # lazy: importing segflow imports neither the pipeline nor
    if name == "Project":  # importlib.metadata (0.1 s, which `segflow --help` does not need)
        from segflow.project import Project

        return Project
    if name == "__version__":
        globals()["__version__"] = _package_version()
        return globals()["__version__"]
    raise AttributeError(name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"Project", "__version__"})
