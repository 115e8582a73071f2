"""The deterministic, offline extraction consolidation runs on episodes (no model, no network).

**Entities.** A name is a run of capitalised words ("Ana", "Rua Augusta", "Globex"), with
leading function words dropped ("The Alfama Hotel" -> "Alfama Hotel") and a possessive "'s"
removed. A single capitalised word at the start of a sentence counts only when the same word
also appears mid-sentence somewhere in the batch (so "Where" or "Book" are not names). A name
becomes an entity when at least ``min_mentions`` episodes mention it.

**Relations.** Two entities mentioned in the same episode co-occur; at least ``min_support``
such episodes make a ``related_to`` relation. Within a sentence, one to three lowercase words
between two entity names that start with a relation verb of a fixed list (``RELATION_VERBS``:
works, lives, likes, met, manages, ...; inflections folded) make a relation named by those
words ("Ana *works at* Globex" -> ``works_at``; trailing articles dropped), directed from the
first name to the second.

**Topics.** Episodes are clustered by their embeddings (leader clustering: an episode joins the
most similar cluster centroid at or above a cosine threshold, else starts a cluster; centroids
are running means). A cluster is labelled by its three most frequent content words.

**Tool sequences.** Per session, tool-call episodes in time order are cut at every failure; the
contiguous sub-sequences (2 to ``max_length`` calls) of what remains are the candidate
patterns, each occurrence identified by the episode of its first call (so re-reading the same
episodes never counts twice). Patterns with enough occurrences are learned, except those lying
inside the repetition of a more frequent pattern and those contained in a longer pattern with
as much support.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_FUNCTION_WORDS = """a an the this that these those i we you he she it they my our your his her its
their me us him them and or but if so then yes no ok okay hi hello hey thanks thank please sure
what when where who whom which why how is are was were be do does did can could would should will
shall may might must let lets also just not all any some every each there here now today tomorrow
yesterday in on at of for to from with by about after before as"""
_COMMON_WORDS = """has have had been being into over under than more most very much many such only
own same other out up down off again once noted"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())
STOP_CONTENT = FUNCTION_WORDS | frozenset(_COMMON_WORDS.split())
_VERBS = """work live like love know meet manage own visit move join found lead report marry use prefer
build create write call hate study teach help belong stay hire run invest partner sell buy"""
RELATION_VERBS = frozenset(_VERBS.split())
IRREGULAR = {"met": "meet", "wrote": "write", "built": "build", "led": "lead", "ran": "run", "sold": "sell"}
ARTICLES = ("the", "a", "an")
_NAME = re.compile(r"[A-Z][\w'\u2019-]*(?:\s+[A-Z][\w'\u2019-]*)*")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_WORD = re.compile(r"[a-zA-Z][a-zA-Z'-]{2,}")
_LINK = re.compile(r"^\s*([a-z]+(?:\s+[a-z]+){0,2})\s*$")


@dataclass(frozen=True, slots=True)
class Mention:
    name: str
    start: int
    end: int
    sentence_start: bool


def _clean(name: str) -> str:
    words = name.split()
    while words and words[0].lower() in FUNCTION_WORDS:
        words.pop(0)
    if words:
        words[-1] = re.sub(r"['\u2019]s$", "", words[-1])
    return " ".join(w for w in words if w)


def mentions(sentence: str) -> list[Mention]:
    found = []
    for match in _NAME.finditer(sentence):
        name = _clean(match.group(0))
        if not name or len(name) < 2:
            continue
        offset = match.group(0).find(name.split()[0])
        at_start = sentence[: match.start()].strip() == ""
        # Leading function words dropped: the name itself no longer starts the sentence.
        found.append(Mention(name, match.start() + offset, match.end(), at_start and offset == 0))
    return found


def verb(word: str) -> str:
    """A verb's base form, enough for ``RELATION_VERBS`` (works, worked, lives, liked -> base)."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("es", "e"), ("ed", "e"), ("s", ""), ("ed", "")):
        if word.endswith(suffix):
            stem = word[: -len(suffix)] + replacement
            if stem in RELATION_VERBS:
                return stem
    return word


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


@dataclass(slots=True)
class Extracted:
    entities: dict[str, int]  # name -> episodes mentioning it
    descriptions: dict[str, str]  # name -> the first sentence mentioning it
    related: dict[tuple[str, str], int]  # (name, name) sorted -> episodes mentioning both
    links: dict[tuple[str, str, str], int]  # (source, type, target) -> sentences saying so


def extract(texts: Sequence[str], *, min_mentions: int, min_support: int) -> Extracted:
    per_text: list[list[tuple[str, list[Mention]]]] = []
    confirmed: set[str] = set()
    for text in texts:
        parsed = [(sentence, mentions(sentence)) for sentence in sentences(text)]
        per_text.append(parsed)
        for _, found in parsed:
            confirmed.update(m.name for m in found if not m.sentence_start or " " in m.name)
    counts: Counter[str] = Counter()
    descriptions: dict[str, str] = {}
    for parsed in per_text:
        names = {m.name for _, found in parsed for m in found if m.name in confirmed}
        counts.update(names)
        for sentence, found in parsed:
            for m in found:
                if m.name in confirmed:
                    descriptions.setdefault(m.name, sentence[:300])
    entities = {name: n for name, n in counts.items() if n >= min_mentions}
    related: Counter[tuple[str, str]] = Counter()
    links: Counter[tuple[str, str, str]] = Counter()
    for parsed in per_text:
        names = sorted({m.name for _, found in parsed for m in found if m.name in entities})
        related.update((a, b) for i, a in enumerate(names) for b in names[i + 1 :])
        for sentence, found in parsed:
            known = [m for m in found if m.name in entities]
            for left, right in itertools.pairwise(known):
                between = _LINK.match(sentence[left.end : right.start])
                if between and left.name != right.name:
                    words = between.group(1).split()
                    while len(words) > 1 and words[-1] in ARTICLES:
                        words.pop()
                    if verb(words[0]) in RELATION_VERBS and not {"and", "or"} & set(words):
                        links[(left.name, "_".join(words), right.name)] += 1
    return Extracted(
        entities=entities,
        descriptions={name: descriptions[name] for name in entities},
        related={pair: n for pair, n in related.items() if n >= min_support},
        links=dict(links),
    )


# -- topics --------------------------------------------------------------------------------------


def cluster(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Leader clustering of L2-normalised rows: indices per cluster, in input order."""
    import numpy as np

    sums: list[np.ndarray] = []
    members: list[list[int]] = []
    centroids = np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
    for index, vector in enumerate(vectors):
        if len(members):
            similarity = centroids @ vector
            best = int(np.argmax(similarity))
            if similarity[best] >= threshold:
                members[best].append(index)
                sums[best] = sums[best] + vector
                norm = float(np.linalg.norm(sums[best]))
                centroids[best] = sums[best] / norm if norm else sums[best]
                continue
        members.append([index])
        sums.append(vector.astype(np.float32))
        centroids = np.vstack([centroids, vector[None, :]])
    return members


def keywords(texts: Iterable[str], n: int = 3) -> list[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({w.lower() for w in _WORD.findall(text)} - STOP_CONTENT)
    return [word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]]


# -- tool sequences ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    ok: bool
    episode_id: str
    session_id: str | None
    at: Any


def occurrences(steps: Sequence[Step], max_length: int) -> dict[tuple[str, ...], set[str]]:
    """Every contiguous successful tool sequence (2..max_length calls) of each session, with the
    first episode of each occurrence."""
    by_session: dict[str | None, list[Step]] = defaultdict(list)
    for step in steps:
        by_session[step.session_id].append(step)
    found: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for session_steps in by_session.values():
        session_steps.sort(key=lambda s: (s.at, s.episode_id))
        run: list[Step] = []
        for step in [*session_steps, None]:
            if step is not None and step.ok:
                run.append(step)
                continue
            for length in range(2, min(max_length, len(run)) + 1):
                for start in range(len(run) - length + 1):
                    window = run[start : start + length]
                    found[tuple(s.name for s in window)].add(window[0].episode_id)
            run = []
    return dict(found)


def maximal(support: dict[tuple[str, ...], int]) -> list[tuple[str, ...]]:
    """The patterns worth learning, longest first. A pattern lying inside the repetition of a
    more frequent one is an artefact of that cycle (A B A B A B also contains B A and A B A) and
    is dropped; so is a pattern contained in a longer one with at least the same support (a
    sequence learned whole is not learned again in pieces)."""
    kept = [
        pattern
        for pattern in support
        if not any(
            support[cycle] > support[pattern] and _contains(cycle * (len(pattern) // len(cycle) + 2), pattern)
            for cycle in support
            if len(cycle) <= len(pattern) and cycle != pattern
        )
    ]
    chosen: list[tuple[str, ...]] = []
    for pattern in sorted(kept, key=lambda p: (-len(p), p)):
        if any(
            len(other) > len(pattern) and support[other] >= support[pattern] and _contains(other, pattern)
            for other in chosen
        ):
            continue
        chosen.append(pattern)
    return chosen


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    n = len(shorter)
    return any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))
