"""The ``sequentialthinking`` tool, with the reference server's name, description, input schema,
annotations and result fields (``@modelcontextprotocol/server-sequential-thinking``), a resource
with the caller's history and a prompt that asks for step-by-step thinking."""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, BeforeValidator, Field

from mnemogate.core import __version__
from mnemogate.core.contracts import McpCaller
from mnemogate.core.registry import Registry
from mnemogate.plugins.mcp_sequential_thinking.service import SERVICE, Thought, ThoughtStore

NAME = "sequentialthinking"
MAX_SAFE_INTEGER = 9007199254740991

DESCRIPTION = """A detailed tool for dynamic and reflective problem-solving through thoughts.
This tool helps analyze problems through a flexible thinking process that can adapt and evolve.
Each thought can build on, question, or revise previous insights as understanding deepens.

When to use this tool:
- Breaking down complex problems into steps
- Planning and design with room for revision
- Analysis that might need course correction
- Problems where the full scope might not be clear initially
- Problems that require a multi-step solution
- Tasks that need to maintain context over multiple steps
- Situations where irrelevant information needs to be filtered out

Key features:
- You can adjust total_thoughts up or down as you progress
- You can question or revise previous thoughts
- You can add more thoughts even after reaching what seemed like the end
- You can express uncertainty and explore alternative approaches
- Not every thought needs to build linearly - you can branch or backtrack
- Generates a solution hypothesis
- Verifies the hypothesis based on the Chain of Thought steps
- Repeats the process until satisfied
- Provides a correct answer

Parameters explained:
- thought: Your current thinking step, which can include:
  * Regular analytical steps
  * Revisions of previous thoughts
  * Questions about previous decisions
  * Realizations about needing more analysis
  * Changes in approach
  * Hypothesis generation
  * Hypothesis verification
- nextThoughtNeeded: True if you need more thinking, even if at what seemed like the end
- thoughtNumber: Current number in sequence (can go beyond initial total if needed)
- totalThoughts: Current estimate of thoughts needed (can be adjusted up/down)
- isRevision: A boolean indicating if this thought revises previous thinking
- revisesThought: If is_revision is true, which thought number is being reconsidered
- branchFromThought: If branching, which thought number is the branching point
- branchId: Identifier for the current branch (if any)
- needsMoreThoughts: If reaching end but realizing more thoughts needed

You should:
1. Start with an initial estimate of needed thoughts, but be ready to adjust
2. Feel free to question or revise previous thoughts
3. Don't hesitate to add more thoughts if needed, even at the "end"
4. Express uncertainty when present
5. Mark thoughts that revise previous thinking or branch into new paths
6. Ignore information that is irrelevant to the current step
7. Generate a solution hypothesis when appropriate
8. Verify the hypothesis based on the Chain of Thought steps
9. Repeat the process until satisfied with the solution
10. Provide a single, ideally correct answer as the final output
11. Only set nextThoughtNeeded to false when truly done and a satisfactory answer is reached"""


def _number(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_INTEGER, "description": description}


def _flag(description: str) -> dict[str, Any]:
    return {"description": description, "type": ["boolean", "string"]}


INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "thought": {"type": "string", "description": "Your current thinking step"},
        "nextThoughtNeeded": _flag("Whether another thought step is needed"),
        "thoughtNumber": _number("Current thought number (numeric value, e.g., 1, 2, 3)"),
        "totalThoughts": _number("Estimated total thoughts needed (numeric value, e.g., 5, 10)"),
        "isRevision": _flag("Whether this revises previous thinking"),
        "revisesThought": _number("Which thought is being reconsidered"),
        "branchFromThought": _number("Branching point thought number"),
        "branchId": {"description": "Branch identifier", "type": "string"},
        "needsMoreThoughts": _flag("If more thoughts are needed"),
    },
    "required": ["thought", "nextThoughtNeeded", "thoughtNumber", "totalThoughts"],
}


def _boolean(value: Any) -> Any:
    """A boolean, or the strings "true"/"false" in any case, as the reference accepts."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ValueError(f'Expected boolean or "true"/"false" string, received "{value}"')
    if not isinstance(value, bool):
        raise ValueError('Expected boolean or "true"/"false" string')
    return value


Flag = Annotated[bool, BeforeValidator(_boolean)]
Number = Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]


class ThoughtResult(BaseModel):
    thoughtNumber: int
    totalThoughts: int
    nextThoughtNeeded: bool
    branches: list[str]
    thoughtHistoryLength: int


def build(registry: Registry) -> MCPServer:
    store: ThoughtStore = registry.services[SERVICE]

    async def sequentialthinking(
        thought: str,
        nextThoughtNeeded: Flag,
        thoughtNumber: Number,
        totalThoughts: Number,
        ctx: Context,
        isRevision: Flag | None = None,
        revisesThought: Number | None = None,
        branchFromThought: Number | None = None,
        branchId: str | None = None,
        needsMoreThoughts: Flag | None = None,
    ) -> Annotated[CallToolResult, ThoughtResult]:
        result = await store.add(
            McpCaller.of(ctx.request_context.request),
            Thought(
                thought,
                nextThoughtNeeded,
                thoughtNumber,
                totalThoughts,
                isRevision,
                revisesThought,
                branchFromThought,
                branchId,
                needsMoreThoughts,
            ),
        )
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(result, indent=2))], structured_content=result
        )

    tool = Tool.from_function(
        sequentialthinking,
        name=NAME,
        title="Sequential Thinking",
        description=DESCRIPTION,
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    server = MCPServer(
        "sequential-thinking",
        version=__version__,
        tools=[tool.model_copy(update={"parameters": INPUT_SCHEMA})],
    )

    @server.resource(
        "thinking://history/{session}",
        name="thought-history",
        description='The thought history of a session ("current": the caller\'s)',
        mime_type="application/json",
    )
    async def thought_history(session: str, ctx: Context) -> str:
        caller = McpCaller.of(ctx.request_context.request)
        key = (caller.session_id or "") if session == "current" else session
        return json.dumps(await store.history(caller.tenant, key), indent=2)

    @server.prompt(name="think-step-by-step", description="Work through a problem with sequentialthinking")
    def think_step_by_step(problem: str) -> str:
        return (
            f"Solve this problem by calling the {NAME} tool once per thought: start with an "
            "estimate of the thoughts needed, revise or branch when a thought turns out wrong, and "
            f"stop only when the answer is verified.\n\nProblem: {problem}"
        )

    return server
