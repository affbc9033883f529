"""Helpers for the local stack's tests: fixture paths, throwaway projects, history queries."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"

HANDLER = textwrap.dedent(
    """
    def lambda_handler(event, context):
        return {"ok": True}
    """
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_project(root: Path, template: str, files: dict[str, str] | None = None) -> Path:
    """A throwaway project: template.yaml plus the given files (handlers default to HANDLER)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "template.yaml").write_text(textwrap.dedent(template), encoding="utf-8")
    for relative, text in (files or {}).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def events_of(history: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in history if event["type"] == kind]


def output_of(described: dict[str, Any]) -> Any:
    return json.loads(described["output"])
