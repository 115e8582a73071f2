"""The dashboard's built files (``static/``, made from ``frontend/`` by ``npm run build``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi.responses import FileResponse

from mnemogate.core.errors import NotFound

STATIC = Path(__file__).parent / "static"
ASSETS = STATIC / "assets"
KEYS_MARK = "{{keys}}"  # in index.html: whether the page must ask for an API key
# The page holds no data (it asks for a key and calls the API), so it is public; scripts come
# from this server only.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-cache",
}


@cache
def _index() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


def index_html(keys_required: bool) -> str:
    return _index().replace(KEYS_MARK, "required" if keys_required else "open")


@cache
def _assets() -> dict[str, Path]:
    return {path.name: path for path in ASSETS.iterdir() if path.is_file()} if ASSETS.is_dir() else {}


def asset(name: str) -> FileResponse:
    path = _assets().get(name)
    if path is None:
        raise NotFound("no such dashboard file")
    # Built file names carry a content hash: they never change.
    return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})
