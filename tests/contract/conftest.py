"""The contract tier's fixtures: the official Cognigy client, installed at test time.

``@cognigy/rest-api-client`` is proprietary: it is installed with npm into ``<repo>/.cache/cognigy-client``
(ignored by git) when that folder does not already hold the pinned version, and read there; nothing of
it is copied into the repository. When npm cannot install it the fixture FAILS with the reason: a
contract test that silently skips would prove nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, FormatChecker

from cogwh.sim_endpoints import CHANNELS

CLIENT_PACKAGE = "@cognigy/rest-api-client"
CLIENT_VERSION = "0.19.0"
REPO = Path(__file__).resolve().parents[2]
PREFIX = REPO / ".cache" / "cognigy-client"
PACKAGE_DIR = PREFIX / "node_modules" / "@cognigy" / "rest-api-client"
HERE = Path(__file__).resolve().parent
NPM_TIMEOUT_S = 600

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _installed_version(package_dir: Path = PACKAGE_DIR) -> str | None:
    try:
        return str(json.loads((package_dir / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def node_env(**extra: str) -> dict[str, str]:
    """The environment for node: no proxy for the local simulator, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1"
    env.update(extra)
    return env


def install_official_client(prefix: Path = PREFIX, env: dict[str, str] | None = None) -> Path:
    """Install the pinned client under ``prefix`` unless it is there already; its folder.
    Fails the test (never skips) when node/npm are missing or npm cannot install it."""
    package_dir = prefix / "node_modules" / "@cognigy" / "rest-api-client"
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail(
            "the contract tests need Node.js and npm (.ci/run installs them: apt-get install nodejs npm)"
        )
    if _installed_version(package_dir) == CLIENT_VERSION:
        return package_dir
    prefix.mkdir(parents=True, exist_ok=True)
    # `make test` runs on two workers (pytest-xdist): one installs, the other waits for it
    with (prefix / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(package_dir) == CLIENT_VERSION:
            return package_dir
        return _npm_install(prefix, package_dir, env)


def _npm_install(prefix: Path, package_dir: Path, env: dict[str, str] | None) -> Path:
    spec = f"{CLIENT_PACKAGE}@{CLIENT_VERSION}"
    try:
        done = subprocess.run(
            ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix), spec],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm did not install {spec} within {NPM_TIMEOUT_S} s: is its registry reachable?")
    if done.returncode != 0 or _installed_version(package_dir) != CLIENT_VERSION:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        pytest.fail(
            f"npm could not install {spec} (exit {done.returncode}); is its registry reachable?\n{tail}"
        )
    return package_dir


@pytest.fixture(scope="session")
def official_client() -> Path:
    """The installed package's folder (installed once; skipped when the pinned version is there)."""
    return install_official_client()


def _format_checker() -> FormatChecker:
    """The formats the shipped schema names (Cognigy's own ones approximated where unpublished)."""
    checker = FormatChecker()

    def check(name: str) -> Any:
        return checker.checks(name)

    @check("uuid")
    def _uuid(value: object) -> bool:
        return not isinstance(value, str) or bool(_UUID.fullmatch(value))

    @check("uri")
    def _uri(value: object) -> bool:
        return not isinstance(value, str) or bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+", value))

    @check("mongo-id")
    def _mongo_id(value: object) -> bool:
        return not isinstance(value, str) or bool(re.fullmatch(r"[0-9a-f]{24}", value))

    @check("alphanum-64")
    def _alphanum(value: object) -> bool:
        return not isinstance(value, str) or bool(re.fullmatch(r"[A-Za-z0-9]{64}", value))

    @check("endpoint-channel")
    def _channel(value: object) -> bool:
        return not isinstance(value, str) or value in CHANNELS

    @check("resource-name")
    def _name(value: object) -> bool:  # the real rule is not published: non-empty
        return not isinstance(value, str) or bool(value.strip())

    return checker


#: What the create and update types leave out of a body (``Omit<IEndpoint_2_0, keyof IEntityMeta |
#: "URLToken">`` in ``types/index.d.ts``), although ``endpointDataSchema`` lists ``URLToken`` and
#: ``endpointSchema`` lists all of them: Cognigy sets these, a client never sends them.
NOT_SENT = frozenset({"URLToken", "_id", "createdAt", "createdBy", "lastChanged", "lastChangedBy"})


class EndpointSchemas:
    """Validators for the package's ``endpointDataSchema`` and ``endpointSchema``, and which one a body
    is held to (found in the installed package, ``build/shared/interfaces/resources/IEndpoint.js`` and
    ``types/index.d.ts``):

    - ``endpointDataSchema``: an endpoint's data fields, ``additionalProperties: false``, no
      ``required``, no ``minProperties``. It has no ``projectId``.
    - ``endpointSchema``: the stored endpoint, the data fields plus the entity meta (``_id``,
      ``createdAt``, ...) and ``projectReference``/``organisationReference``, ``additionalProperties:
      false`` and ``minProperties: 1``. It has no ``projectId`` either (the stored form is
      ``projectReference``).
    - A **create** body (``POST /v2.0/endpoints``, ``ICreateEndpointRestDataBody_2_0``) is
      ``IProjectScope`` (``projectId``, a ``TMongoId``: required) plus the endpoint's data. The package
      ships no runtime schema for the project scope, and both shipped schemas refuse ``projectId`` as
      an additional property, so the whole body fits neither: the official client itself sends
      ``projectId`` in the body (the REST layer takes the scope off before validating the data). A
      create body is therefore held to: ``projectId`` present and 24 hex, and the rest to
      ``endpointDataSchema``.
    - An **update** body (``PATCH /v2.0/endpoints/{id}``, ``IUpdateEndpointRestDataBody_2_0``) has no
      project scope (the id is in the path): it is held to ``endpointSchema`` (at least one field) and
      to ``endpointDataSchema`` (no entity meta).
    - Neither carries :data:`NOT_SENT` (the types omit them; the schemas alone would let ``URLToken``
      through).
    """

    def __init__(self, schemas: dict[str, Any]) -> None:
        checker = _format_checker()
        self.raw = schemas
        self.data = Draft7Validator(schemas["endpointDataSchema"], format_checker=checker)
        self.endpoint = Draft7Validator(schemas["endpointSchema"], format_checker=checker)

    @staticmethod
    def problems(validator: Draft7Validator, body: Any) -> list[str]:
        return sorted(
            f"{'/'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}"
            for e in validator.iter_errors(body)
        )

    @staticmethod
    def _not_sent(body: dict[str, Any]) -> list[str]:
        return [f"{key}: is Cognigy's to set, never sent" for key in sorted(NOT_SENT & body.keys())]

    def create_problems(self, body: dict[str, Any]) -> list[str]:
        """A create body: ``projectId`` (the REST layer's project scope, a mongo id) plus endpoint data
        held to ``endpointDataSchema``."""
        found: list[str] = []
        project = body.get("projectId")
        if not isinstance(project, str) or not re.fullmatch(r"[0-9a-f]{24}", project):
            found.append("projectId: is required (IProjectScope) and must be a 24-hex mongo id")
        data = {k: v for k, v in body.items() if k != "projectId"}
        return found + self._not_sent(data) + self.problems(self.data, data)

    def update_problems(self, body: dict[str, Any]) -> list[str]:
        """A PATCH body: held to ``endpointSchema`` and ``endpointDataSchema`` (no project scope)."""
        return sorted(
            {*self._not_sent(body), *self.problems(self.endpoint, body), *self.problems(self.data, body)}
        )


@pytest.fixture(scope="session")
def endpoint_schemas(official_client: Path) -> EndpointSchemas:
    """The shipped schemas, loaded by node from the installed package and dumped as JSON."""
    done = subprocess.run(
        ["node", str(HERE / "dump_schema.js"), str(official_client)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=node_env(),
    )
    if done.returncode != 0:
        pytest.fail(f"could not load the shipped endpoint schema: {done.stderr.strip()[-2000:]}")
    return EndpointSchemas(json.loads(done.stdout))
