"""A store remembers the embedder of its vectors: configuring another one stops start-up with
a clear message, and `mnemogate memory reembed` converts the store (with a progress bar)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from click.testing import CliRunner

from mnemogate.core.cli import build_cli
from mnemogate.core.plugins import PluginHost
from mnemogate.core.settings import PluginsConfig, Settings
from mnemogate.core.testing import build_app, running


def settings_with(base: Settings, dimensions: int) -> Settings:
    tables = {"memory": {"embedder": "hashing"}, "embedders": {"hashing_dimensions": dimensions}}
    return base.model_copy(update={"plugins": PluginsConfig(**tables)})


async def store_and_recall(settings: Settings, content: str | None = None) -> list[str]:
    async with running(build_app(settings)) as client:
        if content is not None:
            assert (await client.post("/api/v1/episodes", json={"content": content})).status_code == 201
        found = await client.post("/api/v1/episodes/recall", json={"query": "lighthouse", "mode": "vector"})
        return [item["episode"]["content"] for item in found.json()["items"]]


def test_a_changed_embedder_is_refused_until_reembedded(backend_settings: Settings) -> None:
    small, large = settings_with(backend_settings, 64), settings_with(backend_settings, 128)
    assert asyncio.run(store_and_recall(small, "the lighthouse keeper")) == ["the lighthouse keeper"]

    with pytest.raises(
        Exception, match=r"embedded with hashing-64/64.*hashing-128/128.*mnemogate memory reembed"
    ):
        asyncio.run(store_and_recall(large))

    cli = build_cli(large, PluginHost.build(load_plugins=[]))
    runner = CliRunner()
    status = orjson.loads(runner.invoke(cli, ["memory", "status"]).output)
    assert status == {"items": 1, "store_embedder": "hashing-64/64", "configured_embedder": "hashing-128/128"}
    result = runner.invoke(cli, ["memory", "reembed", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "re-embedding" in result.stderr
    assert orjson.loads(result.stdout) == {"reembedded": 1, "embedder": "hashing-128/128"}

    assert asyncio.run(store_and_recall(large)) == ["the lighthouse keeper"]


def test_recorded_embedder_allows_an_empty_store_to_switch(backend_settings: Settings) -> None:
    assert asyncio.run(store_and_recall(settings_with(backend_settings, 64))) == []
    assert asyncio.run(store_and_recall(settings_with(backend_settings, 32), "a lighthouse")) == [
        "a lighthouse"
    ]
