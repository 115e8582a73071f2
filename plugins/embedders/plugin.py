from typing import Any

from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.embedders.settings import EmbeddersSettings


def _settings(registry: Registry) -> EmbeddersSettings:
    return registry.plugin_settings("embedders")


@hookimpl
def register_settings(register: Any) -> None:
    register(EmbeddersSettings)


def minilm(registry: Registry) -> Any:
    from mnemogate.plugins.embedders.minilm import MiniLMEmbedder

    settings = _settings(registry)
    return MiniLMEmbedder(
        threads=settings.minilm_threads, max_tokens=settings.minilm_max_tokens, batch=settings.minilm_batch
    )


def remote(registry: Registry) -> Any:
    from mnemogate.plugins.embedders.remote import remote_from_settings

    return remote_from_settings(_settings(registry))


def hashing(registry: Registry) -> Any:
    from mnemogate.plugins.embedders.hashing import HashingEmbedder

    return HashingEmbedder(_settings(registry).hashing_dimensions)


@hookimpl
def register_embedders(register: Any) -> None:
    # Each factory imports its embedder when chosen: the others cost nothing at start-up.
    register("minilm", minilm)
    register("remote", remote)
    register("hashing", hashing)
