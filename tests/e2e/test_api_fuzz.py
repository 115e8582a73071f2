"""Property-based fuzzing of every operation the app documents in its own OpenAPI document.

The document is that of an app with every built-in plugin, so an operation a plugin adds later is
fuzzed with no change here. Every example meets an open server (no API keys): each operation gets
a fresh app (own database and rate-limit buckets), and so does the next example once one has
created a key, since the first key switches the server out of open mode and would turn every
later request into a 401 that never reaches the route.

Checks: no 5xx; every response conforms to the document (documented status code, content type,
headers and body schema); schema-invalid requests are refused with a 4xx; a missing required
header and an undocumented method are refused. Not used: ``ignored_auth`` (the app is run open,
with no API keys, and an open server serves callers without credentials by design) and
``positive_data_acceptance`` (``cursor`` is an opaque token: the document can only say "string
of at most 1024 characters", and a made-up cursor is answered with the documented 400
``invalid_cursor``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from mnemogate.core.app import create_app
from mnemogate.core.settings import Settings
from mnemogate.core.testing import ENV_PREFIX, build_app, isolated_settings, running

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    missing_required_header,
    unsupported_method,
]
# schemathesis serves the app in-process with the client address "testclient", which is not a
# loopback address: without allow_open the auth middleware would treat every request as
# anonymous (401) instead of as a local caller of an open server.
OPEN = {"allow_open": True}
KEYS_PATH = "/api/v1/keys"


def fuzz_settings(data_dir: Path) -> Settings:
    return isolated_settings(data_dir, **OPEN)


@contextlib.contextmanager
def hermetic(workdir: Path) -> Iterator[None]:
    """No MNEMOGATE_* variable or ./mnemogate.toml of the shell that runs pytest applies (what the
    ``clean_environment`` fixture does for a test, here at collection time)."""
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith(ENV_PREFIX)}
    cwd = Path.cwd()
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(cwd)
        os.environ.update(saved)


def served_document() -> dict[str, Any]:
    """What GET /openapi.json of an app with every built-in plugin returns (building an app
    touches no disk; only its start-up opens the database)."""
    with tempfile.TemporaryDirectory() as tmp, hermetic(Path(tmp)):
        return create_app(fuzz_settings(Path(tmp) / "data"), configure_logs=False).openapi()


# JSON lines (the persistence plugin's import) go on the wire as text.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

# Loaded at collection time, so that each operation becomes its own test item (and gets its own
# function-scoped app). schemathesis's lazy loader (``schemathesis.pytest.from_fixture``) would
# avoid that but fails on pytest 9 (it sets ``Function._nodeid``, which pytest 9 no longer has).
# No operation is excluded.
DOCUMENT = served_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


class OpenServer:
    """The app examples run against, each with its own data directory.

    schemathesis runs an app's lifespan (start-up with migrations) on its first request and
    shuts it down when the test item ends; wrapping it in ``running()`` as well would start it
    twice.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0
        self.app = self._build()

    def _build(self) -> FastAPI:
        return build_app(fuzz_settings(self.root / f"data-{self.generation}"))

    def renew(self) -> None:
        self.generation += 1
        self.app = self._build()


@pytest.fixture
def open_server(clean_environment: None, tmp_path: Path) -> OpenServer:
    return OpenServer(tmp_path)


@pytest.mark.timeout(120)
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    # One server per operation, shared by its examples on purpose (see the module docstring).
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@schema.parametrize()
def test_operation_conforms(case: schemathesis.Case, open_server: OpenServer) -> None:
    app = open_server.app
    response = case.call_and_validate(app=app, base_url="http://testserver", checks=CHECKS)
    assert app.state.registry.db_open, "the app's lifespan did not run"
    if case.method.upper() == "POST" and case.path == KEYS_PATH and response.status_code == 201:
        open_server.renew()


async def test_fuzzed_document_is_the_served_one(make_app: Any) -> None:
    async with running(make_app(**OPEN)) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOCUMENT
