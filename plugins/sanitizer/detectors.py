"""The built-in detectors: one compiled pattern each, plus the literal triggers it starts at.

A ``PatternDetector`` answers ``find(text)`` (a scan of the whole text, the ``Detector``
protocol) and ``match_at(text, position)`` (one match at a trigger the scanner's single
prefilter pass found). Patterns look behind their trigger for word boundaries, so ``task-id``
never starts an OpenAI key. The generic rule (a secret-sounding name assigned a random-looking
value) filters what only looks like a secret: templated values, UUIDs, hex digests (lock files),
code references, words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mnemogate.core.contracts import Span

# -- filters of the generic rule -----------------------------------------------------------------

_TEMPLATED = re.compile(
    r"^(?:\$\{.*\}|\$\(.*\)|\$[A-Z_][A-Z0-9_]*|\{\{.*\}\}|<[^>]*>|%s|%\(\w+\)s|\*+|x+|X+|\.+|-+)$"
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEX_DIGEST = re.compile(r"^(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128})$")
_INTEGRITY = re.compile(r"^(?:sha1|sha256|sha384|sha512|md5)[-:]", re.IGNORECASE)
_CODE_REFERENCE = re.compile(r"^[A-Za-z_][A-Za-z_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
_PLACEHOLDER_WORDS = (
    "example",
    "changeme",
    "change_me",
    "placeholder",
    "your_",
    "your-",
    "dummy",
    "redacted",
    "masked",
    "sample",
    "insert",
    "replace",
    "<",
    "environ",
    "getenv",
    "process.env",
)
PASSWORD_WORDS = ("password", "passwd", "passphrase", "pwd")
SECRET_WORDS = (
    *PASSWORD_WORDS,
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "accesskey",
    "auth_key",
    "private_key",
    "credential",
    "accountkey",
    # camelCase spellings are triggers of their own (the prefilter is case-sensitive)
    "apiKey",
    "accessKey",
    "privateKey",
    "authKey",
    "accountKey",
    "authToken",
    "accessToken",
)


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    length = len(value)
    return -sum(n / length * math.log2(n / length) for n in Counter(value).values())


def _classes(value: str) -> int:
    return (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + any(not c.isalnum() for c in value)
    )


def plausible_secret(value: str, *, password: bool) -> bool:
    """Whether an assigned value looks like a real secret rather than code, a template or a hash."""
    lowered = value.lower()
    if _TEMPLATED.match(value) or _UUID.match(value) or _INTEGRITY.match(value):
        return False
    if _HEX_DIGEST.match(value) or any(word in lowered for word in _PLACEHOLDER_WORDS):
        return False
    if _CODE_REFERENCE.match(value) or len(set(value)) < 5:
        return False
    if password:
        return len(value) >= 8 and _classes(value) >= 2 and entropy(value) >= 2.5
    return len(value) >= 16 and _classes(value) >= 2 and entropy(value) >= 3.3


# -- the detector type ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatternDetector:
    """A detector made of one regular expression.

    ``triggers`` are literals every match contains at its ``match_at`` position (the prefilter
    looks for all triggers of all detectors in one pass); with ``ignore_case`` they are also
    looked for in UPPER and Capitalised forms. A match may begin up to ``lookback`` characters
    before its trigger. ``group`` names the part of the match that is the secret; ``accept``
    vetoes a candidate (given the secret and the whole match).
    """

    kind: str
    pattern: re.Pattern[str]
    triggers: tuple[str, ...]
    ignore_case: bool = False
    group: int | str = 0
    lookback: int = 0
    accept: Callable[[str, re.Match[str]], bool] | None = None
    generic: bool = False
    pii: bool = False

    def _span(self, match: re.Match[str]) -> Span | None:
        secret = match.group(self.group)
        if not secret or (self.accept is not None and not self.accept(secret, match)):
            return None
        return Span(match.start(self.group), match.end(self.group), self.kind)

    def find(self, text: str) -> Iterator[Span]:
        for match in self.pattern.finditer(text):
            span = self._span(match)
            if span is not None:
                yield span

    def match_at(self, text: str, position: int) -> Span | None:
        if not self.lookback:
            match = self.pattern.match(text, position)
            return self._span(match) if match else None
        for match in self.pattern.finditer(text, max(0, position - self.lookback)):
            if match.start() > position:
                break
            if match.end() > position:
                return self._span(match)
        return None


# -- the built-in detectors ----------------------------------------------------------------------

# No token character right before a prefix, unless it ends a JSON escape (a key after a newline
# inside a JSON string, as in tool-call arguments, follows "\n").
_B = r"(?:(?<![A-Za-z0-9_\-])|(?<=\\[nrtbf]))"
_E = r"(?![A-Za-z0-9_\-])"  # ... nor right after the secret


def _random_enough(secret: str, _match: re.Match[str]) -> bool:
    return _classes(secret) >= 2 and entropy(secret) >= 3.0


_INSIDE_PLACEHOLDER = re.compile(r"\[MASKED:[a-z0-9_]*\Z")


def _generic_accept(secret: str, match: re.Match[str]) -> bool:
    following = match.string[match.end() : match.end() + 1]
    if following in ("(", "["):  # a call or an index: code, not a value
        return False
    start = match.start()
    if _INSIDE_PLACEHOLDER.search(match.string, max(0, start - 48), start):  # [MASKED:github_token:...]
        return False
    keyword = match.group("name").lower()
    return plausible_secret(secret, password=keyword in PASSWORD_WORDS)


def _url_accept(secret: str, _match: re.Match[str]) -> bool:
    lowered = secret.lower()
    return not (
        _TEMPLATED.match(secret)
        or lowered in ("password", "pass", "passwd", "pwd", "secret", "pw", "p")
        or any(word in lowered for word in _PLACEHOLDER_WORDS)
    )


_KEYWORDS = "|".join(sorted({re.escape(w.lower()) for w in SECRET_WORDS}, key=len, reverse=True))

BUILTIN: tuple[PatternDetector, ...] = (
    PatternDetector(
        "aws_access_key",
        re.compile(_B + r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])"),
        ("AKIA", "ASIA", "ABIA", "ACCA"),
    ),
    PatternDetector(
        "github_token",
        re.compile(_B + r"(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,243})(?![A-Za-z0-9_])"),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    PatternDetector(
        "anthropic_key",
        re.compile(_B + r"sk-ant-[A-Za-z0-9_\-]{20,200}" + _E),
        ("sk-ant-",),
    ),
    PatternDetector(
        "openai_key",
        re.compile(_B + r"sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,200}" + _E),
        ("sk-",),
        accept=_random_enough,
    ),
    PatternDetector(
        "slack_token",
        re.compile(_B + r"xox[abposre]-[A-Za-z0-9\-]{10,250}" + _E),
        ("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe-"),
    ),
    PatternDetector(
        "slack_webhook",
        re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]{20,200}"),
        ("hooks.slack.com/",),
    ),
    PatternDetector(
        "stripe_key",
        re.compile(_B + r"(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,200}|whsec_[A-Za-z0-9]{24,200})" + _E),
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"),
    ),
    PatternDetector(
        "google_api_key",
        re.compile(_B + r"AIza[0-9A-Za-z_\-]{35}" + _E),
        ("AIza",),
    ),
    PatternDetector(
        "huggingface_token",
        re.compile(_B + r"hf_[A-Za-z0-9]{30,40}(?![A-Za-z0-9_])"),
        ("hf_",),
        accept=_random_enough,
    ),
    PatternDetector(
        "jwt",
        re.compile(_B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}" + _E),
        ("eyJ",),
    ),
    PatternDetector(
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----[\s\S]{16,16384}?"
            r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        ),
        ("-----BEGIN ",),
    ),
    PatternDetector(
        "url_password",
        re.compile(r"://[^\s:/?#@'\"<>\[\]]{1,128}:(?P<secret>[^\s/?#@'\"<>\[\]]{1,256})@[\w.\-\[]"),
        ("://",),
        group="secret",
        accept=_url_accept,
    ),
    PatternDetector(
        "bearer_token",
        re.compile(r"(?i:bearer)\s+(?P<secret>[A-Za-z0-9\-._~+/]{20,500}=*)" + _E),
        ("bearer ",),
        ignore_case=True,
        group="secret",
        accept=_random_enough,
        generic=True,
    ),
    PatternDetector(
        "generic_secret",
        re.compile(
            r"(?P<name>(?i:" + _KEYWORDS + r"))[A-Za-z0-9_.\-]{0,40}?(?:\\?[\"'])?[ \t]{0,3}(?::=|=>|[:=])"
            r"[ \t]{0,3}(?:\\?[\"'`])?(?P<secret>[^\s\"'`;,()\[\]{}<>\\]{6,256})"
        ),
        SECRET_WORDS,
        ignore_case=True,
        group="secret",
        accept=_generic_accept,
        generic=True,
    ),
    PatternDetector(
        "email",
        re.compile(
            r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}\b"
        ),
        ("@",),
        lookback=64,
        pii=True,
    ),
    PatternDetector(
        "phone",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .\-]\d{3,4}[ .\-]\d{3,4}(?![\w])"
        ),
        (),
        pii=True,
    ),
)
