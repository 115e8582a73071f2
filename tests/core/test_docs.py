"""PLUGINS.md stays true: every hook with its exact signature, the built-in catalogue, the
middleware orders and the mounted route inventory."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from mnemogate.core.plugins import BUILTIN_PLUGINS, builtin_name

PLUGINS_MD = Path(__file__).resolve().parents[2] / "PLUGINS.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return PLUGINS_MD.read_text()


def section(doc: str, title: str) -> str:
    start = doc.index(f"\n## {title}\n")
    end = doc.find("\n## ", start + 1)
    return doc[start : end if end != -1 else None]


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header


def hookspec_signatures(app: Any) -> dict[str, str]:
    signatures = {}
    for name, caller in vars(app.state.registry.host.pm.hook).items():
        spec = getattr(caller, "spec", None)
        if spec is None:
            continue
        params = [p for p in inspect.signature(spec.function).parameters if p != "self"]
        signatures[name] = f"{name}({', '.join(params)})"
    return signatures


def test_every_hook_is_documented_with_its_exact_signature(doc: str, make_app: Any) -> None:
    documented = set(re.findall(r"^#{3,4} `(\w+\([\w, ]*\))`$", section(doc, "Hooks"), re.MULTILINE))
    expected = set(hookspec_signatures(make_app()).values())
    assert expected - documented == set(), "hooks missing from PLUGINS.md"
    assert documented - expected == set(), "PLUGINS.md documents hooks (or signatures) that do not exist"


def test_builtin_catalogue_lists_exactly_the_builtins(doc: str) -> None:
    listed = [row[0] for row in table_rows(section(doc, "Built-in plugins"))]
    assert listed == [builtin_name(m) for m in BUILTIN_PLUGINS]


def test_middleware_orders_are_documented(doc: str, make_app: Any) -> None:
    table = section(doc, "Hooks").split("### `register_middleware(register)`")[1].split("###")[0]
    documented = {(int(row[0]), row[1].split(" ")[0], row[2]) for row in table_rows(table)}
    actual = {(m.order, m.name, m.plugin) for m in make_app().state.registry.middleware}
    assert documented == actual


def test_route_inventory_matches_the_mounted_routes(doc: str, make_app: Any) -> None:
    documented = {tuple(row) for row in table_rows(section(doc, "Mounted routes"))}
    mounted = {(r.method, r.path, r.plugin, r.scope or "public") for r in make_app().state.registry.mounted}
    assert mounted - documented == set(), "mounted routes missing from PLUGINS.md"
    assert documented - mounted == set(), "PLUGINS.md lists routes that are not mounted"
