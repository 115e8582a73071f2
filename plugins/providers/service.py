"""Builds the configured providers and closes their connections at shutdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mnemogate.core.registry import Registry
from mnemogate.plugins.providers.anthropic import AnthropicProvider
from mnemogate.plugins.providers.mock import MockProvider
from mnemogate.plugins.providers.openai_compatible import OpenAICompatibleProvider
from mnemogate.plugins.providers.settings import ProvidersSettings

PLUGIN = "providers"


def build(settings: ProvidersSettings) -> list[Any]:
    """The providers the settings describe, in order: OpenAI-compatible, Anthropic, mock."""
    providers: list[Any] = [OpenAICompatibleProvider(c) for c in settings.openai_compatible]
    providers += [AnthropicProvider(c) for c in settings.anthropic]
    if settings.mock.enabled:
        providers.append(MockProvider(settings.mock))
    return providers


def register_all(registry: Registry, register: Callable[[str, Any], None]) -> None:
    for provider in build(registry.plugin_settings(PLUGIN)):
        register(provider.name, provider)


def close_all(registry: Registry) -> None:
    for provider in registry.providers.values():
        if registry.owners.get(("providers", provider.name)) == PLUGIN and hasattr(provider, "close"):
            provider.close()
