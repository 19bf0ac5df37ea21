"""A project with a completed run, served by the real app, and one token per role."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest
from tests.pipeline._fixture import PROJECT_TOML, fixture_tables

#: Personal data put on the fixture customers (the fixture itself has none).
EMAIL = "jane.doe@example.com"
PHONE = "+44 20 7946 0123"
FORMULA = "=HYPERLINK(\"http://evil.test\")@example.org"


def _with_pii(customers: pa.Table) -> pa.Table:
    ids = customers["customer_id"].to_pylist()
    emails = [EMAIL if i == "C001" else FORMULA if i == "C002" else f"{i.lower()}@example.org" for i in ids]
    phones = [PHONE if i == "C001" else None for i in ids]
    for name, values in (("email", pa.array(emails)), ("phone", pa.array(phones, pa.string()))):
        if name in customers.column_names:
            customers = customers.set_column(customers.schema.get_field_index(name), name, values)
        else:
            customers = customers.append_column(name, values)
    return customers


@pytest.fixture(scope="session")
def _served_template(tmp_path_factory):
    """The served project as built (once per xdist worker): each module serves a copy."""
    from segflow.project import Project
    from segflow.server._tokens import create_token

    directory = tmp_path_factory.mktemp("served_template") / "proj"
    project = Project.init(directory, toml_text=PROJECT_TOML)
    for name, table in fixture_tables().items():
        if name == "customers":
            table = _with_pii(table)
        project.store.append(name, table)
    project.run()
    tokens = {}
    with project.store.transaction() as con:
        for role in ("viewer", "analyst", "admin"):
            tokens[role] = create_token(con, role, name=f"test {role}")[0]
    project.store.raw.execute("CHECKPOINT")
    project.close()
    (directory / "tokens.txt").write_text("\n".join(f"{k} {v}" for k, v in tokens.items()))
    return directory


@pytest.fixture(scope="module")
def served_project(_served_template, tmp_path_factory):
    """The fixture project with personal data on three customers, run, with a token per
    role in tokens.txt: this module's own copy."""
    directory = tmp_path_factory.mktemp("served") / "proj"
    shutil.copytree(_served_template, directory)
    return directory


@pytest.fixture(scope="module")
def tokens(served_project) -> dict[str, str]:
    lines = (served_project / "tokens.txt").read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines)


@pytest.fixture(scope="module")
def app(served_project):
    from segflow.server import ServerSettings, create_app

    return create_app(ServerSettings(project_dir=served_project, allowed_hosts=["testserver"], poll_seconds=0))


@pytest.fixture(scope="module")
def anon(app):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as c:
        yield c


def _client(app, token):
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="https://testserver", headers={"authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def viewer(app, tokens):
    with _client(app, tokens["viewer"]) as c:
        yield c


@pytest.fixture(scope="module")
def analyst(app, tokens):
    with _client(app, tokens["analyst"]) as c:
        yield c


@pytest.fixture(scope="module")
def admin(app, tokens):
    with _client(app, tokens["admin"]) as c:
        yield c


@pytest.fixture(scope="module")
def client(analyst):
    """The pages and API as an analyst (the tests written before roles existed)."""
    return analyst
