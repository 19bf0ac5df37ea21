"""A small demo project (generated data, ingested and run) and its report, built once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory):
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project

    out = tmp_path_factory.mktemp("report") / "demo"
    dataset = generate_demo(out / "data", customers=1500, months=18, seed=3)
    project = Project.init(out, toml_text=demo_project_toml("data", max_date=dataset.end), overwrite=True)
    with project:
        project.ingest()
        project.run()
    return out


@pytest.fixture(scope="session")
def demo_report(demo_project):
    from segflow.project import Project

    with Project.open(demo_project, read_only=True) as project:
        return project.report(demo_project / "report.html")
