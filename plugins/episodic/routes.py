import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from mnemogate.core.dependencies import PageCursor, PageLimit, PrincipalDep, RegistryDep
from mnemogate.core.fields import Timestamp
from mnemogate.core.pagination import Page
from mnemogate.plugins.episodic.models import (
    Episode,
    EpisodeBatch,
    EpisodeCreate,
    EpisodeList,
    EpisodeUpdate,
    Feedback,
    RecallRequest,
    RecallResult,
)
from mnemogate.plugins.episodic.service import KIND, EpisodeService


def get_episodes(registry: RegistryDep) -> EpisodeService:
    return registry.memory_types[KIND]


Episodes = Annotated[EpisodeService, Depends(get_episodes)]
Filter = Annotated[str | None, Query(max_length=128)]

reads = APIRouter(prefix="/api/v1/episodes")
writes = APIRouter(prefix="/api/v1/episodes")


@writes.post("", status_code=201, summary='Store an episode, or a batch as {"episodes": [...]}')
async def create(
    body: EpisodeCreate | EpisodeBatch, principal: PrincipalDep, episodes: Episodes
) -> Episode | EpisodeList:
    if isinstance(body, EpisodeBatch):
        return EpisodeList(items=await episodes.add_many(principal.tenant, body.episodes))
    return await episodes.add(principal.tenant, body)


@reads.get("", summary="List episodes, newest first, with filters")
async def list_episodes(
    principal: PrincipalDep,
    episodes: Episodes,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
    session_id: Filter = None,
    user_id: Filter = None,
    agent_id: Filter = None,
    actor: Filter = None,
    outcome: Filter = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
) -> Page[Episode]:
    filters = {
        "session_id": session_id,
        "user_id": user_id,
        "agent_id": agent_id,
        "actor": actor,
        "outcome": outcome,
        "since": since,
        "until": until,
    }
    return await episodes.list(principal.tenant, limit=limit, cursor=cursor, filters=filters)


@reads.post("/recall", summary="Recall episodes by similarity, keywords, recency, importance and use")
async def recall(body: RecallRequest, principal: PrincipalDep, episodes: Episodes) -> RecallResult:
    return RecallResult(items=await episodes.recall_request(principal.tenant, body))


@reads.get("/{episode_id:uuid}", summary="One episode")
async def get_episode(episode_id: uuid.UUID, principal: PrincipalDep, episodes: Episodes) -> Episode:
    return await episodes.get(principal.tenant, str(episode_id))


@writes.put("/{episode_id:uuid}", summary="Change an episode (re-indexed)")
async def update_episode(
    episode_id: uuid.UUID, body: EpisodeUpdate, principal: PrincipalDep, episodes: Episodes
) -> Episode:
    return await episodes.update(principal.tenant, str(episode_id), body)


@writes.delete("/{episode_id:uuid}", status_code=204, summary="Delete an episode")
async def delete_episode(episode_id: uuid.UUID, principal: PrincipalDep, episodes: Episodes) -> Response:
    await episodes.delete(principal.tenant, str(episode_id))
    return Response(status_code=204)


@writes.post(
    "/{episode_id:uuid}/feedback", summary="Record an outcome or importance that changes later recall"
)
async def feedback(
    episode_id: uuid.UUID, body: Feedback, principal: PrincipalDep, episodes: Episodes
) -> Episode:
    return await episodes.feedback(principal.tenant, str(episode_id), body)
