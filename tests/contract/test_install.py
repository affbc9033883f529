"""The contract tier's install step: an npm that cannot reach its registry fails the tests, loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.conftest import CLIENT_VERSION, install_official_client, node_env


def test_an_unreachable_registry_fails_never_skips(tmp_path: Path) -> None:
    # Given a registry nobody answers at (a closed local port) and no retries
    env = node_env(
        npm_config_registry="http://127.0.0.1:9/",
        npm_config_fetch_retries="0",
        npm_config_cache=str(tmp_path / "npm-cache"),
        npm_config_offline="false",
    )

    # Then the install fails the test with the reason (pytest.fail, not pytest.skip)
    with pytest.raises(pytest.fail.Exception, match=r"npm could not install @cognigy/rest-api-client@"):
        install_official_client(tmp_path / "prefix", env=env)


def test_an_installed_client_is_not_installed_again(official_client: Path) -> None:
    # Given the session's install, then a second call finds it (npm is not run: no env could reach it)
    again = install_official_client(official_client.parents[2], env={"PATH": "/nonexistent"})

    assert again == official_client
    assert f'"version": "{CLIENT_VERSION}"' in (official_client / "package.json").read_text()
