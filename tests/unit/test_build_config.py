"""What `sam build`, `sam validate` and `sam deploy` read, checked without the SAM CLI.

- samconfig.toml: the [default] and [prod] environments, their parameter overrides against
  template.yaml's own Parameters (names, required ones, allowed values), and the capabilities the
  template really needs.
- shared/Makefile (the layer's build): it must work on a machine without Python 3.13. Run for real
  with a stand-in for pip (the real one downloads wheels), with and without a runtime interpreter.
- events/: a sample event for every function, each loaded by a test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import loads

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("default", "prod")


def template() -> dict[str, Any]:
    return dict(loads((ROOT / "template.yaml").read_text(encoding="utf-8"), str(ROOT / "template.yaml")))


def samconfig() -> dict[str, Any]:
    with (ROOT / "samconfig.toml").open("rb") as f:
        return tomllib.load(f)


def overrides(env: str) -> dict[str, str]:
    """parameter_overrides as SAM reads them: a list of Key=Value (or one string), values maybe quoted."""
    raw = samconfig()[env]["deploy"]["parameters"]["parameter_overrides"]
    items = raw if isinstance(raw, list) else re.findall(r'\S+=(?:"[^"]*"|\S+)', raw)
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        assert sep, f"{item!r} is not Key=Value"
        assert key not in parsed, f"{key} given twice"
        parsed[key] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return parsed


# --- samconfig.toml --------------------------------------------------------------------------------


def test_samconfig_has_the_default_and_prod_environments() -> None:
    config = samconfig()

    assert config["version"] == 0.1
    for env in ENVIRONMENTS:
        assert {"global", "build", "validate", "deploy"} <= set(config[env]), env
        assert config[env]["validate"]["parameters"]["lint"] is True
        assert config[env]["build"]["parameters"] == {"cached": True, "parallel": True}
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["resolve_s3"] is True
        assert config[env]["global"]["parameters"]["region"]
    names = {config[env]["global"]["parameters"]["stack_name"] for env in ENVIRONMENTS}
    prefixes = {config[env]["deploy"]["parameters"]["s3_prefix"] for env in ENVIRONMENTS}
    assert len(names) == len(prefixes) == 2  # prod never deploys over the default stack
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert "prod" in config["prod"]["global"]["parameters"]["stack_name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overrides_name_only_template_parameters_and_give_every_required_one(env: str) -> None:
    declared = template()["Parameters"]
    given = overrides(env)

    assert set(given) <= set(declared), f"not in template.yaml: {sorted(set(given) - set(declared))}"
    required = {name for name, spec in declared.items() if "Default" not in spec}
    assert required <= set(given), f"required but not given: {sorted(required - set(given))}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_override_values_satisfy_the_templates_constraints(env: str) -> None:
    declared = template()["Parameters"]

    for name, value in overrides(env).items():
        spec = declared[name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], name
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), name
        if spec.get("Type") == "Number":
            number = float(value)
            assert float(spec.get("MinValue", number)) <= number <= float(spec.get("MaxValue", number)), name
    assert overrides(env).get("AllowPrivateNetworks", "false") == "false"  # on AWS the SSRF guard stays on


def _capabilities_needed(tpl: dict[str, Any]) -> set[str]:
    needed: set[str] = set()
    transforms = tpl.get("Transform", [])
    transforms = [transforms] if isinstance(transforms, str) else list(transforms)
    for resource in tpl["Resources"].values():
        kind, props = resource["Type"], resource.get("Properties") or {}
        if kind.startswith("AWS::IAM::"):
            needed.add("CAPABILITY_IAM")
            if any(k in props for k in ("RoleName", "UserName", "GroupName", "ManagedPolicyName")):
                needed.add("CAPABILITY_NAMED_IAM")
        if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine") and "Role" not in props:
            needed.add("CAPABILITY_IAM")  # SAM makes the execution role
        if kind == "AWS::Serverless::Application":
            needed.add("CAPABILITY_AUTO_EXPAND")
    if any(t != "AWS::Serverless-2016-10-31" for t in transforms):
        needed.add("CAPABILITY_AUTO_EXPAND")
    return needed


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_capabilities_are_what_the_template_needs(env: str) -> None:
    raw = samconfig()[env]["deploy"]["parameters"]["capabilities"]
    given = set(raw.split() if isinstance(raw, str) else raw)
    known = {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"}

    assert given <= known
    assert given == _capabilities_needed(template())  # all it needs, nothing it does not


# --- shared/Makefile: the layer builds without Python 3.13 ----------------------------------------------

MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")

FAKE_PIP = r"""
import json, os, sys
args = sys.argv[1:]
assert args[:2] == ["-m", "pip"], args
if args[2:] == ["--version"]:
    print("pip 99.0 (stand-in)")
    sys.exit(0)
with open(os.environ["FAKE_PIP_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
target = args[args.index("--target") + 1]
os.makedirs(os.path.join(target, "some_dependency", "__pycache__"), exist_ok=True)
with open(os.path.join(target, "some_dependency", "__init__.py"), "w") as f:
    f.write("VALUE = 1\n")
with open(os.path.join(target, "some_dependency", "__pycache__", "stale.cpython-311.pyc"), "wb") as f:
    f.write(b"stale")
"""


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def bare_path(tmp_path: Path) -> Path:
    """A bin directory with the tools the recipe uses and no python3.13 at all."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "mkdir", "cp", "rm", "find"):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    fake = tmp_path / "fake_pip.py"
    fake.write_text(FAKE_PIP, encoding="utf-8")
    _script(bin_dir / "python3", f'exec "{sys.executable}" "{fake}" "$@"\n')
    return bin_dir


def _make(bin_dir: Path, artifacts: Path, *args: str, log: Path) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    env = {"PATH": str(bin_dir), "FAKE_PIP_LOG": str(log), "HOME": str(artifacts.parent)}
    return subprocess.run(
        [MAKE, "-C", str(ROOT / "shared"), "build-LibraryLayer", f"ARTIFACTS_DIR={artifacts}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@needs_make
def test_layer_builds_without_python_313_and_says_it_ships_sources(bare_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "pip.log"
    artifacts = tmp_path / "artifacts"

    done = _make(bare_path, artifacts, log=log)

    assert done.returncode == 0, done.stderr
    assert "python3.13" not in done.stderr
    assert "ships sources only" in done.stdout
    [pip_args] = [json.loads(line) for line in log.read_text().splitlines()]
    assert pip_args[2] == "install"
    for flag in ("--only-binary=:all:", "--no-compile"):
        assert flag in pip_args
    for option, value in (
        ("--platform", "manylinux2014_aarch64"),
        ("--python-version", "3.13"),
        ("--implementation", "cp"),
        ("--target", str(artifacts / "python")),
    ):
        assert pip_args[pip_args.index(option) + 1] == value
    layer = artifacts / "python"
    assert (layer / "cognigy_webhooks" / "__init__.py").is_file()
    assert (layer / "cognigy_webhooks" / "loopguard.py").is_file()
    assert not list(layer.rglob("__pycache__"))  # no bytecode of the build machine's Python
    assert not list(layer.rglob("*.pyc"))


@needs_make
def test_dry_run_prints_a_working_command_line_without_python_313(bare_path: Path, tmp_path: Path) -> None:
    done = _make(bare_path, tmp_path / "artifacts", "-n", log=tmp_path / "pip.log")

    assert done.returncode == 0, done.stderr
    assert re.search(r"^python3 -m pip install .*--target", done.stdout, re.MULTILINE)
    assert "python3.13 -m" not in done.stdout


@needs_make
@pytest.mark.parametrize(
    "impostor",
    [
        "echo 'pyenv: python3.13: command not found' >&2; exit 127\n",  # a pyenv shim, version not active
        f'exec "{sys.executable}" "$@"\n',  # named python3.13, really another version
    ],
    ids=["pyenv-shim", "other-version"],
)
def test_a_python_313_that_does_not_run_3_13_is_not_used(
    bare_path: Path, tmp_path: Path, impostor: str
) -> None:
    _script(bare_path / "python3.13", impostor)

    done = _make(bare_path, tmp_path / "artifacts", log=tmp_path / "pip.log")

    assert done.returncode == 0, done.stderr
    assert "ships sources only" in done.stdout
    assert not list((tmp_path / "artifacts").rglob("*.pyc"))


@needs_make
def test_the_runtime_python_compiles_unchecked_hash_bytecode(bare_path: Path, tmp_path: Path) -> None:
    # Stand in for python3.13 with this interpreter: what matters is the recipe's compile step.
    runtime = _script(tmp_path / "runtime-python", f'exec "{sys.executable}" "$@"\n')
    artifacts = tmp_path / "artifacts"

    done = _make(bare_path, artifacts, f"RUNTIME_PYTHON={runtime}", log=tmp_path / "pip.log")

    assert done.returncode == 0, done.stderr
    compiled = list((artifacts / "python" / "cognigy_webhooks").rglob("*.pyc"))
    assert compiled
    for pyc in compiled:
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, pyc  # hash-based, unchecked: valid whatever the file times
    assert not list((artifacts / "python").rglob("stale.cpython-311.pyc"))


@needs_make
def test_no_python_with_pip_is_a_clear_error(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "mkdir", "cp", "rm", "find"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)

    done = _make(bin_dir, tmp_path / "artifacts", log=tmp_path / "pip.log")

    assert done.returncode != 0
    assert "PIP_PYTHON" in done.stderr


# --- events/: one sample per function, each loaded by a test ---------------------------------------------


def test_every_function_has_a_sample_event_that_a_test_loads() -> None:
    functions = {
        logical_id: Path(resource["Properties"]["CodeUri"]).name
        for logical_id, resource in template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    events = sorted(p.name for p in (ROOT / "events").glob("*.json"))
    tests = [
        p.read_text(encoding="utf-8")
        for p in (ROOT / "tests").rglob("*.py")
        if p.resolve() != Path(__file__).resolve()
    ]

    for logical_id, folder in functions.items():
        samples = [name for name in events if name == f"{folder}.json" or name.startswith(f"{folder}_")]
        assert samples, f"{logical_id}: no events/{folder}.json or events/{folder}_*.json"
    for name in events:
        json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))
        assert any(name in text for text in tests), f"events/{name}: no test loads it"
