"""The dashboard in a real browser (Debian's headless Chromium driven by Playwright): a server
with API keys, memories and gateway traffic written through the API; the page asks for the key,
renders the graph from that data, follows a write live over /ws/viz, shows the panels of
plugins that are off as "not enabled", and logs no console error. Screenshots go to
$MNEMOGATE_TEST_ARTIFACTS (default: the test's temporary directory)."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from mnemogate.core.testing import served

# Read at import: the app fixtures clear MNEMOGATE_* variables for each test.
ARTIFACTS = os.environ.get("MNEMOGATE_TEST_ARTIFACTS")
CHROMIUM = os.environ.get("MNEMOGATE_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# What works headless here: no GPU (WebGL falls back to software), no traffic of its own.
FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


@pytest.fixture
def chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"Chromium is needed in CI ({CHROMIUM} is missing: .ci/run installs Debian's chromium)")
    pytest.skip(f"Chromium is not installed ({CHROMIUM}); `apt-get install chromium` runs this test")


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(ARTIFACTS) if ARTIFACTS else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_dashboard_in_chromium(viz_app: Any, create_key: Any, chromium: str, artifacts: Path) -> None:
    from playwright.async_api import async_playwright

    app = viz_app()
    async with served(app) as base:
        key = await create_key(app, tenant="acme", scopes=("write",))
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as client:
            people = []
            for name in ("Ada", "Grace", "Alan", "Edsger", "Barbara"):
                made = await client.post("/api/v1/entities", json={"name": name, "type": "person"})
                people.append(made.json()["id"])
            for source, target in itertools.pairwise(people):
                body = {"source_id": source, "target_id": target, "type": "knows", "weight": 0.8}
                assert (await client.post("/api/v1/entities/relations", json=body)).status_code == 201
            for i in range(4):
                body = {"content": f"standup note {i}", "session_id": "standup", "actor": "Dana"}
                assert (await client.post("/api/v1/episodes", json=body)).status_code == 201
            assert (await client.post("/api/v1/skills", json={"name": "deploy"})).status_code == 201
            chat = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello dashboard"}]}
            assert (await client.post("/v1/chat/completions", json=chat)).status_code == 200

            errors: list[str] = []
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=chromium, args=FLAGS)
                try:
                    page = await browser.new_page(viewport={"width": 1400, "height": 1800})
                    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                    page.on("pageerror", lambda e: errors.append(str(e)))

                    await page.goto(f"{base}/dashboard")
                    # Keys exist: the page asks for one before it calls anything.
                    await page.get_by_text("this server needs an API key").wait_for()
                    await page.fill("#key-input", key)
                    await page.click("#key-form button[type=submit]")
                    await page.wait_for_selector('body[data-ready="true"]', timeout=30_000)
                    await page.wait_for_selector('#graph[data-nodes="10"]', timeout=10_000)
                    assert await page.locator("#graph canvas").count() == 1
                    counts = await page.text_content("#graph-counts")
                    assert counts is not None and "5 entities · 4 episodes · 1 skills · 7 edges" in counts
                    await page.get_by_text("live", exact=True).wait_for(timeout=10_000)
                    assert "mock/echo" in (await page.text_content("#requests") or "")
                    # Panels of other plugins: their stats when the route is mounted, else "not enabled".
                    mounted = {(route.method, route.path) for route in app.state.registry.mounted}
                    for panel, path in (
                        ("#compaction", "/api/compaction/stats"),
                        ("#sanitizer", "/api/sanitizer/stats"),
                    ):
                        text = await page.text_content(panel) or ""
                        assert ("not enabled" in text) is (("GET", path) not in mounted), (panel, text)
                        assert await page.locator(f"{panel} .bad").count() == 0, text
                    if ("GET", "/api/sanitizer/stats") in mounted:
                        assert "requests scanned" in (await page.text_content("#sanitizer") or "")
                    assert "requests per minute" in (await page.text_content("#ratelimit") or "")
                    await page.wait_for_timeout(1000)  # the camera's zoom to fit
                    shot = await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
                    assert len(shot) > 10_000

                    # A write through the API shows up without a reload.
                    made = await client.post("/api/v1/entities", json={"name": "Katherine", "type": "person"})
                    await client.post(
                        "/api/v1/entities/relations",
                        json={"source_id": people[0], "target_id": made.json()["id"], "type": "knows"},
                    )
                    await (
                        page.locator("#feed")
                        .get_by_text("created entities: Katherine")
                        .wait_for(timeout=10_000)
                    )
                    await page.wait_for_selector('#graph[data-nodes="11"]', timeout=10_000)
                    await page.locator("#feed").get_by_text("created relation").wait_for(timeout=10_000)
                    live = "6 entities · 4 episodes · 1 skills · 8 edges"
                    await page.locator("#graph-counts").get_by_text(live).wait_for(timeout=10_000)
                    await page.wait_for_timeout(500)
                    await page.locator("#graph-panel").screenshot(path=str(artifacts / "graph-live.png"))
                finally:
                    await browser.close()
    assert errors == [], errors
