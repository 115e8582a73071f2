from typing import Any

from mnemogate.core.hookspecs import hookimpl
from mnemogate.core.registry import Registry
from mnemogate.plugins.embedders.hashing import HashingEmbedder
from mnemogate.plugins.embedders.minilm import MiniLMEmbedder
from mnemogate.plugins.embedders.remote import remote_from_settings
from mnemogate.plugins.embedders.settings import EmbeddersSettings


def _settings(registry: Registry) -> EmbeddersSettings:
    return registry.plugin_settings("embedders")


@hookimpl
def register_settings(register: Any) -> None:
    register(EmbeddersSettings)


@hookimpl
def register_embedders(register: Any) -> None:
    register(
        "minilm",
        lambda registry: MiniLMEmbedder(
            threads=_settings(registry).minilm_threads,
            max_tokens=_settings(registry).minilm_max_tokens,
            batch=_settings(registry).minilm_batch,
        ),
    )
    register("remote", lambda registry: remote_from_settings(_settings(registry)))
    register("hashing", lambda registry: HashingEmbedder(_settings(registry).hashing_dimensions))
