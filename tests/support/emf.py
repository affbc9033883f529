"""The EMF documents Powertools prints (one JSON object per line starting ``{"_aws"``), read back."""

from __future__ import annotations

import json
from typing import Any


def documents(out: str) -> list[dict[str, Any]]:
    """Every EMF document in captured stdout, parsed."""
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def metric_names(doc: dict[str, Any]) -> list[str]:
    return [m["Name"] for directive in doc["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]]


def dimensions(doc: dict[str, Any]) -> dict[str, str]:
    """The document's dimension names and values (every dimension set merged)."""
    names = {
        n for directive in doc["_aws"]["CloudWatchMetrics"] for dims in directive["Dimensions"] for n in dims
    }
    return {name: doc[name] for name in names}


def unit_of(doc: dict[str, Any], name: str) -> str:
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        for metric in directive["Metrics"]:
            if metric["Name"] == name:
                return str(metric["Unit"])
    raise KeyError(name)


def values(docs: list[dict[str, Any]], name: str, **dims: str) -> list[float]:
    """Every value of metric ``name`` whose document carries at least the dimensions ``dims``."""
    found: list[float] = []
    for doc in docs:
        if name not in metric_names(doc):
            continue
        have = dimensions(doc)
        if any(have.get(k) != v for k, v in dims.items()):
            continue
        value = doc[name]
        found.extend(value if isinstance(value, list) else [value])
    return found


def total(docs: list[dict[str, Any]], name: str, **dims: str) -> float:
    return sum(values(docs, name, **dims))
