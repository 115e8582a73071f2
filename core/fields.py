"""Field types for request models and query parameters.

Pydantic's lax mode turns ``0`` into ``False`` and ``"1700000000"`` into a date; an API
documented as taking a boolean or an ISO 8601 time must refuse those instead (the fuzz test
checks that schema-violating input is rejected). Use ``pydantic.StrictBool``/``StrictInt`` for
flags and counts in JSON bodies, and ``Timestamp`` for times anywhere.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_8601.match(value):
        raise ValueError("expected an ISO 8601 time with a time zone, e.g. 2025-01-31T12:00:00Z")
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("the time needs a time zone, e.g. 2025-01-31T12:00:00Z")
    return value.astimezone(UTC)


Timestamp = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_utc)]
"""An ISO 8601 time with a time zone (``Z`` or an offset), converted to UTC."""
