"""Start-up stays fast: the memory plugins load numpy, faiss and the model runtime on first
use, not while the server starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
import asyncio, sys
from pathlib import Path
from mnemogate.core.testing import build_app, isolated_settings, running

async def main():
    async with running(build_app(isolated_settings(Path(sys.argv[1])))) as client:
        assert (await client.get("/health")).status_code == 200
        print(sorted(m for m in ("numpy", "faiss", "onnxruntime", "tokenizers") if m in sys.modules))
        await client.post("/api/v1/episodes", json={"content": "first memory"})
        print(sorted(m for m in ("numpy", "faiss", "onnxruntime", "tokenizers") if m in sys.modules))

asyncio.run(main())
"""


def test_heavy_libraries_load_on_first_use_not_at_start_up(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    at_start, after_write = done.stdout.strip().splitlines()
    assert at_start == "[]"
    assert after_write == "['numpy', 'onnxruntime', 'tokenizers']"
