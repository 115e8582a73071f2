"""Synthetic secrets of every built-in kind, shaped like the real ones, for the tests and the
benchmark (recall is measured on these). Each maker takes a ``random.Random``, so a seed gives
the same secret again.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Callable

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
BASE32 = string.ascii_uppercase + "234567"


def _pick(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _mixed(rng: random.Random, alphabet: str, length: int) -> str:
    """Random, with at least one lower, upper and digit (as generated keys have, but a short
    random draw may lack)."""
    body = list(_pick(rng, alphabet, length - 3))
    for forced in (
        rng.choice(string.ascii_lowercase),
        rng.choice(string.ascii_uppercase),
        rng.choice("23456789"),
    ):
        body.insert(rng.randrange(len(body) + 1), forced)
    return "".join(body)


def _pem(rng: random.Random) -> str:
    label = rng.choice(("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"))
    body = base64.b64encode(rng.randbytes(rng.randrange(64, 400))).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----"


def _jwt(rng: random.Random) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = part(b'{"alg":"HS256","typ":"JWT"}')
    claims = part(b'{"sub":"' + str(rng.randrange(10**9)).encode() + b'","iat":1700000000}')
    return f"{header}.{claims}.{part(rng.randbytes(32))}"


MAKERS: dict[str, Callable[[random.Random], str]] = {
    "aws_access_key": lambda r: r.choice(("AKIA", "ASIA")) + _pick(r, BASE32, 16),
    "github_token": lambda r: (
        r.choice(("ghp_", "gho_", "ghu_", "ghs_")) + _mixed(r, ALNUM, 36)
        if r.random() < 0.7
        else "github_pat_" + _mixed(r, ALNUM, 22) + "_" + _mixed(r, ALNUM, 59)
    ),
    "openai_key": lambda r: (
        r.choice(("sk-", "sk-proj-", "sk-svcacct-")) + _mixed(r, URLSAFE, r.randrange(40, 140))
    ),
    "anthropic_key": lambda r: "sk-ant-api03-" + _mixed(r, URLSAFE, 93) + "AA",
    "slack_token": lambda r: (
        f"xox{r.choice('bpa')}-{r.randrange(10**11, 10**12)}-{r.randrange(10**12, 10**13)}-"
        + _mixed(r, ALNUM, 24)
    ),
    "slack_webhook": lambda r: (
        "https://hooks.slack.com/services/T"
        + _pick(r, BASE32, 8)
        + "/B"
        + _pick(r, BASE32, 10)
        + "/"
        + _mixed(r, ALNUM, 24)
    ),
    "stripe_key": lambda r: (
        r.choice(("sk_live_", "sk_test_", "rk_live_")) + _mixed(r, ALNUM, r.randrange(24, 99))
        if r.random() < 0.8
        else "whsec_" + _mixed(r, ALNUM, 32)
    ),
    "google_api_key": lambda r: "AIza" + _mixed(r, URLSAFE, 35),
    "huggingface_token": lambda r: "hf_" + _mixed(r, string.ascii_letters, 34),
    "jwt": _jwt,
    "private_key": _pem,
    "url_password": lambda r: _mixed(r, ALNUM + "!$%&*+", r.randrange(10, 30)),
    "bearer_token": lambda r: _mixed(r, URLSAFE + ".~", r.randrange(24, 64)),
    "generic_secret": lambda r: _mixed(r, ALNUM + "+/", r.randrange(20, 48)),
}


def in_context(kind: str, secret: str, rng: random.Random) -> str:
    """The secret the way it turns up in a prompt (kinds recognised by their surroundings get
    them)."""
    if kind == "url_password":
        scheme = rng.choice(("postgresql", "mysql", "redis", "mongodb+srv", "https", "amqp"))
        user = rng.choice(("admin", "app", "svc_user"))
        return f"{scheme}://{user}:{secret}@db{rng.randrange(9)}.internal:5432/x"
    if kind == "bearer_token":
        return f"Authorization: Bearer {secret}"
    if kind == "generic_secret":
        name = rng.choice(("API_KEY", "client_secret", "db_password", "AUTH_TOKEN", "secretKey", "apiKey"))
        return rng.choice(
            (f'{name}="{secret}"', f"{name}={secret}", f"{name}: {secret}", f'"{name}": "{secret}"')
        )
    return secret
