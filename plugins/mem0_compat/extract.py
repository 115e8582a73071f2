"""Facts from a conversation, for ``infer=true``.

With an extraction model configured (``plugins.mem0_compat.llm_model`` or ``POST /configure``),
the gateway's provider is asked for the facts as JSON. Without one, the offline extractor takes
the user's messages sentence by sentence: questions, greetings and one-word acknowledgements
are not facts; "forget that ..." / "delete ..." asks to delete the memory it names; a sentence
with a negation ("not", "no longer", "never", ...) has the opposite polarity of the same
sentence without it, which decides whether a similar memory is a duplicate or is superseded.
How the facts are reconciled with stored memories (ADD/UPDATE/DELETE/NONE) is the service's
business and is the same for both extractors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Intent = Literal["remember", "forget"]

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
_FORGET = re.compile(
    r"^(?:please\s+)?(?:forget|delete|remove|drop)\s+(?:(?:the\s+)?(?:fact|memory)\s+)?(?:that\s+)?(?P<rest>.+)$",
    re.IGNORECASE,
)
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nothing|nobody|neither|nor|no\s+longer|any\s*more|stopped|quit)\b|n't\b",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(
    r"^(?:hi|hello|hey|thanks|thank you|thx|ok|okay|sure|yes|no|yep|nope|bye|goodbye|great|cool|nice|"
    r"good (?:morning|afternoon|evening|night))\b[\s!.,]*$",
    re.IGNORECASE,
)
FACT_PROMPT = (
    "Extract the distinct, self-contained facts worth remembering about the user (preferences, "
    "personal details, plans, relationships, decisions) from the conversation below. Answer with "
    'JSON only: {"facts": ["...", "..."]}; an empty list when there is nothing to remember.'
)


@dataclass(frozen=True, slots=True)
class Fact:
    text: str
    intent: Intent
    negated: bool
    role: str
    actor_id: str | None


def negated(text: str) -> bool:
    return _NEGATION.search(text) is not None


def _fact(text: str, role: str, actor_id: str | None) -> Fact | None:
    text = " ".join(text.split()).strip()
    if not text or text.endswith("?") or _SMALL_TALK.match(text):
        return None
    forget = _FORGET.match(text)
    if forget is not None:
        rest = forget.group("rest").strip().rstrip(".!")
        return Fact(rest, "forget", negated(rest), role, actor_id) if rest else None
    if len(re.findall(r"\w+", text)) < 2:
        return None
    return Fact(text, "remember", negated(text), role, actor_id)


def offline_facts(messages: Sequence[Any]) -> list[Fact]:
    """The facts of the user's messages (of every non-system message when no user spoke)."""
    speakers = [m for m in messages if m.role == "user"] or [m for m in messages if m.role != "system"]
    facts: list[Fact] = []
    for message in speakers:
        for sentence in _SENTENCE_END.split(message.content):
            fact = _fact(sentence, message.role, message.name)
            if fact is not None and fact not in facts:
                facts.append(fact)
    return facts


def llm_request(messages: Sequence[Any], prompt: str | None) -> list[dict[str, str]]:
    transcript = "\n".join(f"{m.role}: {m.content}" for m in messages if m.role != "system")
    return [{"role": "system", "content": prompt or FACT_PROMPT}, {"role": "user", "content": transcript}]


def llm_facts(reply: dict[str, Any], messages: Sequence[Any]) -> list[Fact]:
    """The facts of a chat completion answering ``llm_request``; ValueError when it is not the
    JSON asked for."""
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("the extraction model sent no message") from None
    match = re.search(r"\{.*\}", content or "", re.DOTALL)
    try:
        parsed = json.loads(match.group(0) if match else content)
    except (TypeError, ValueError):
        raise ValueError("the extraction model did not answer with JSON") from None
    items = parsed.get("facts") if isinstance(parsed, dict) else None
    if not isinstance(items, list):
        raise ValueError('the extraction model did not answer with {"facts": [...]}')
    user = next((m for m in messages if m.role == "user"), None)
    actor = user.name if user is not None else None
    facts = []
    for item in items:
        if isinstance(item, str):
            fact = _fact(item, "user", actor)
            if fact is not None and fact not in facts:
                facts.append(fact)
    return facts
