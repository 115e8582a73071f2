import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from mnemogate.core.dependencies import PageCursor, PageLimit, PrincipalDep, RegistryDep
from mnemogate.core.pagination import Page
from mnemogate.plugins.procedural.models import (
    Execution,
    ExecutionFinish,
    ExecutionHistory,
    ExecutionStart,
    MatchRequest,
    MatchResult,
    Skill,
    SkillCreate,
    SkillUpdate,
)
from mnemogate.plugins.procedural.service import KIND, SkillService


def get_skills(registry: RegistryDep) -> SkillService:
    return registry.memory_types[KIND]


Skills = Annotated[SkillService, Depends(get_skills)]
Filter = Annotated[str | None, Query(max_length=200)]

reads = APIRouter(prefix="/api/v1/skills")
writes = APIRouter(prefix="/api/v1/skills")


@writes.post("", status_code=201, summary="Create a skill")
async def create(body: SkillCreate, principal: PrincipalDep, skills: Skills) -> Skill:
    return await skills.add(principal.tenant, body)


@reads.get("", summary="List skills, newest first")
async def list_skills(
    principal: PrincipalDep,
    skills: Skills,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
    name: Filter = None,
    user_id: Filter = None,
    agent_id: Filter = None,
) -> Page[Skill]:
    filters = {"name": name, "user_id": user_id, "agent_id": agent_id}
    return await skills.list(principal.tenant, limit=limit, cursor=cursor, filters=filters)


@reads.post("/match", summary="The best skills for a task, by similarity and success rate")
async def match(body: MatchRequest, principal: PrincipalDep, skills: Skills) -> MatchResult:
    return MatchResult(items=await skills.match(principal.tenant, body))


@writes.patch("/executions/{execution_id}", summary="Finish an execution: success or failure")
async def finish_execution(
    execution_id: uuid.UUID, body: ExecutionFinish, principal: PrincipalDep, skills: Skills
) -> Execution:
    return await skills.finish_execution(principal.tenant, str(execution_id), body)


@reads.get("/{skill_id:uuid}", summary="A skill with its track record")
async def get_skill(skill_id: uuid.UUID, principal: PrincipalDep, skills: Skills) -> Skill:
    return await skills.get(principal.tenant, str(skill_id))


@writes.put("/{skill_id:uuid}", summary="Change a skill (re-indexed)")
async def update_skill(
    skill_id: uuid.UUID, body: SkillUpdate, principal: PrincipalDep, skills: Skills
) -> Skill:
    return await skills.update(principal.tenant, str(skill_id), body)


@writes.delete("/{skill_id:uuid}", status_code=204, summary="Delete a skill and its executions")
async def delete_skill(skill_id: uuid.UUID, principal: PrincipalDep, skills: Skills) -> Response:
    await skills.delete(principal.tenant, str(skill_id))
    return Response(status_code=204)


@writes.post("/{skill_id:uuid}/executions", status_code=201, summary="Start an execution of a skill")
async def start_execution(
    skill_id: uuid.UUID, body: ExecutionStart, principal: PrincipalDep, skills: Skills
) -> Execution:
    return await skills.start_execution(principal.tenant, str(skill_id), body)


@reads.get("/{skill_id:uuid}/executions", summary="Execution history, success rate and mean duration")
async def executions(
    skill_id: uuid.UUID,
    principal: PrincipalDep,
    skills: Skills,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> ExecutionHistory:
    return await skills.executions(principal.tenant, str(skill_id), limit=limit, cursor=cursor)
