"""Settings from the environment and mnemogate.toml, and `mnemogate config show`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from mnemogate.core.cli import build_cli
from mnemogate.core.errors import StartupError
from mnemogate.core.plugins import PluginHost
from mnemogate.core.settings import Settings, load_settings, redact


def test_defaults_are_secure(clean_environment: None) -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1" and settings.binds_loopback
    assert settings.allow_open is False
    assert settings.load_plugins is None and settings.plugins.disabled == []
    assert settings.resolved_database_url.startswith(
        "sqlite:///"
    ) and settings.resolved_database_url.endswith("mnemogate.db")


def test_environment_nesting_and_lists(clean_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNEMOGATE_PLUGINS__DISABLED", "visualization, cline")
    monkeypatch.setenv("MNEMOGATE_PLUGINS__RATELIMIT__REQUESTS_PER_MINUTE", "250")
    monkeypatch.setenv("MNEMOGATE_PLUGINS__RATELIMIT__PER_SCOPE__ADMIN", "1000")
    monkeypatch.setenv("MNEMOGATE_DATABASE_URL", "postgresql://u:p@db/x")
    monkeypatch.setenv("MNEMOGATE_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.plugins.disabled == ["visualization", "cline"]
    assert settings.plugins.raw("ratelimit") == {"requests_per_minute": "250", "per_scope": {"admin": "1000"}}
    assert settings.resolved_database_url == "postgresql://u:p@db/x"
    assert settings.log_level == "DEBUG"


def test_load_plugins_unset_empty_or_listed(clean_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().load_plugins is None
    monkeypatch.setenv("MNEMOGATE_LOAD_PLUGINS", "")
    assert Settings().load_plugins == []
    monkeypatch.setenv("MNEMOGATE_LOAD_PLUGINS", "hello,mnemogate-redis")
    assert Settings().load_plugins == ["hello", "mnemogate-redis"]


def test_toml_file_and_precedence(
    clean_environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mnemogate.toml").write_text(
        'port = 9001\nhost = "127.0.0.2"\n\n[plugins]\ndisabled = ["cline"]\n\n'
        '[plugins.ratelimit]\nrequests_per_minute = 42\nexempt_paths = ["/health"]\n'
    )
    settings = Settings()
    assert settings.port == 9001 and settings.host == "127.0.0.2"
    assert settings.plugins.disabled == ["cline"]
    assert settings.plugins.raw("ratelimit") == {"requests_per_minute": 42, "exempt_paths": ["/health"]}
    monkeypatch.setenv("MNEMOGATE_PORT", "9002")
    assert Settings().port == 9002, "the environment overrides the file"

    elsewhere = tmp_path / "conf" / "other.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text("port = 9100\n")
    monkeypatch.delenv("MNEMOGATE_PORT")
    monkeypatch.setenv("MNEMOGATE_CONFIG", str(elsewhere))
    assert Settings().port == 9100
    monkeypatch.setenv("MNEMOGATE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(StartupError, match="MNEMOGATE_CONFIG names a file that does not exist"):
        Settings()


def test_invalid_core_setting_is_one_readable_error(
    clean_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNEMOGATE_PORT", "eighty")
    with pytest.raises(StartupError, match="invalid settings: port: "):
        load_settings()


def test_plugin_settings_from_environment_reach_the_plugin(
    make_app: Any, clean_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNEMOGATE_PLUGINS__RATELIMIT__REQUESTS_PER_MINUTE", "7")
    monkeypatch.setenv("MNEMOGATE_PLUGINS__HARDENING__CORS_ORIGINS", "https://a.example,https://b.example")
    from mnemogate.core.app import create_app
    from mnemogate.core.testing import isolated_settings

    app = create_app(isolated_settings(Path("data")))
    registry = app.state.registry
    assert registry.plugin_settings("ratelimit").requests_per_minute == 7
    assert registry.plugin_settings("hardening").cors_origins == ["https://a.example", "https://b.example"]


def test_redaction_masks_secrets_and_url_passwords() -> None:
    from pydantic import SecretStr

    shown = redact(
        {
            "database_url": SecretStr("postgresql+asyncpg://app:s3cret@db:5432/mem"),
            "redis_url": SecretStr("redis://:hunter2@cache:6379/0"),
            "plugins": {"proxy": {"api_key": "sk-live-123", "base_url": "https://user:pw@llm.example/v1"}},
            "token": "",
        }
    )
    assert shown["database_url"] == "postgresql+asyncpg://app:********@db:5432/mem"
    assert shown["redis_url"] == "redis://:********@cache:6379/0"
    assert shown["plugins"]["proxy"] == {
        "api_key": "********",
        "base_url": "https://user:********@llm.example/v1",
    }


def test_config_show_prints_redacted_effective_settings(
    clean_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MNEMOGATE_DATABASE_URL", "postgresql://svc:topsecret@127.0.0.1:5432/test")
    monkeypatch.setenv("MNEMOGATE_PLUGINS__RATELIMIT__REQUESTS_PER_MINUTE", "12")
    settings = Settings(load_plugins=[], data_dir=tmp_path)
    result = CliRunner().invoke(build_cli(settings, PluginHost.build(load_plugins=[])), ["config", "show"])
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert "topsecret" not in result.output
    assert shown["database_url"] == "postgresql://svc:********@127.0.0.1:5432/test"
    assert shown["plugins"]["ratelimit"]["requests_per_minute"] == 12
    assert shown["plugins"]["hardening"]["max_body_bytes"] == 5 * 1024 * 1024
