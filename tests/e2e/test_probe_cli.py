"""`cogwh probe` end to end: the console script against real TLS servers on 127.0.0.1, its exit
status (0 passed, 1 failed, 2 bad usage), the table and the JSON."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cogwh.certs import CertFiles, LocalCA
from cogwh.cli import main
from tests.support.tls_servers import LocalServer, answer, server_context

COGWH = Path(sys.executable).with_name("cogwh")


@pytest.fixture(scope="module")
def leaf(local_ca: LocalCA) -> CertFiles:
    return local_ca.issue("localhost", "127.0.0.1")


@pytest.fixture
def tls13(leaf: CertFiles) -> Iterator[LocalServer]:
    with LocalServer(answer(200), server_context(leaf)) as server:
        yield server


@pytest.fixture
def tls11(leaf: CertFiles) -> Iterator[LocalServer]:
    context = server_context(leaf, minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)
    with LocalServer(answer(200), context) as server:
        yield server


def cogwh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COGWH), *args], capture_output=True, text=True, timeout=60, check=False)


def test_tls13_server_prints_tlsv13_and_exits_0(tls13: LocalServer, local_ca: LocalCA) -> None:
    done = cogwh("probe", tls13.url(), "--allow-private-networks", "--ca-bundle", str(local_ca.ca_file))
    assert done.returncode == 0, done.stderr
    first, *rows = done.stdout.splitlines()
    assert first == f"{tls13.url()}  PASSED (ok)"
    assert any(row.split()[:2] == ["tls", "TLSv1.3"] for row in rows)
    assert any(row.split()[:3] == ["reachable", "yes", "(HTTP"] for row in rows)
    assert any(row.split()[0] == "timings" for row in rows)
    assert done.stderr == ""


def test_tls11_only_server_exits_1_with_tls_version_unsupported(
    tls11: LocalServer, local_ca: LocalCA
) -> None:
    done = cogwh(
        "probe", tls11.url(), "--allow-private-networks", "--ca-bundle", str(local_ca.ca_file), "--json"
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["reason"] == "tls_version_unsupported"
    assert report["passed"] is False
    assert report["tlsVersion"] == "TLSv1.1"


def test_json_has_the_promised_top_level_fields(
    tls13: LocalServer, local_ca: LocalCA, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["probe", tls13.url(), "--json", "--allow-private-networks", "--ca-bundle", str(local_ca.ca_file)]
    )
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert {
        "passed",
        "reachable",
        "reason",
        "tlsVersion",
        "certDaysLeft",
        "statusCode",
        "timingsMs",
    } <= set(report)
    assert (report["passed"], report["reachable"], report["reason"], report["statusCode"]) == (
        True,
        True,
        "ok",
        200,
    )
    assert report["tlsVersion"] == "TLSv1.3"
    assert report["certDaysLeft"] > 0
    assert set(report["timingsMs"]) == {"dns", "connect", "tls", "firstByte", "total"}


def test_metadata_address_exits_1_blocked_without_any_connection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"the probe tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)

    status = main(["probe", "https://169.254.169.254/", "--json"])

    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert report["reason"] == "blocked_address"
    assert report["reachable"] is False
    assert attempts == []


def test_metadata_address_exit_status_from_the_console_script() -> None:
    done = cogwh("probe", "https://169.254.169.254/")
    assert done.returncode == 1
    assert "FAILED (blocked_address" in done.stdout


def run_main(*args: str) -> int:
    """The CLI in-process (argparse's usage errors exit with status 2)."""
    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


def test_loopback_is_blocked_unless_allowed(
    tls13: LocalServer, local_ca: LocalCA, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main("probe", tls13.url(), "--ca-bundle", str(local_ca.ca_file)) == 1
    assert "FAILED (blocked_address: loopback)" in capsys.readouterr().out
    assert tls13.connections == 0


def test_certificate_problems_are_shown_with_their_detail(
    tls13: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main("probe", tls13.url(), "--allow-private-networks") == 1  # public roots: our CA is unknown
    out = capsys.readouterr().out
    assert "FAILED (certificate_invalid: untrusted)" in out
    assert "cert expires" in out  # the facts of the refused certificate are still shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["probe", "http://hooks.example/"], "url: must use the https scheme"),
        (["probe", "https://user:hunter2pw@hooks.example/"], "url: must not carry user-info"),
        (["probe", "https://0177.0.0.1/"], "url: is not a valid URL"),
        (["probe", "https://hooks.example/", "--timeout-ms", "soon"], "argument --timeout-ms"),
        (["probe", "https://hooks.example/", "--timeout-ms", "0"], "argument --timeout-ms"),
        (["probe", "https://hooks.example/", "--cert-warning-days", "-1"], "argument --cert-warning-days"),
        (["probe", "https://hooks.example/", "--ca-bundle", "/nonexistent/ca.pem"], "argument --ca-bundle"),
        (
            ["probe", "https://hooks.example/", "--ca-bundle", __file__],
            "ca_bundle: is not a readable PEM CA bundle",
        ),
        (["probe"], "the following arguments are required: URL"),
    ],
)
def test_bad_usage_exits_2_with_a_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(*args) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "hunter2pw" not in captured.err
    assert captured.out == ""


def test_bad_usage_from_the_console_script_has_no_traceback() -> None:
    done = cogwh("probe", "http://hooks.example/")
    assert done.returncode == 2
    assert done.stderr == "cogwh probe: error: url: must use the https scheme\n"
