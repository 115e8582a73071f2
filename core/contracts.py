"""The shapes plugins exchange with the host and with each other.

Registration records (what a plugin contributed), the request principal, and the protocols
that registered resources implement. Plugins depend on these, never on each other's modules.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from fastapi import APIRouter
    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import AsyncSession

    from mnemogate.core.registry import Registry

ScopeName = Literal["read", "write", "admin"]
# Each scope includes the ones before it: a write key can read, an admin key can do anything.
SCOPES: tuple[ScopeName, ...] = ("read", "write", "admin")
DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant every data access is confined to, and what the caller may do."""

    tenant: str
    scopes: frozenset[str]
    key_id: str | None = None
    is_open: bool = False

    def allows(self, scope: str | None) -> bool:
        if scope is None:
            return True
        wanted = SCOPES.index(scope)  # type: ignore[arg-type]
        return any(SCOPES.index(s) >= wanted for s in self.scopes if s in SCOPES)  # type: ignore[arg-type]

    @property
    def top_scope(self) -> str | None:
        ranked = [s for s in SCOPES if s in self.scopes]
        return ranked[-1] if ranked else None

    @classmethod
    def open(cls, tenant: str = DEFAULT_TENANT) -> Principal:
        """The principal of a server running without API keys (loopback only by default)."""
        return cls(tenant=tenant, scopes=frozenset(SCOPES), is_open=True)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(tenant=DEFAULT_TENANT, scopes=frozenset())


# -- what registration hooks record -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoutePack:
    plugin: str
    router: APIRouter
    prefix: str = ""
    tags: tuple[str, ...] = ()
    scope: str | None = "read"


@dataclass(frozen=True, slots=True)
class MiddlewareSpec:
    plugin: str
    name: str
    order: int
    factory: Callable[..., Any]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WSChannel:
    plugin: str
    name: str
    path: str
    scope: str | None = "read"
    description: str = ""


@dataclass(frozen=True, slots=True)
class MigrationSpec:
    plugin: str
    version_location: str
    metadata: MetaData | None = None

    @property
    def version_table(self) -> str:
        return f"mnemogate_version_{self.plugin}".replace("-", "_")


@dataclass(frozen=True, slots=True)
class MountedRoute:
    """One entry of the runtime route inventory."""

    method: str
    path: str
    plugin: str
    scope: str | None
    name: str
    kind: Literal["http", "websocket"] = "http"


# -- events --------------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class MemoryEvent:
    """A committed memory write or a recall, handed to ``memory_event`` hooks."""

    tenant: str
    memory_type: str
    action: Literal["created", "updated", "deleted", "recalled"]
    ids: Sequence[str]
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)


# -- rate limits ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """What a rate-limit bucket store answers for one request (the rate-limit plugin's
    ``register_ratelimit_stores`` extension point): allowed or not, and the headers telling the
    caller where its bucket stands."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after: float

    @classmethod
    def of(cls, tokens: float, capacity: int, refill_per_second: float, allowed: bool) -> RateLimitDecision:
        """The decision for a token bucket holding ``tokens`` after the request was (or was not)
        counted."""
        return cls(
            allowed=allowed,
            limit=capacity,
            remaining=max(0, math.floor(tokens)),
            reset_seconds=max(0.0, (capacity - tokens) / refill_per_second),
            retry_after=0.0 if allowed else (1 - tokens) / refill_per_second,
        )

    def headers(self) -> list[tuple[bytes, bytes]]:
        values = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset_seconds)).encode()),
        ]
        if not self.allowed:
            values.append((b"retry-after", str(max(1, math.ceil(self.retry_after))).encode()))
        return values


# -- the gateway pipeline ------------------------------------------------------------------------


@dataclass(slots=True)
class ChatContext:
    """One gateway exchange as it passes through ``chat_request`` and ``chat_response`` hooks.

    ``body`` is the OpenAI-shaped request, parsed once and changed in place by the pipeline;
    ``data`` is where plugins leave notes for each other (e.g. injected memory ids);
    ``registry`` is the app's registry, so hooks reach services, events and resources;
    ``chunk_filters`` transform streamed response chunks (each one or more complete SSE
    events) before they reach the client, ``response_filters`` the JSON bytes of a whole
    (non-streamed) answer; neither changes ``response``, which stays what the provider
    sent. After the exchange the gateway fills ``response``
    (for a stream: assembled from its chunks), ``usage`` (upstream figures, when it sent
    them), ``status``, ``error`` and the timings in milliseconds; ``model_info`` carries the
    model's context window and prices.
    """

    principal: Principal
    body: dict[str, Any]
    session_id: str | None = None
    provider: str | None = None
    model: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    chunk_filters: list[Callable[[bytes], bytes]] = field(default_factory=list)
    response_filters: list[Callable[[bytes], bytes]] = field(default_factory=list)
    response: dict[str, Any] | None = None
    usage: dict[str, int] = field(default_factory=dict)
    status: int | None = None
    started_at: datetime = field(default_factory=utcnow)
    request_id: str | None = None
    stream: bool = False
    model_info: ModelInfo | None = None
    upstream_headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, str] | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    upstream_ms: float | None = None
    overhead_ms: float | None = None
    registry: Registry | None = None

    @property
    def tenant(self) -> str:
        return self.principal.tenant


# -- resources registered by later plugins -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexItem:
    """One memory item as the index sees it: what is searched (``vector``; ``text`` by keyword)
    and what searches filter on (the ``IndexFilters`` fields: ``user_id``, ``agent_id``,
    ``session_id``, ``occurred_at`` and ``metadata`` in ``attrs``). ``vector_text`` is the text
    the vector embeds when that differs from ``text`` (e.g. a turn alone, while its keywords
    include the turn before it); the index keeps it so a store can be re-embedded."""

    id: str
    vector: np.ndarray | None
    text: str
    attrs: dict[str, Any] = field(default_factory=dict)
    vector_text: str | None = None

    @property
    def embedded_text(self) -> str:
        return self.text if self.vector_text is None else self.vector_text


@dataclass(frozen=True, slots=True)
class IndexFilters:
    """What a search is confined to, besides the tenant and memory kind. ``metadata`` matches
    items whose metadata has every given key with exactly that (scalar) value."""

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (
            self.user_id or self.agent_id or self.session_id or self.since or self.until or self.metadata
        )


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float
    parts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IndexedText:
    """The text an indexed item's vector embeds, for re-embedding a store."""

    tenant: str
    kind: str
    id: str
    text: str


@runtime_checkable
class MemoryIndex(Protocol):
    """Vector + keyword index over memory items, one implementation per database URL scheme.

    Writes take the caller's open write session, so the memory rows and their index entries
    commit (or roll back) together; in-memory structures follow after the commit. Searches see
    only ``tenant``'s items of one ``kind`` (memory type) that pass ``filters``.
    """

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def upsert(
        self, session: AsyncSession, tenant: str, kind: str, items: Sequence[IndexItem]
    ) -> None: ...
    async def delete(self, session: AsyncSession, tenant: str, kind: str, ids: Sequence[str]) -> None: ...
    async def vector_search(
        self, tenant: str, kind: str, vector: np.ndarray, *, k: int, filters: IndexFilters | None = None
    ) -> list[Hit]: ...
    async def text_search(
        self, tenant: str, kind: str, query: str, *, k: int, filters: IndexFilters | None = None
    ) -> list[Hit]: ...
    async def count(self, tenant: str | None = None, kind: str | None = None) -> int: ...
    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, session: AsyncSession, key: str, value: str) -> None: ...
    def texts(self, *, batch: int = 256) -> AsyncIterator[list[IndexedText]]: ...
    async def set_vectors(
        self, session: AsyncSession, items: Sequence[IndexedText], vectors: np.ndarray
    ) -> None: ...
    async def vectors(self, tenant: str, kind: str, ids: Sequence[str]) -> tuple[list[str], np.ndarray]: ...
    async def reset(self) -> None:
        """Forget in-memory state derived from the database (its contents were replaced)."""


@runtime_checkable
class Embedder(Protocol):
    """Text to vectors: float32 rows, L2-normalised, ``dim`` wide. ``name`` identifies the model
    (a store records it, so vectors of different models are never mixed)."""

    name: str
    dim: int

    async def embed(self, texts: list[str]) -> np.ndarray: ...


@runtime_checkable
class MemoryType(Protocol):
    name: str

    async def add(self, tenant: str, item: Any) -> Any: ...
    async def get(self, tenant: str, item_id: str) -> Any: ...
    async def update(self, tenant: str, item_id: str, changes: Any) -> Any: ...
    async def delete(self, tenant: str, item_id: str) -> None: ...
    async def list(self, tenant: str, *, limit: int, cursor: str | None, filters: Any) -> Any: ...
    async def recall(
        self, tenant: str, query: str, *, k: int, filters: Any = None, explain: bool = False
    ) -> list[Any]: ...


# What plugins hand the built-in memory types' ``add``/``add_many``/``relate`` when they write
# memories themselves (capture, consolidation, agent routes): the fields those methods read, none
# of the request validation (the caller bounds what it stores).


@dataclass(kw_only=True, slots=True)
class EpisodeDraft:
    content: str
    occurred_at: datetime | None = None
    session_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    actor: str | None = None
    role: str | None = None
    outcome: str | None = None
    importance: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True, slots=True)
class EntityDraft:
    name: str
    description: str = ""
    type: str = "fact"
    attributes: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    agent_id: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None


@dataclass(kw_only=True, slots=True)
class RelationDraft:
    source_id: str
    target_id: str
    type: str
    weight: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True, slots=True)
class SkillDraft:
    name: str
    description: str = ""
    steps: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    agent_id: str | None = None


@runtime_checkable
class PortableMemory(Protocol):
    """A memory type whose items move between stores as JSON records (the persistence plugin's
    JSONL export and import). Each record is a JSON object whose ``record`` field is one of
    ``record_types`` and which carries the item's ``id``. ``import_records`` validates every
    record, writes the valid ones in one transaction (upserting by id: importing the same
    records twice leaves one copy) and answers, per record, None or why it was rejected."""

    name: str
    record_types: tuple[str, ...]

    def export_records(self, tenant: str) -> AsyncIterator[list[dict[str, Any]]]: ...
    async def import_records(self, tenant: str, records: Sequence[dict[str, Any]]) -> list[str | None]: ...


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model a provider serves (``enabled``) or knows of from its catalogue; prices in USD
    per million tokens."""

    id: str
    provider: str
    context_window: int | None = None
    input_price_per_mtok: float | None = None
    output_price_per_mtok: float | None = None
    enabled: bool = True

    def cost(self, tokens_in: int, tokens_out: int) -> float | None:
        if self.input_price_per_mtok is None and self.output_price_per_mtok is None:
            return None
        return (
            tokens_in * (self.input_price_per_mtok or 0.0) + tokens_out * (self.output_price_per_mtok or 0.0)
        ) / 1_000_000


class ProviderError(Exception):
    """A provider could not answer: ``kind`` is ``connect``, ``timeout`` or ``http`` (the
    upstream answered ``status``). The gateway retries and falls back on connect errors,
    timeouts, 429 and 5xx, honouring ``retry_after`` (seconds), and otherwise answers with
    the error envelope."""

    def __init__(
        self,
        message: str,
        *,
        kind: Literal["connect", "timeout", "http"] = "http",
        status: int = 502,
        code: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.headers = headers or {}

    @property
    def retryable(self) -> bool:
        return self.kind != "http" or self.status == 429 or self.status >= 500


@runtime_checkable
class Provider(Protocol):
    """An LLM provider adapter in the OpenAI chat format. ``complete`` and ``stream`` use
    ``ctx.provider``/``ctx.model`` (the upstream model id) and ``ctx.body``, record upstream
    response headers in ``ctx.upstream_headers`` and raise ``ProviderError``; ``stream``
    yields one or more complete SSE events per chunk and fails before its first chunk when
    the upstream refuses."""

    name: str
    kind: str

    async def models(self) -> list[ModelInfo]: ...
    async def complete(self, ctx: ChatContext) -> dict[str, Any]: ...
    def stream(self, ctx: ChatContext) -> AsyncIterator[bytes]: ...


@dataclass(slots=True)
class CompactionResult:
    messages: list[dict[str, Any]]
    tokens_before: int
    tokens_after: int
    removed: list[dict[str, Any]] = field(default_factory=list)


@runtime_checkable
class CompactionStrategy(Protocol):
    name: str

    def compact(
        self, messages: list[dict[str, Any]], *, budget: int, count_tokens: Callable[[str], int]
    ) -> CompactionResult: ...


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    kind: str


@runtime_checkable
class Detector(Protocol):
    kind: str

    def find(self, text: str) -> Iterable[Span]: ...


# -- MCP -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExternalMcpServer:
    """An MCP server outside the process, for ``register_mcp_servers``: started as a subprocess
    speaking stdio (``command`` with ``args``, ``env``, ``cwd``) or reached over streamable HTTP
    (``url`` with ``headers``). ``timeout_seconds`` bounds each call and ``max_concurrency`` the
    calls in flight; ``None`` takes the gateway's defaults."""

    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float | None = None
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        if (self.command is None) == (self.url is None):
            raise ValueError("an external MCP server has either a command (stdio) or a url (streamable HTTP)")

    @property
    def transport(self) -> Literal["stdio", "streamable-http"]:
        return "stdio" if self.command is not None else "streamable-http"


@dataclass(frozen=True, slots=True)
class McpServerModule:
    """An in-process MCP server for ``register_mcp_servers``, built by ``build(registry)`` of
    ``module``, which is imported only when the MCP gateway builds its servers: modules using the
    ``mcp`` SDK take most of a second to import, and the gateway builds its servers in the
    background once the app is up (importing the module in a worker thread)."""

    module: str

    def load(self) -> Callable[[Registry], Any]:
        return importlib.import_module(self.module).build  # type: ignore[no-any-return]

    def __call__(self, registry: Registry) -> Any:
        return self.load()(registry)


MCP_CALLER_STATE = "mcp_caller"


@dataclass(frozen=True, slots=True)
class McpCaller:
    """Who calls a tool of an in-process MCP server. The MCP gateway puts it in the state of the
    HTTP request it serves (``scope["state"][MCP_CALLER_STATE]``); a tool reads it from its
    request context (``McpCaller.of(ctx.request_context.request)``)."""

    tenant: str = DEFAULT_TENANT
    session_id: str | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, request: Any) -> McpCaller:
        scope = getattr(request, "scope", None) or {}
        caller = (scope.get("state") or {}).get(MCP_CALLER_STATE)
        return caller if isinstance(caller, McpCaller) else cls()


@dataclass(slots=True)
class McpToolCall:
    """A finished ``tools/call`` through the MCP gateway, handed to ``mcp_tool_called`` hooks:
    which server and tool, with what arguments, for whom, and how it went (``outcome`` is
    ``ok``, ``tool_error`` when the tool reported a failure, or ``error`` when the call itself
    failed: unknown tool, invalid arguments, timeout, server down). ``registry`` is the app's
    registry, so hooks reach services (as with ``ChatContext``)."""

    id: str
    tenant: str
    session_id: str | None
    request_id: str | None
    server: str
    tool: str
    arguments: dict[str, Any]
    outcome: Literal["ok", "tool_error", "error"]
    error: str | None
    latency_ms: float
    at: datetime = field(default_factory=utcnow)
    registry: Registry | None = None
