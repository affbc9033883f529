"""`cogwh sign`: headers and a curl command for a signed test delivery; clear errors; the secret is never
printed. (That its output is a delivery the receiver accepts is tested through the local gateway.)"""

from __future__ import annotations

import io
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cognigy_webhooks.signing import verify_cognigy_signature, verify_standard_webhook
from cogwh.cli import main

SECRET = "sign-command-secret-" + "s" * 30
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sign", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def headers_of(out: str) -> dict[str, str]:
    block = out.split("\n\n", 1)[0]
    return dict(line.split(": ", 1) for line in block.splitlines())


def test_cognigy_scheme_prints_a_valid_signature_and_a_curl_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = tmp_path / "delivery.json"
    body.write_bytes(b'{"sessionId":"s-1","text":"hi"}')
    monkeypatch.setenv("SIGNING_SECRET", SECRET)
    code, out, err = run(
        capsys, "--secret-env", "SIGNING_SECRET", "--url", "http://127.0.0.1:9/deliveries/orders", str(body)
    )
    assert (code, err) == (0, "")
    headers = headers_of(out)
    assert headers["Content-Type"] == "application/json"
    assert verify_cognigy_signature(body.read_bytes(), headers["X-Cognigy-Signature"], [SECRET]).ok
    curl = shlex.split(out.strip().splitlines()[-1])
    assert curl[:5] == ["curl", "-sS", "-X", "POST", "http://127.0.0.1:9/deliveries/orders"]
    assert curl[-2:] == ["--data-binary", f"@{body}"]
    assert SECRET not in out


def test_standard_scheme_custom_header_timestamp_and_xml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = tmp_path / "delivery.xml"
    body.write_bytes(b"<m><text>hi</text></m>")
    monkeypatch.setenv("WH", WHSEC)
    code, out, _ = run(
        capsys, "--secret-env", "WH", "--scheme", "standard", "--timestamp", "1700000000", str(body)
    )
    assert code == 0
    headers = headers_of(out)
    assert headers["Content-Type"] == "application/xml"
    assert headers["webhook-timestamp"] == "1700000000"
    pairs = [(k, v) for k, v in headers.items()]
    assert verify_standard_webhook(body.read_bytes(), pairs, [WHSEC], now=1_700_000_000).ok
    assert "pass --url" in out  # no URL given: the curl line has a placeholder and a hint
    monkeypatch.setenv("S", SECRET)
    code, out, _ = run(capsys, "--secret-env", "S", "--header", "X-My-Sig", str(body))
    assert "X-My-Sig" in headers_of(out)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["--secret-env", "UNSET_VAR_FOR_SIGN", "FILE"],
            {},
            "environment variable UNSET_VAR_FOR_SIGN is not set",
        ),
        (["--secret-env", "EMPTY", "FILE"], {"EMPTY": " "}, "environment variable EMPTY is empty"),
        (["--secret-env", "S", "missing.json"], {"S": SECRET}, "cannot read missing.json: no such file"),
        (["--secret-env", "S", "DIR"], {"S": SECRET}, "it is a directory"),
        (
            ["--secret-env", "S", "--header", "bad header", "FILE"],
            {"S": SECRET},
            "is not a valid header name",
        ),
        (
            ["--secret-env", "S", "--timestamp", "-5", "FILE"],
            {"S": SECRET},
            "--timestamp must be unix seconds",
        ),
        (["--secret-env", "S", "--scheme", "standard", "FILE"], {"S": "whsec_" + "!" * 40}, "cannot sign"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_status_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    file = tmp_path / "body.json"
    file.write_text("{}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UNSET_VAR_FOR_SIGN", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    argv = [str(file) if a == "FILE" else str(tmp_path) if a == "DIR" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    for value in env.values():
        if value.strip() and len(value) > 8:
            assert value not in err


def test_stdin_and_the_installed_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S", SECRET)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"a":1}')))
    assert main(["sign", "--secret-env", "S", "-"]) == 0
    script = Path(sys.executable).parent / "cogwh"
    out = subprocess.run(
        [str(script), "sign", "--secret-env", "S", "-"], input=b'{"a":1}', capture_output=True, check=True
    ).stdout.decode()
    headers = headers_of(out)
    assert verify_cognigy_signature(b'{"a":1}', headers["X-Cognigy-Signature"], [SECRET]).ok
    assert "--data-binary @-" in out
