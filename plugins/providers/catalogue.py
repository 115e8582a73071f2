"""The built-in model catalogue: context windows and list prices of well-known models."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from mnemogate.core.contracts import ModelInfo
from mnemogate.core.errors import StartupError
from mnemogate.plugins.providers.settings import ModelConfig

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")


@cache
def catalogues() -> dict[str, dict[str, tuple[int, float, float]]]:
    raw = json.loads(CATALOGUE_FILE.read_text())
    return {name: {m: tuple(v) for m, v in models.items()} for name, models in raw.items() if name[0] != "_"}


def model_infos(provider: str, configured: list[ModelConfig], catalogue: str | None) -> list[ModelInfo]:
    """The provider's models: the configured ones (enabled; prices from the settings, else the
    catalogue), then the rest of its catalogue (known, not enabled)."""
    known = {}
    if catalogue is not None:
        if catalogue not in catalogues():
            raise StartupError(
                f"plugin 'providers': provider {provider!r} names an unknown catalogue {catalogue!r} "
                f"(known: {', '.join(sorted(catalogues()))})"
            )
        known = catalogues()[catalogue]
    infos = []
    for model in configured:
        window, price_in, price_out = known.get(model.id, (None, None, None))
        infos.append(
            ModelInfo(
                id=model.id,
                provider=provider,
                context_window=model.context_window or window,
                input_price_per_mtok=_first(model.input_price_per_mtok, price_in),
                output_price_per_mtok=_first(model.output_price_per_mtok, price_out),
            )
        )
    served = {model.id for model in configured}
    # Without a model list the provider serves any model, its whole catalogue included.
    enabled = not configured
    infos.extend(
        ModelInfo(
            id=model_id,
            provider=provider,
            context_window=window,
            input_price_per_mtok=price_in,
            output_price_per_mtok=price_out,
            enabled=enabled,
        )
        for model_id, (window, price_in, price_out) in known.items()
        if model_id not in served
    )
    return infos


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)
