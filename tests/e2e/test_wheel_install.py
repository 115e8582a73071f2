"""The wheel as a user gets it: built from the repository, installed with pip into a fresh
virtualenv (dependencies from the package index, with this machine's pip configuration), then
used through its console script. Nothing from the repository or the dev virtualenv is visible."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
# What .gitignore keeps out of the repository: build outputs, caches, virtualenvs, databases.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "node_modules",
    "*.db",
    "*.db-wal",
    "*.db-shm",
)
SHIPPED_FILES = (
    "mnemogate/plugins/auth/migrations/0001_api_keys.py",
    "mnemogate/alembic/env.py",
    "mnemogate/alembic/script.py.mako",
    "mnemogate/plugins/visualization/static/index.html",
)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    workdir: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def mnemogate(self) -> Path:
        return self.venv / "bin" / "mnemogate"


def user_environment(**extra: str) -> dict[str, str]:
    """The caller's environment (pip configuration included) without anything that would let the
    repository, the dev virtualenv or a developer's mnemogate settings leak in."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MNEMOGATE_") and name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(extra)
    return env


def run(
    command: list[str | Path], *, cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env if env is not None else user_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"{' '.join(str(p) for p in command)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    )
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel-install")
    # Build from a copy: an in-place build writes build/ and *.egg-info into the work tree, and a
    # stale build/lib from an earlier build could slip files that no longer exist into the wheel.
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    dist = root / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--outdir", dist, source], cwd=root, timeout=300)
    wheels = sorted(dist.glob("mnemogate-*.whl"))
    assert len(wheels) == 1, f"expected one wheel, got {[w.name for w in wheels]}"
    venv = root / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=root, timeout=120)
    run([venv / "bin" / "python", "-m", "pip", "install", wheels[0]], cwd=root, timeout=600)
    workdir = root / "work"
    workdir.mkdir()
    return Installed(wheel=wheels[0], venv=venv, workdir=workdir)


def mnemogate_json(installed: Installed, *args: str, **env: str) -> Any:
    command = [installed.mnemogate, *args]
    result = run(command, cwd=installed.workdir, timeout=120, env=user_environment(**env))
    return json.loads(result.stdout)


def test_wheel_ships_migrations_and_alembic_templates(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = wheel.read(entry_points).decode()
    missing = [name for name in SHIPPED_FILES if name not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert "mnemogate = mnemogate.core.cli:main" in scripts
    assert not any(name.startswith(("core/", "plugins/", "alembic/", "tests/")) for name in names)
    # The dashboard ships built; its front-end sources do not.
    assert any(
        n.startswith("mnemogate/plugins/visualization/static/assets/") and n.endswith(".js") for n in names
    )
    assert not any("/frontend/" in name for name in names)


def test_installed_package_is_imported_from_the_venv(installed: Installed) -> None:
    probe = (
        "import json, mnemogate.core, mnemogate.plugins.auth, mnemogate.alembic; "
        "print(json.dumps([mnemogate.core.__file__, mnemogate.core.__version__]))"
    )
    result = run([installed.python, "-c", probe], cwd=installed.workdir, timeout=60)
    location, version = json.loads(result.stdout)
    location = Path(location).resolve()
    assert location.is_relative_to(installed.venv.resolve()), location
    assert not location.is_relative_to(REPO), location
    assert installed.wheel.name.startswith(f"mnemogate-{version}-")


def test_console_script_lists_the_builtin_routes(installed: Installed, tmp_path: Path) -> None:
    routes = mnemogate_json(installed, "routes", "--json", MNEMOGATE_DATA_DIR=str(tmp_path / "data"))
    mounted = {(route["method"], route["path"]): route for route in routes}
    assert mounted[("GET", "/health")]["plugin"] == "system"
    assert mounted[("GET", "/api/v1/keys")]["plugin"] == "auth"
    assert mounted[("GET", "/api/v1/keys")]["scope"] == "admin"
    assert not any(route["duplicate"] for route in routes)


def test_console_script_migrates_a_fresh_sqlite_database(installed: Installed, tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    env = {"MNEMOGATE_DATA_DIR": str(tmp_path / "data"), "MNEMOGATE_DATABASE_URL": f"sqlite:///{database}"}
    assert mnemogate_json(installed, "db", "upgrade", **env)["auth"] == "auth_0001"
    assert database.is_file()
    current = mnemogate_json(installed, "db", "current", **env)
    assert current["plugins"]["auth"] == {"revision": "auth_0001", "pending": False}
    assert current["database"].endswith(str(database.resolve()))
