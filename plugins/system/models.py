from pydantic import BaseModel


class Status(BaseModel):
    status: str


class Check(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: str
    version: str
    uptime_seconds: float
    checks: dict[str, Check]


class Stats(BaseModel):
    version: str
    uptime_seconds: float
    plugins_enabled: int
    plugins_disabled: int
    routes: int
    websocket_clients: int
    database_dialect: str
    database_bytes: int | None


class PluginOut(BaseModel):
    name: str
    version: str | None
    builtin: bool
    enabled: bool
    source: str
    hooks: list[str]


class RouteOut(BaseModel):
    method: str
    path: str
    plugin: str
    scope: str | None
    kind: str
    duplicate: bool
