"""EMF documents rendered from templates: one line for a set of counts known in advance.

A :class:`CountsDocument` counts one of each of its metrics: plain ones (dimensions ``service`` and,
when the stack's name is known, ``stack``) and at most one dimensional metric with its own dimension
values (``Deliveries`` with ``Status`` = ``202``...). It is one CloudWatch Embedded Metric Format
document with one metric directive per dimension set, the shape CloudWatch reads as the same data
points as the two documents Powertools would print (the plain set, then the dimensional metric alone
with ``service``, ``stack`` and its own dimensions); the values are ``[1.0]``, as Powertools writes
them.

Everything in the line but its timestamp is known when the document is made, so it is rendered once
per ``service`` and ``stack`` and then only its ``Timestamp`` (epoch milliseconds) is put in. Names,
units and dimensions come from the registry (:mod:`cognigy_webhooks.metric_names`; the receiver's
rejection family by its pattern), checked when the document is made: a name or a dimension outside
it is a ``ValueError`` then, never at a flush.

Who prints it, when, and whether at all (``POWERTOOLS_METRICS_DISABLED``, a silenced flush) is
:mod:`cognigy_webhooks.observability`'s (``metrics.add_document``, then the flush). Standard library
only (the receiver builds its documents at cold start).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping

from cognigy_webhooks.metric_names import (
    METRICS_NAMESPACE,
    REJECTION_SPEC,
    MetricName,
    dimension_values,
    is_rejection_metric,
    metric_spec,
)

__all__ = ["CountsDocument"]

_TIMESTAMP = 0  # a placeholder the template is split at (no other 0 stands alone as a JSON value)
_MAX_RENDERINGS = 64  # (service, stack) pairs: one per process in practice


class CountsDocument:
    """One of each ``names`` (plain metrics) and of ``dimensional`` (a metric of the registry with
    its own dimensions, and their values) as one EMF document. Immutable; thread-safe."""

    __slots__ = ("_dimensional", "_lock", "_plain", "_renderings", "names")

    def __init__(
        self,
        names: Iterable[MetricName | str],
        *,
        dimensional: tuple[MetricName | str, Mapping[str, object]] | None = None,
    ) -> None:
        plain: list[tuple[str, str]] = []
        for name in names:
            text, spec = (str(name), REJECTION_SPEC) if is_rejection_metric(str(name)) else metric_spec(name)
            if spec.dimensions:
                raise ValueError(
                    f"{text} takes the dimensions {list(spec.dimensions)}: give it as dimensional"
                )
            if any(str(text) == seen for seen, _ in plain):
                raise ValueError(f"{text} is counted once per document")
            plain.append((str(text), spec.unit))
        self._plain = tuple(plain)
        self._dimensional: tuple[str, str, tuple[tuple[str, str], ...]] | None = None
        if dimensional is not None:
            member, spec = metric_spec(dimensional[0])
            if not spec.dimensions:
                raise ValueError(f"{member} has no dimensions of its own: give it with the plain names")
            if any(str(member) == seen for seen, _ in plain):
                raise ValueError(f"{member} is counted once per document")
            values = dimension_values(member, spec, dimensional[1])
            self._dimensional = (str(member), spec.unit, tuple(values.items()))
        if not plain and self._dimensional is None:
            raise ValueError("a counts document counts at least one metric")
        self.names = tuple(n for n, _ in plain) + ((self._dimensional[0],) if self._dimensional else ())
        self._renderings: dict[tuple[str, str], tuple[str, str]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CountsDocument({', '.join(self.names)})"

    def render(self, *, service: str, stack: str, timestamp_ms: int) -> str:
        """The document's line: ``service`` (empty: none), ``stack`` (empty: none), at ``timestamp_ms``."""
        parts = self._renderings.get((service, stack))
        if parts is None:
            parts = self._template(service, stack)
            with self._lock:
                if len(self._renderings) < _MAX_RENDERINGS:
                    self._renderings[service, stack] = parts
        return f"{parts[0]}{int(timestamp_ms)}{parts[1]}"

    def _template(self, service: str, stack: str) -> tuple[str, str]:
        common: dict[str, str] = {}
        if service:
            common["service"] = service
        if stack:
            common["stack"] = stack
        directives: list[dict[str, object]] = []
        values: dict[str, object] = dict(common)
        if self._plain:
            directives.append(
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [list(common)],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit in self._plain],
                }
            )
        if self._dimensional is not None:
            name, unit, own = self._dimensional
            values.update(own)
            directives.append(
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [[*common, *(key for key, _ in own)]],
                    "Metrics": [{"Name": name, "Unit": unit}],
                }
            )
        values.update({name: [1.0] for name in self.names})
        document = {"_aws": {"Timestamp": _TIMESTAMP, "CloudWatchMetrics": directives}, **values}
        text = json.dumps(document, separators=(",", ":"))
        head = '{"_aws":{"Timestamp":0,'
        assert text.startswith(head)
        return head[: -len("0,")], text[len(head) - 1 :]
