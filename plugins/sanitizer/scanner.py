"""Finding secrets fast: one Aho-Corasick pass for every trigger of every detector, then each
detector's pattern only where one of its triggers is.

Text without a trigger (most prose, most code) costs the one automaton pass and nothing else.
Detectors registered by other plugins that have no triggers scan the whole text with ``find``.
Overlapping finds are resolved in favour of the specific detectors (an AWS key assigned to
``secret =`` is an ``aws_access_key``, not a ``generic_secret``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ahocorasick

from mnemogate.core.contracts import Span


def _variants(trigger: str, ignore_case: bool) -> set[str]:
    if not ignore_case:
        return {trigger}
    return {trigger, trigger.lower(), trigger.upper(), trigger.capitalize()}


class Scanner:
    def __init__(self, detectors: Sequence[Any]) -> None:
        self.detectors = list(detectors)
        by_trigger: dict[str, list[Any]] = {}
        self.full_scan: list[Any] = []
        for detector in self.detectors:
            triggers = getattr(detector, "triggers", ())
            if not triggers or not hasattr(detector, "match_at"):
                self.full_scan.append(detector)
                continue
            for trigger in triggers:
                for variant in _variants(trigger, getattr(detector, "ignore_case", False)):
                    by_trigger.setdefault(variant, []).append(detector)
        self.automaton: Any = None
        if by_trigger:
            self.automaton = ahocorasick.Automaton()
            for variant, owners in by_trigger.items():
                # specific detectors first: at a shared trigger the first match wins
                ordered = sorted(owners, key=lambda d: bool(getattr(d, "generic", False)))
                self.automaton.add_word(variant, (len(variant), tuple(ordered)))
            self.automaton.make_automaton()
        self.kinds = [d.kind for d in self.detectors]

    def spans(self, text: str) -> list[Span]:
        """The secrets in ``text``, sorted, without overlaps."""
        found: list[tuple[Span, bool]] = []
        if self.automaton is not None:
            covered = -1
            # The automaton runs twice as fast on ASCII strings; every trigger is ASCII, and
            # replacing each other character by "?" keeps every position where it was.
            probe = text if text.isascii() else text.encode("ascii", "replace").decode("ascii")
            for end, (length, owners) in self.automaton.iter(probe):
                start = end - length + 1
                if start < covered:
                    continue
                for detector in owners:
                    span = detector.match_at(text, start)
                    if span is not None:
                        generic = bool(getattr(detector, "generic", False))
                        found.append((span, generic))
                        if not generic:  # a generic find may still hold a specific one
                            covered = span.end
                        break
        for detector in self.full_scan:
            generic = bool(getattr(detector, "generic", False))
            found.extend((span, generic) for span in detector.find(text) if span.end > span.start)
        if len(found) < 2:
            return [span for span, _ in found]
        return _without_overlaps(found)


def _rank(item: tuple[Span, bool]) -> tuple[bool, int]:
    span, generic = item
    return (not generic, span.end - span.start)


def _without_overlaps(found: list[tuple[Span, bool]]) -> list[Span]:
    """One sweep by start: where finds overlap, the specific one wins, then the longer one."""
    found.sort(key=lambda item: item[0].start)
    kept: list[tuple[Span, bool]] = []
    for item in found:
        while kept and item[0].start < kept[-1][0].end:
            if _rank(item) <= _rank(kept[-1]):
                break
            kept.pop()
        else:
            kept.append(item)
    return [span for span, _ in kept]
