"""Lazy package namespaces (PEP 562): a name is imported from its module on first use.

The stage packages (``segflow.models``, ``segments``, ``migration``, ``campaigns``) export
many names whose modules pull in scikit-learn, SciPy or Plotly; importing them eagerly would
make every ``segflow`` command, ``--help`` included, pay for libraries it does not use. Each
package declares ``{name: submodule}`` and gets its ``__getattr__`` and ``__dir__`` here::

    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

``from segflow.models import BetaGeoModel`` then imports ``segflow.models._bgnbd`` only,
caches the name in the package (later look-ups are plain attribute reads), and
``dir(segflow.models)`` lists every export before any is loaded.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``(__getattr__, __dir__)`` pair of a lazy package.

    ``package`` is the package's ``__name__``; ``exports`` maps each public name to the
    submodule (relative, e.g. ``"_bgnbd"``) that defines it. ``__getattr__`` raises
    :class:`AttributeError` naming the package for any other name, as a module does.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
