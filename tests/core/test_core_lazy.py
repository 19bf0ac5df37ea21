"""The lazy package namespaces (segflow._lazy): importing a stage package loads none of its
heavy modules; every declared export resolves to the object its submodule defines, is
listed by dir() before it is loaded, and is cached; an unknown name is an AttributeError."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("segflow.models", "segflow.segments", "segflow.migration", "segflow.campaigns")


@pytest.mark.parametrize("package", PACKAGES)
def test_import_is_light_and_dir_lists_every_export(package):
    code = (
        "import importlib, json, sys; "
        f"p = importlib.import_module({package!r}); "
        "print(json.dumps({'loaded': sorted(m for m in sys.modules if m.startswith(p.__name__ + '._')), "
        "'heavy': [m for m in ('sklearn', 'scipy', 'plotly') if m in sys.modules], "
        "'dir': dir(p), 'exports': sorted(p._EXPORTS)}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["loaded"] == [] and seen["heavy"] == []
    assert set(seen["exports"]) <= set(seen["dir"])
    assert len(seen["exports"]) > 10


@pytest.mark.parametrize("package", PACKAGES)
def test_every_export_is_its_submodules_object_and_cached(package):
    module = importlib.import_module(package)
    for name, submodule in module._EXPORTS.items():
        expected = getattr(importlib.import_module(f"{package}.{submodule}"), name)
        assert getattr(module, name) is expected, name
        assert vars(module)[name] is expected  # cached: later look-ups skip __getattr__
    namespace: dict = {}
    exec(f"from {package} import {', '.join(module._EXPORTS)}", namespace)
    assert all(namespace[n] is vars(module)[n] for n in module._EXPORTS)


def test_unknown_name_is_an_attribute_error_naming_the_package():
    import segflow.migration

    with pytest.raises(AttributeError, match=r"module 'segflow.migration' has no attribute 'Transition'"):
        segflow.migration.Transition  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'Transition'"):
        exec("from segflow.migration import Transition", {})
