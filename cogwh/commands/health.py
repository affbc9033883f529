"""cogwh health (--local | --stack NAME) [--json]: every endpoint's health as the watch last saw it.

One row per endpoint record (every page of :func:`cognigy_webhooks.ops.health`, in name order): its
name; its state (``healthy``, ``unhealthy`` or ``deactivated``; ``not watched`` added for a record the
watch does not re-probe: declared inactive, or never registered); the URL Cognigy delivers to
(``[failed over]`` when that is a fallback); the last probe (its age and its reason); the TLS version;
the certificate's days left; the consecutive failed watches. ``--json`` prints one
:class:`~cognigy_webhooks.ops.watch.EndpointHealth` per endpoint (a JSON array, camelCase: ``name``,
``state``, ``currentUrl``, ``failedOver``, ``certDaysLeft``, ``consecutiveFailures``, ...), the API's
``GET /health`` items. Nothing shown is a secret (a URL holds no user-info: the spec refuses it).

Exit status: 0 shown (whatever the health), 2 bad input, 3 the environment (no stack, unreachable).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from cognigy_webhooks import ops as library_ops
from cognigy_webhooks.models.records import utcnow
from cognigy_webhooks.models.watch import HealthState
from cognigy_webhooks.ops import StackAccess
from cognigy_webhooks.ops.watch import EndpointHealth
from cogwh import ops
from cogwh.follow import guarded

#: Records read per page (the most a page of the store holds).
PAGE = 100

EPILOG = """\
examples:
  cogwh health --local
  cogwh health --stack prod --json | jq '.[] | select(.state != "healthy") | .name'

exit status: 0 shown, 2 bad input, 3 environment (no stack, no credentials, unreachable).
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "health",
        help="show every endpoint's health as the watch last saw it",
        description="One row per endpoint: state (healthy, unhealthy, deactivated), the URL Cognigy\n"
        "delivers to (a fallback after a failover), the last probe (age and reason), TLS,\n"
        "certificate days left, consecutive failed watches. `cogwh watch-now` runs a watch at once.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print one object per endpoint (a JSON array)")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def every_health(access: StackAccess) -> Iterator[EndpointHealth]:
    """Every endpoint's health, every page read."""
    cursor: str | None = None
    while True:
        page = library_ops.health(access, limit=PAGE, cursor=cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def run(args: argparse.Namespace, *, clock: Callable[[], datetime] = utcnow) -> int:
    def body() -> int:
        items = list(every_health(ops.stack_access(ops.target(args))))
        if args.json:
            print(json.dumps([item.model_dump(mode="json", by_alias=True) for item in items], indent=2))
        else:
            print(health_table(items, now=clock()) if items else "no endpoints recorded")
        return ops.EXIT_OK

    return guarded("health", body)


def age(delta: timedelta) -> str:
    """``42s``, ``5m``, ``3h``, ``2d`` (the largest whole unit); ``now`` for a time not yet past (a
    clock ahead of this one)."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "now"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _state(item: EndpointHealth) -> str:
    state = HealthState(item.state).value
    return state if item.watched else f"{state} (not watched: {item.status})"


def _last_probe(item: EndpointHealth, now: datetime) -> str:
    probed = item.last_probe_at
    if probed is None:
        return "never"
    if probed.tzinfo is None:  # a record written without an offset: the store writes UTC
        probed = probed.replace(tzinfo=UTC)
    return f"{age(now - probed)} ago, {item.last_probe_reason or '-'}"


def _cert(days: int | None) -> str:
    if days is None:
        return "-"
    return "expired" if days < 0 else f"{days} days"


def health_table(items: list[EndpointHealth], *, now: datetime) -> str:
    """The table, then the count of each state."""
    rows = [
        [
            item.name,
            _state(item),
            (item.current_url or "-") + (" [failed over]" if item.failed_over else ""),
            _last_probe(item, now),
            item.tls_version or "-",
            _cert(item.cert_days_left),
            str(item.consecutive_failures),
        ]
        for item in items
    ]
    counts = {state: 0 for state in HealthState}
    for item in items:
        counts[HealthState(item.state)] += 1
    tally = ", ".join(f"{state.value} {count}" for state, count in counts.items())
    headers = ["NAME", "STATE", "CURRENT URL", "LAST PROBE", "TLS", "CERT", "FAILURES"]
    return ops.table(rows, headers) + f"\n{len(items)} endpoint(s): {tally}"
