"""Swagger UI at /docs renders in a real browser with no internet: headless Chromium (Debian's
``chromium`` package, which .ci/run installs) loads /docs from the local gateway in front of the real
template's api function, every host but 127.0.0.1 unresolvable, and every operation of /openapi.json
must be listed in the rendered DOM (method and path). A screenshot is saved under the test's temporary
folder. To refresh the README's copy (docs/images/management-api-docs.png), run:

    COGWH_UPDATE_SCREENSHOT=1 .venv/bin/pytest -q -p no:randomly tests/integration/test_docs_browser.py

The test fails (never skips) when Chromium is missing. ``COGWH_CHROMIUM`` names another binary."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cogwh.gateway import ServedGateway, serve_gateway
from cogwh.localstack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
README_IMAGE = ROOT / "docs" / "images" / "management-api-docs.png"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
#: one opblock of Swagger UI's DOM: <div class="opblock opblock-get ..."> ... data-path="/x"
OPBLOCK = re.compile(r'class="opblock opblock-([a-z]+)\b.*?data-path="([^"]*)"', re.DOTALL)


@pytest.fixture(scope="module")
def browser() -> str:
    """The Chromium binary; the test fails (never skips) without one, before any stack starts."""
    named = os.environ.get("COGWH_CHROMIUM")
    found = shutil.which(named) if named else shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            "headless Chromium is needed for the Swagger UI test and was not found: .ci/run installs "
            "Debian's chromium package (apt-get install -y chromium); COGWH_CHROMIUM names another binary"
        )
    return found


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ServedGateway, list[str]]]:
    paths: list[str] = []  # every path the api function was asked for, in order
    parameters = {"CognigyApiKeySecretArn": "cognigy-webhooks/docs/api-key"}  # never read here
    with LocalStack(ROOT, parameters=parameters) as stack, serve_gateway(stack) as gateway:
        assert gateway.gateway is not None

        def recording(logical_id: str, event: dict[str, Any]) -> Any:
            paths.append(str(event["path"]))
            return stack.invoke(logical_id, event)

        gateway.gateway._invoke = recording
        yield gateway, paths


def render(browser: str, url: str, tmp_path: Path) -> tuple[str, Path]:
    """Chromium's DOM of ``url`` once its scripts ran, and a screenshot, in one headless run."""
    shot = tmp_path / "docs.png"
    command = [
        browser,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no internet: only the stack answers
        "--window-size=1280,1080",
        "--virtual-time-budget=15000",  # virtual time: the page's timers run ahead, not the test's clock
        f"--screenshot={shot}",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, shot


def test_swagger_ui_lists_every_operation_with_no_internet(
    browser: str, served: tuple[ServedGateway, list[str]], tmp_path: Path
) -> None:
    gateway, paths = served
    base = gateway.api_url("ManagementApi")
    document = httpx.get(f"{base}/openapi.json", timeout=30).json()
    operations = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert len(operations) >= 10  # the routes at least
    paths.clear()

    dom, shot = render(browser, f"{base}/docs", tmp_path)

    listed = set(OPBLOCK.findall(dom))
    assert operations <= listed, sorted(operations - listed)
    assert "Failed to load API definition" not in dom
    assert document["info"]["title"] in dom
    # Swagger UI's own files came from the stack (the api function), nothing from elsewhere
    assert "/docs" in paths
    assert any(p.startswith("/docs/") and p.endswith(".js") for p in paths), paths
    assert any(p.startswith("/docs/") and p.endswith(".css") for p in paths), paths
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("COGWH_UPDATE_SCREENSHOT") == "1":
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_IMAGE)
