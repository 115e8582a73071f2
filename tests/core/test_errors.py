"""One error envelope for every 4xx/5xx, scrubbed of credentials, paths, addresses and traces."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import pytest
from fastapi import APIRouter
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from mnemogate.core.errors import BadRequest, NotFound, scrub
from mnemogate.core.hookspecs import hookimpl

SECRET_URL = "postgresql://admin:Sup3rS3cret@10.20.30.40:5432/prod"
SECRET_KEY = "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
FILE_PATH = "/home/deploy/app/mnemogate/core/db.py"


def _trace_text() -> str:
    try:
        raise KeyError("inner")
    except KeyError:
        return traceback.format_exc()


class Item(BaseModel):
    name: str = Field(min_length=1)
    count: int


class Failing:
    """Routes that fail the ways real code fails, each carrying something that must not leak."""

    plugin_name = "failing"

    @hookimpl
    def register_routes(self, register: Any) -> None:
        router = APIRouter(prefix="/fail")

        @router.get("/connection")
        async def connection() -> None:
            raise ConnectionError(f"could not connect to {SECRET_URL}")

        @router.get("/file")
        async def file() -> None:
            raise FileNotFoundError(2, "No such file or directory", FILE_PATH)

        @router.get("/ipv6")
        async def ipv6() -> None:
            raise OSError("connect to [2001:db8::8a2e:370:7334]:443 failed")

        @router.get("/trace")
        async def trace() -> None:
            raise RuntimeError(_trace_text())

        @router.get("/app-error")
        async def app_error() -> None:
            raise BadRequest(f"upstream rejected api_key={SECRET_KEY} from 192.168.1.20 reading {FILE_PATH}")

        @router.get("/not-found")
        async def not_found() -> None:
            raise NotFound("no episode 42")

        @router.post("/items")
        async def create(item: Item) -> Item:
            return item

        register(router, scope=None)


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "type", "request_id"}
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    return error


LEAKS = ("Sup3rS3cret", "10.20.30.40", SECRET_KEY, "/home/deploy", "db.py", "Traceback", 'File "', "2001:db8")


@pytest.mark.parametrize("path", ["/fail/connection", "/fail/file", "/fail/ipv6", "/fail/trace"])
async def test_unexpected_errors_are_a_bare_500_and_one_scrubbed_log_line(
    make_client: Any, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    async with make_client(plugins=[Failing()]) as client:
        with caplog.at_level(logging.ERROR):
            response = await client.get(path)
    error = assert_envelope(response, 500, "internal_error")
    assert error["message"] == "internal server error" and error["type"] == "server_error"
    logged = [r for r in caplog.records if r.name == "mnemogate.errors"]
    assert len(logged) == 1 and logged[0].getMessage().startswith(f"unhandled error in GET {path}")
    formatted = logging.getLogger("mnemogate").handlers[0].format(logged[0])
    for leak in LEAKS:
        assert leak not in formatted, leak
    assert "Traceback" not in caplog.text


async def test_app_errors_keep_their_message_without_secrets(make_client: Any) -> None:
    async with make_client(plugins=[Failing()]) as client:
        error = assert_envelope(await client.get("/fail/app-error"), 400, "bad_request")
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith("upstream rejected api_key=")
        for leak in (SECRET_KEY, "192.168.1.20", "/home/deploy"):
            assert leak not in error["message"]
        assert (
            assert_envelope(await client.get("/fail/not-found"), 404, "not_found")["message"]
            == "no episode 42"
        )


async def test_validation_errors_name_fields_but_not_values(make_client: Any) -> None:
    async with make_client(plugins=[Failing()]) as client:
        response = await client.post("/fail/items", json={"name": "", "count": SECRET_KEY})
        error = assert_envelope(response, 422, "validation_error")
        assert "body.name" in error["message"] and "body.count" in error["message"]
        assert SECRET_KEY not in response.text
        assert {tuple(d["loc"]) for d in error["details"]} == {("body", "name"), ("body", "count")}
        malformed = await client.post(
            "/fail/items", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_envelope(malformed, 422, "validation_error")


async def test_routing_errors_use_the_envelope(client: Any) -> None:
    assert_envelope(await client.get("/no/such/route"), 404, "not_found")
    assert_envelope(await client.delete("/health"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("raw", "kept", "gone"),
    [
        ("auth failed: Authorization: Bearer abcdefghijklmnop1234", "[redacted]", "abcdefghijklmnop1234"),
        ("bad header Bearer abcdefghijklmnop1234", "Bearer [redacted]", "abcdefghijklmnop1234"),
        ("login with password=hunter2; retry", "password=[redacted]", "hunter2"),
        ('{"api_key": "xyz-123-abc"}', "[redacted]", "xyz-123-abc"),
        (f"token {SECRET_KEY} expired", "[redacted]", SECRET_KEY),
        ("key AKIAIOSFODNN7EXAMPLE denied", "[redacted]", "AKIAIOSFODNN7EXAMPLE"),
        (f"cannot reach {SECRET_URL}", "[redacted]@", "Sup3rS3cret"),
        ("peer 172.16.0.9:8080 reset", "[address]", "172.16.0.9"),
        ("peer fe80::1ff:fe23:4567:890a down", "[address]", "fe80::"),
        ("open C:\\Users\\bob\\keys.pem failed", "[path]", "bob"),
        ("read /var/lib/mnemogate/mnemogate.db", "[path]", "/var/lib"),
        ("loaded /srv/x/settings.toml and ~/notes.txt", "[path]", "notes.txt"),
        (_trace_text(), "[trace removed]", "line"),
    ],
)
def test_scrub(raw: str, kept: str, gone: str) -> None:
    cleaned = scrub(raw)
    assert kept in cleaned and gone not in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "no episode with id 3f2b6f1e-8a8e-4a51-9c1f-0d4ff4a8e5c2",
        "route /api/v1/episodes needs the 'write' scope",
        "limit must be at most 500 at 12:30:45",
        "the token counting strategy is off",
        "rate limit of 100 requests exceeded; retry in 3 s",
    ],
)
def test_scrub_leaves_ordinary_messages_alone(text: str) -> None:
    assert scrub(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab09 .:/=-_~\\"@[]AKIsk-ghpmeyJTokenbearer')), max_size=60))
def test_the_scrub_shortcut_never_changes_the_result(text: str) -> None:
    """scrub() skips its patterns for text with none of the characters they need; that must
    give exactly what running every pattern gives."""
    from mnemogate.core import errors

    full = text
    for pattern, replacement in errors._SCRUBBERS:
        full = pattern.sub(replacement, full)
    assert scrub(text) == full
