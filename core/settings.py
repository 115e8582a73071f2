"""Settings: ``MNEMOGATE_`` environment variables, ``__`` for nesting, and an optional TOML file.

Precedence, highest first: keyword arguments, environment, ``mnemogate.toml`` (the file named
by ``MNEMOGATE_CONFIG``, else ``./mnemogate.toml`` when present), defaults. Each plugin owns
the table ``plugins.<name>``; its model is contributed through ``register_settings`` and
validated when the app is built.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mnemogate.core.errors import StartupError

CONFIG_ENV = "MNEMOGATE_CONFIG"
DEFAULT_CONFIG_FILE = "mnemogate.toml"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mnemogate"


def _split_names(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _env_list(value: Any) -> Any:
    """Lists in plugin settings come from TOML as lists and from the environment as strings:
    a JSON array or comma-separated values."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return _split_names(value)


EnvList = Annotated[list[str], BeforeValidator(_env_list)]


class PluginsConfig(BaseModel):
    """``disabled`` switches plugins off; every other key is a plugin's own settings table."""

    model_config = ConfigDict(extra="allow")

    disabled: Annotated[list[str], NoDecode] = Field(default_factory=list)

    _split = field_validator("disabled", mode="before")(_split_names)

    def raw(self, plugin: str) -> dict[str, Any]:
        extra = self.model_extra or {}
        value = extra.get(plugin) or extra.get(plugin.replace("-", "_")) or {}
        if not isinstance(value, dict):
            raise StartupError(f"plugin {plugin!r}: settings must be a table, got {type(value).__name__}")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MNEMOGATE_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    data_dir: Path = Field(default_factory=_default_data_dir, description="where the embedded database lives")
    database_url: SecretStr | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir"
    )
    redis_url: SecretStr | None = None
    host: str = Field(default="127.0.0.1", description="address `mnemogate serve` binds")
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    allow_open: bool = Field(
        default=False, description="allow binding a non-loopback address while no API key exists"
    )
    graceful_timeout: float = Field(
        default=10.0, ge=0, description="seconds in-flight requests get to finish on shutdown"
    )
    auto_migrate: bool = Field(default=True, description="`serve` upgrades the database on start")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    log_tracebacks: bool = Field(default=False, description="include stack traces in logs (development only)")
    load_plugins: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="unset: every installed plugin; empty: none; a list: only those"
    )
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)

    _split = field_validator("load_plugins", mode="before")(_split_names)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = config_path()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'mnemogate.db'}"

    @property
    def binds_loopback(self) -> bool:
        return is_loopback(self.host)


def config_path() -> Path | None:
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise StartupError(f"{CONFIG_ENV} names a file that does not exist: {path.name}")
        return path
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning validation problems into one readable start-up error."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise StartupError(f"invalid settings: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}" for error in exc.errors()
    )


@functools.lru_cache(maxsize=4096)
def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_SECRET_NAME = re.compile(r"(secret|password|passwd|token|api_?key|credential|private)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@", re.IGNORECASE)
REDACTED = "********"


def redact(value: Any, key: str = "") -> Any:
    """A copy of a settings tree safe to print: secret fields and URL passwords masked."""
    if isinstance(value, SecretStr):
        return (
            _URL_PASSWORD.sub(rf"\g<scheme>\g<user>:{REDACTED}@", value.get_secret_value())
            if ("url" in key.lower())
            else REDACTED
        )
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if _SECRET_NAME.search(key) and value:
            return REDACTED
        return _URL_PASSWORD.sub(rf"\g<scheme>\g<user>:{REDACTED}@", value)
    if isinstance(value, Path):
        return str(value)
    return value
