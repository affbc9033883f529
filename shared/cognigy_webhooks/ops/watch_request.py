"""What a watch started on demand may be asked: ``POST /watches``' body and ``cogwh watch-now``'s
``--at`` and ``--endpoint`` flags, checked by one model so both refuse the same things the same way.

- ``at``: the time the health rules judge at (drills, and tests that compress time): an ISO 8601
  date-time text WITH a UTC offset (``2026-12-01T09:00:00Z``), from :data:`EARLIEST_AT` to
  :data:`LATEST_AT` (a time the rules' arithmetic, certificate days and the records can hold). A
  number, a date alone, a time without an offset: refused naming ``at``. None: the watch's start.
- ``names``: only these endpoints (1 to :data:`~cognigy_webhooks.ops.watch.MAX_NAMES`, each a valid
  endpoint name; repeats kept once). Whether each is recorded is the operation's check
  (:func:`cognigy_webhooks.ops.watch.start_watch`: :class:`~cognigy_webhooks.errors.NotFound`).

Errors name the field (``at``, ``names.2``) and never echo a value (:func:`parse_watch_request`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, ValidationError

from cognigy_webhooks.errors import InvalidInput
from cognigy_webhooks.models import EndpointName, _Model
from cognigy_webhooks.ops.watch import MAX_NAMES

__all__ = ["EARLIEST_AT", "LATEST_AT", "WatchRequest", "parse_watch_request"]

#: The earliest and (exclusive) latest time a watch may judge at.
EARLIEST_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AT = datetime(2200, 1, 1, tzinfo=UTC)
_AT_FORMAT = "must be an ISO 8601 date-time with a UTC offset (such as 2026-12-01T09:00:00Z)"


def _text_only(value: Any) -> Any:
    """A time as text only: pydantic would take a number for a Unix time, which no one means here."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(_AT_FORMAT)
    return value


def _within_bounds(value: datetime | None) -> datetime | None:
    if value is not None and not EARLIEST_AT <= value < LATEST_AT:
        raise ValueError(f"must be from {EARLIEST_AT:%Y-%m-%d} to before {LATEST_AT:%Y-%m-%d}")
    return value


class WatchRequest(_Model):
    """One watch asked for: judge ``at`` that time (None: now), over ``names`` only (None: every
    active endpoint). ``POST /watches`` takes it as its (optional) body."""

    at: Annotated[
        AwareDatetime | None,
        BeforeValidator(_text_only),
        AfterValidator(_within_bounds),
        Field(description="judge as if at this time (ISO 8601 with a UTC offset); default: now"),
    ] = None
    names: Annotated[
        list[EndpointName] | None,
        Field(min_length=1, max_length=MAX_NAMES, description="only these endpoints; default: all"),
    ] = None


def parse_watch_request(data: Any) -> WatchRequest:
    """``data`` as a :class:`WatchRequest`; :class:`InvalidInput` naming each field at fault
    (``at``, ``names``, ``names.0``), with pydantic's message for it and never the value."""
    try:
        return WatchRequest.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(p) for p in err["loc"]) or "body"
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            if field == "at" and err.get("type") != "value_error":
                message = _AT_FORMAT  # pydantic's own words for a bad date-time name no format
            errors.append({"field": field, "message": message})
        raise InvalidInput(errors) from None
