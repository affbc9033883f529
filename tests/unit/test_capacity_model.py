"""The capacity model (docs/capacity/model.py) and the per-delivery arithmetic of the receive bench
(bench/support/receive_requests.py): known figures give known dollar amounts, a missing or wrong
input field is named with its file (exit 2, no traceback), the markers are enforced, ``--check``
catches a stale document and refuses placeholders, and the committed docs/CAPACITY.md is exactly
what its committed inputs give. Pure: files in a temporary directory, no AWS, no network."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


model = _load("capacity_model", ROOT / "docs" / "capacity" / "model.py")
requests = _load("bench_receive_requests", ROOT / "bench" / "support" / "receive_requests.py")
costs, inputs = sys.modules["capacity_costs"], sys.modules["capacity_inputs"]  # model.py's siblings

RECEIVE: dict[str, Any] = {
    "handler_ms": 10.0,
    "lambda_memory_mb": 1024,
    "dynamodb_writes_per_delivery": 3.0,
    "dynamodb_write_units_per_delivery": 5.0,
    "dynamodb_reads_per_delivery": 0.0,
    "dynamodb_read_units_per_delivery": 0.0,
    "eventbridge_puts_per_delivery": 1.0,
    "eventbridge_events_per_delivery": 1.0,
    "secrets_calls_per_delivery": 0.0,
    "log_bytes_per_delivery": 650.0,
    "cache_miss": {"dynamodb_read_units_per_delivery": 0.5, "secrets_calls_per_delivery": 2.0},
    "claim_item_bytes": 1000,
    "record_cache_seconds": 30.0,
    "secret_cache_seconds": 300,
}
RECONCILE: dict[str, Any] = {
    "n": 1000,
    "writes_per_endpoint": 2.0,
    "refused_writes_per_endpoint": 0.0,
    "write_units_per_endpoint": 4.0,
    "reads_per_endpoint": 1.0,
    "cognigy_calls_per_endpoint": 1.05,
    "transitions_per_endpoint": 5.0,
    "lambda_invocations_per_endpoint": 2.002,
    "lambda_ms_per_invocation": {"plan": 100, "probe": 50, "register": 100, "summarize": 100},
    "s3_requests_per_run": {"get": 2, "put": 2, "list": 0},
    "parent_history_events": 30,
    "reapply_writes_per_endpoint": 0.0,
    "reapply_transitions_per_endpoint": 1.0,
    "reapply_cognigy_calls_per_endpoint": 0.01,
}
WATCH: dict[str, Any] = {
    "n": 100,
    "watches": 1,
    "writes_per_endpoint": 1.0,
    "reads_per_endpoint": 1.0,
    "cognigy_calls": 0,
    "transitions_per_endpoint": 0.04,
    "children_per_endpoint": 1.0,
    "express_child_seconds_per_endpoint": 0.05,
    "lambda_invocations_per_endpoint": 2.0,
    "lambda_ms_per_invocation": {"probe": 10, "watch": 10, "watch_judge": 4},  # a step's share: not priced
    "s3_requests_per_watch": {"get": 1, "put": 1, "list": 1},
    "parent_history_events": 12,
}
#: prices of the made-up world (per unit), so that the figures below do not move with prices.json
PRICES = {
    "apigateway.rest_request": 0.000004,
    "dynamodb.write_request_unit": 0.000001,
    "lambda.arm64_gb_second": 0.00001,
    "stepfunctions.standard_transition": 0.00002,
    "stepfunctions.express_gb_second": 0.00001,
    "secretsmanager.secret_month": 0.5,
}
WORKLOADS = {
    "endpoints": 10_000,
    "deliveries_per_day": 1_000_000,
    "receiving_endpoints": 10_000,
    "month_days": 30,
}
ASSUMED = {"probe_network_ms": 150, "express_child_memory_mb": 64, "secrets_per_endpoint": 2}


class World:
    """A copy of the repository's inputs in a temporary root, with made-up benchmark results."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "bench" / "results").mkdir(parents=True)
        (root / "docs" / "capacity").mkdir(parents=True)
        shutil.copy(ROOT / "template.yaml", root / "template.yaml")
        shutil.copy(ROOT / "docs" / "CAPACITY.md", root / "docs" / "CAPACITY.md")
        prices = json.loads((ROOT / "docs" / "capacity" / "prices.json").read_text())
        for key, usd in PRICES.items():
            service, item = key.split(".")
            prices["prices"][service][item]["usd"] = usd
        assumptions = json.loads((ROOT / "docs" / "capacity" / "assumptions.json").read_text())
        for name, value in WORKLOADS.items():
            assumptions["workloads"][name]["value"] = value
        for name, value in ASSUMED.items():
            assumptions["assumed"][name]["value"] = value
        self.write("docs/capacity/prices.json", prices)
        self.write("docs/capacity/assumptions.json", assumptions)
        for name, figures in (("receive", RECEIVE), ("reconcile", RECONCILE), ("watch", WATCH)):
            self.write(f"bench/results/{name}.json", copy.deepcopy(figures))

    def write(self, relative: str, data: Any) -> None:
        (self.root / relative).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def read(self, relative: str) -> Any:
        return json.loads((self.root / relative).read_text(encoding="utf-8"))

    def edit(self, relative: str, **changes: Any) -> None:
        data = self.read(relative)
        data.update(changes)
        self.write(relative, data)

    @property
    def doc(self) -> str:
        return (self.root / "docs" / "CAPACITY.md").read_text(encoding="utf-8")

    def run(self, *argv: str) -> int:
        code: int = model.main(list(argv), root=self.root)
        return code

    def row(self, table: str, service: str) -> str:
        """The row of ``service`` in the marked table ``table``."""
        body = self.doc.split(f"<!-- capacity:begin {table} -->")[1].split(f"<!-- capacity:end {table} -->")[
            0
        ]
        rows = [line for line in body.splitlines() if line.startswith(f"| {service} |")]
        assert len(rows) == 1, (table, service, body)
        return rows[0]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


# --- the arithmetic ---------------------------------------------------------------------------------


def test_known_figures_give_known_dollar_amounts(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Given made-up figures and prices; When the tables are written
    assert world.run() == 0
    # Then: 1,000,000 deliveries a day x 30 days = 30,000,000 API requests x $4 per million
    assert "| 30,000,000 requests |" in world.row("deliveries", "API Gateway (REST)")
    assert "| $120.00 |" in world.row("deliveries", "API Gateway (REST)")
    # 5 write units per delivery x 30,000,000 x $1 per million
    assert "| $150.00 |" in world.row("deliveries", "DynamoDB writes")
    # 10 ms x 1 GB x 30,000,000 = 300,000 GB-seconds x $0.00001
    assert "| 300,000 GB-seconds |" in world.row("deliveries", "Lambda duration (arm64)")
    assert "| $3.00 |" in world.row("deliveries", "Lambda duration (arm64)")
    # a first apply: 5 transitions x 10,000 endpoints x $0.00002
    assert "| 50,000 state transitions |" in world.row("apply-first", "Step Functions Standard")
    assert "| $1.00 |" in world.row("apply-first", "Step Functions Standard")
    # the watch: each Express child 0.05 s measured + 0.15 s of probe network = 0.2 s, at 64 MB:
    # 10,000 x 2,880 watches x 0.2 s x 1/16 GB = 360,000 GB-seconds x $0.00001
    assert "| 360,000 GB-seconds |" in world.row("watch", "Step Functions Express duration")
    assert "| $3.60 |" in world.row("watch", "Step Functions Express duration")
    # the watch's parent transitions are per watch (0.04 x n = 4), not per endpoint
    assert "| 11,520 state transitions |" in world.row("watch", "Step Functions Standard")
    # 2 secrets per endpoint x 10,000 + the API key, at $0.50
    assert "| $10,000.50 |" in world.row("fixed", "Secrets Manager secrets")
    # Cognigy: (10,500 calls - burst 10) / 60 a minute = 175 minutes
    assert "10,500 calls = 175 min at the budget" in world.row("limits", "Cognigy request budget")
    assert "capacity: wrote CAPACITY.md" in capsys.readouterr().out
    assert world.run("--check") == 0


def test_once_a_run_functions_are_not_scaled_by_the_workload(world: World) -> None:
    # plan and summarize run once per apply, however many endpoints: 1 each, probe and register 10,000
    assert world.run() == 0
    row = world.row("apply-first", "Lambda duration (arm64)")
    assert "plan 1 x 100 ms" in row
    assert "summarize 1 x 100 ms" in row
    assert "probe 10,000 x 200 ms" in row  # 50 ms measured + 150 ms of network
    assert "| 20,002 requests |" in world.row("apply-first", "Lambda requests")


def test_cache_misses_follow_the_rate_and_the_cache_lifetime(world: World) -> None:
    # one delivery a second to one endpoint: a 30 s cache entry serves 31 deliveries, the first a miss
    assumptions = world.read("docs/capacity/assumptions.json")
    assumptions["workloads"]["deliveries_per_day"]["value"] = 86_400
    assumptions["workloads"]["receiving_endpoints"]["value"] = 1
    world.write("docs/capacity/assumptions.json", assumptions)

    def src(rel: str) -> Any:
        return inputs.read_json(world.root / rel, rel)

    modelled = costs.Model(
        reconcile=src("bench/results/reconcile.json"),
        watch=src("bench/results/watch.json"),
        receive=src("bench/results/receive.json"),
        prices=src("docs/capacity/prices.json"),
        assumptions=src("docs/capacity/assumptions.json"),
        template=inputs.read_template(world.root / "template.yaml", "template.yaml"),
    )
    assert modelled.cache_miss_share(30) == pytest.approx(1 / 31)
    assert modelled.cache_miss_share(300) == pytest.approx(1 / 301)
    # spread over 100 endpoints, each sees a delivery every 100 s: 1 / (1 + 0.3)
    assert modelled.cache_miss_share(30, 100) == pytest.approx(1 / 1.3)


@pytest.mark.parametrize(
    ("printed", "transitions"),
    [
        ({}, "11,520"),  # 0.04 per endpoint x n = 100: 4 a watch
        ({"transitions_per_endpoint": 3.04, "child_transitions_per_endpoint": 3.0}, "11,520"),
        ({"transitions_per_endpoint": 3.04, "parent_transitions": 7}, "20,160"),
    ],
    ids=["parent-only", "children-counted-apart", "parent-printed"],
)
def test_a_watch_pays_standard_transitions_for_its_parent_alone(
    world: World, printed: dict[str, Any], transitions: str
) -> None:
    # the Express children's own transitions are not billed as Standard transitions
    world.edit("bench/results/watch.json", **printed)
    assert world.run() == 0
    assert f"| {transitions} state transitions |" in world.row("watch", "Step Functions Standard")


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "field", "drop"),
    [
        ("bench/results/receive.json", "handler_ms", "handler_ms"),
        ("bench/results/reconcile.json", "parent_history_events", "parent_history_events"),
        ("bench/results/watch.json", "lambda_ms_per_invocation.watch", None),
        ("bench/results/receive.json", "cache_miss.secrets_calls_per_delivery", None),
    ],
)
def test_a_missing_field_is_named_with_its_file(
    world: World, capsys: pytest.CaptureFixture[str], relative: str, field: str, drop: str | None
) -> None:
    data = world.read(relative)
    if drop is not None:
        del data[drop]
    else:
        parent, _, leaf = field.rpartition(".")
        del data[parent][leaf]
    world.write(relative, data)
    before = world.doc
    assert world.run() == 2
    err = capsys.readouterr().err
    assert f"{relative}: field '{field}' is missing" in err
    assert "Traceback" not in err
    assert world.doc == before  # nothing written


@pytest.mark.parametrize(
    ("value", "says"),
    [("three", '"three", not a number'), (True, "true, not a number"), (-1, "-1, below 0")],
)
def test_a_field_of_the_wrong_kind_is_named(
    world: World, capsys: pytest.CaptureFixture[str], value: Any, says: str
) -> None:
    world.edit("bench/results/reconcile.json", transitions_per_endpoint=value)
    assert world.run("--check") == 2
    err = capsys.readouterr().err
    assert f"bench/results/reconcile.json: field 'transitions_per_endpoint' is {says}" in err


def test_a_missing_or_broken_input_file_is_named(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    (world.root / "bench" / "results" / "watch.json").unlink()
    assert world.run() == 2
    assert "bench/results/watch.json: missing" in capsys.readouterr().err
    (world.root / "bench" / "results" / "watch.json").write_text("{not json", encoding="utf-8")
    assert world.run() == 2
    assert "bench/results/watch.json: not JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda d: d.replace("<!-- capacity:end inputs -->", ""), "table 'inputs' begins but never ends"),
        (lambda d: d.replace("<!-- capacity:end limits -->", ""), "'assumptions' begins inside 'limits'"),
        (
            lambda d: d.replace("<!-- capacity:begin fixed -->\n", "").replace(
                "<!-- capacity:end fixed -->", ""
            ),
            "table 'fixed' has no markers",
        ),
        (
            lambda d: d + "\n<!-- capacity:begin nosuch -->\n<!-- capacity:end nosuch -->\n",
            "no table is named 'nosuch'",
        ),
    ],
    ids=["never-ends", "begins-inside", "no-markers", "unknown-table"],
)
def test_markers_are_enforced(world: World, capsys: pytest.CaptureFixture[str], edit: Any, says: str) -> None:
    path = world.root / "docs" / "CAPACITY.md"
    path.write_text(edit(world.doc), encoding="utf-8")
    assert world.run() == 2
    assert says in capsys.readouterr().err


# --- check ---------------------------------------------------------------------------------------


def test_check_names_the_stale_tables_and_changes_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.run() == 0
    prose = world.doc.split("<!-- capacity:begin status -->")[0]
    world.edit("bench/results/receive.json", handler_ms=20.0)
    before = world.doc
    assert world.run("--check") == 1
    err = capsys.readouterr().err
    assert "capacity: stale: CAPACITY.md differs from its inputs in" in err
    assert "deliveries" in err
    assert "apply-first" not in err  # only what the receive figures feed
    assert world.doc == before
    # writing again fixes it and leaves the prose as it was
    assert world.run() == 0
    assert world.run("--check") == 0
    assert world.doc.split("<!-- capacity:begin status -->")[0] == prose


def test_check_refuses_placeholders_naming_them(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.edit("bench/results/watch.json", _placeholder=True, _placeholder_fields=["children_per_endpoint"])
    assert world.run() == 0  # written, with a warning
    err = capsys.readouterr().err
    assert "capacity: placeholder: bench/results/watch.json" in err
    assert "children_per_endpoint" in err
    assert "(placeholder)" in world.doc
    assert world.run("--check") == 1
    err = capsys.readouterr().err
    assert "capacity: placeholder: bench/results/watch.json" in err
    assert "stale" not in err
    # the benchmark's real line replaces the file: check passes
    world.write("bench/results/watch.json", copy.deepcopy(WATCH))
    assert world.run() == 0
    assert world.run("--check") == 0


def test_the_committed_document_is_what_its_inputs_give(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/CAPACITY.md against bench/results/*.json, the prices, the assumptions and template.yaml as
    committed: no drift, ever. While an input still holds placeholders (written by hand until its
    benchmark prints every field), ``--check`` says so and fails for that reason alone."""
    code = model.main(["--check"])
    problems = [line for line in capsys.readouterr().err.splitlines() if line.startswith("capacity:")]
    assert not [p for p in problems if not p.startswith("capacity: placeholder:")], problems
    placeholders = [
        name
        for name in ("receive", "reconcile", "watch")
        if json.loads((ROOT / "bench" / "results" / f"{name}.json").read_text()).get("_placeholder") is True
    ]
    assert code == (1 if placeholders else 0)
    assert len(problems) == len(placeholders)


# --- the receive bench's per-delivery arithmetic ----------------------------------------------------


def test_item_sizes_and_units_follow_dynamodbs_rules() -> None:
    item = {
        "pk": {"S": "d#abc"},  # 2 + 5
        "n": {"N": "12345"},  # 1 + 3 (5 digits: 3 bytes) + 1
        "zeros": {"N": "1000"},  # 5 + 2 (trailing zeros do not count)
        "body": {"B": b"x" * 1000},  # 4 + 1000
        "ok": {"BOOL": True},  # 2 + 1
        "m": {"M": {"a": {"S": "b"}}},  # 1 + 3 + (1 + 1 + 1)
        "l": {"L": [{"S": "xy"}, {"NULL": True}]},  # 1 + 3 + (1 + 2) + (1 + 1)
    }
    assert requests.item_size(item) == 7 + 5 + 7 + 1004 + 3 + 7 + 9
    assert requests.write_units(1024) == 1
    assert requests.write_units(1025) == 2
    assert requests.write_units(0) == 1  # a write costs at least one unit
    assert requests.read_units(4096, consistent=True) == 1
    assert requests.read_units(4097, consistent=False) == 1.0  # two 4 KB units, halved
    assert requests.event_chunks({"Source": "s", "DetailType": "d", "Detail": "x" * 70_000}) == 2


TEMPLATE = """\
Parameters:
  WatchIntervalMinutes:
    Type: Number
    Default: 15
    Description: every 15 minutes  # a comment
Globals:
  Function:
    Architectures: [arm64]
    MemorySize: 512
    Timeout: 30
Resources:
  ReceiveFunction:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 10
  SummarizeFunction:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: 256
  Errors:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Metrics:
        - MetricStat:
            Metric:
              MetricName: 5XXError
        - MetricStat:
            Metric:
              MetricName: LoopStops
  DeadLetters:
    Type: AWS::CloudWatch::Alarm
    Condition: AuditSyncEnabled
    Properties:
      MetricName: ApproximateNumberOfMessagesVisible
"""


def test_the_template_reader_finds_what_the_model_prices(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    template = inputs.read_template(path, "template.yaml")
    assert template.default("WatchIntervalMinutes") == 15
    assert template.architecture == "arm64"
    assert template.memory_mb("ReceiveFunction") == 512  # the Globals'
    assert template.memory_mb("SummarizeFunction") == 256
    assert template.timeout_s("ReceiveFunction") == 10
    assert template.timeout_s("SummarizeFunction") == 30
    assert template.alarm_metrics == {"Errors": 2, "DeadLetters": 1}
    assert template.count("AWS::CloudWatch::Alarm", conditional=False) == 1
    assert template.count("AWS::CloudWatch::Alarm", conditional=True) == 1
    with pytest.raises(inputs.InputError, match=r"template\.yaml: parameter 'Nope' has no Default"):
        template.default("Nope")
    with pytest.raises(inputs.InputError, match="resource 'PlanFunction'"):
        template.memory_mb("PlanFunction")
