"""Regenerate docs/CAPACITY.md's tables from what the benchmarks measured and the prices in use.

    .venv/bin/python docs/capacity/model.py            # rewrite the tables (make capacity)
    .venv/bin/python docs/capacity/model.py --check    # exit 1 unless the document is what its inputs give

Inputs (nothing else is read, nothing is fetched):

- ``bench/results/<name>.json`` for receive, reconcile and watch: each the last JSON line of
  ``bench/<name>.py`` (``make bench`` saves it, with ``_recorded``: the command and the day). A file
  holding ``"_placeholder": true`` was written by hand until its benchmark prints every field; the
  tables mark its figures, and ``--check`` refuses it, naming the file and its guessed fields.
- ``docs/capacity/prices.json``: the unit prices (each with its unit, its page and the day it was
  taken); ``docs/capacity/assumptions.json``: the workloads, what no benchmark can measure (each with
  why) and the AWS quotas as documented defaults.
- ``template.yaml``: each function's MemorySize and the architecture, the parameters' defaults
  (the Cognigy budget, WatchIntervalMinutes, the receive API's throttle...), the alarms and dashboards.

Output: each table between ``<!-- capacity:begin NAME -->`` and ``<!-- capacity:end NAME -->`` in
docs/CAPACITY.md is replaced by the table NAME (see :data:`TABLES`); the prose around them is left as
it is. Every table must have its marker pair and every marker pair a table.

Exit codes: 0 the document was written (or, with ``--check``, already is what the inputs give and no
input is a placeholder); 1 with ``--check``: the document differs (the tables named: run ``make
capacity``) or an input holds placeholders (named); 2 bad input: a file or a field missing or of the
wrong kind (the message names the file and the field), markers missing, repeated or unbalanced.
Never a traceback. Standard library only; no clock: the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script or imported by the tests: its siblings either way
    sys.path.insert(0, str(HERE))

from capacity_costs import Line, Model, fmt_count, money, total  # noqa: E402
from capacity_inputs import InputError, Source, read_json, read_template  # noqa: E402
from capacity_limits import Limit, limits  # noqa: E402

ROOT = HERE.parents[1]
BENCHMARKS = ("receive", "reconcile", "watch")
MARKER = re.compile(r"<!-- capacity:(?P<side>begin|end) (?P<name>[a-z0-9-]+) -->")


class MarkerError(Exception):
    """The document's markers are missing, repeated or unbalanced (exit 2)."""


# --- rendering ---------------------------------------------------------------------------------------


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return "\n".join([_row(head), _row(["---"] * len(head)), *(_row(r) for r in rows)])


def cost_table(lines: Sequence[Line], prices: Source, *, per: str) -> str:
    rows = []
    for line in lines:
        listed = "-" if line.price is None else prices.text(f"prices.{line.price}.listed")
        cost = "-" if line.price is None else money(line.cost(prices))
        rows.append(
            [
                line.service,
                f"{fmt_count(line.quantity)} {line.unit}",
                listed,
                cost,
                f"{line.basis} ({line.source})",
            ]
        )
    rows.append(["**Total**", "", "", f"**{money(total(lines, prices))}**", ""])
    return table(["Service", "Quantity", "Unit price", per, "How (from)"], rows)


def limits_table(limits: Sequence[Limit]) -> str:
    return table(
        ["Limit", "Allows (as known to us on 2026-12-01; check Service Quotas)", "Needs", "Verdict"],
        [[x.limit, x.allows, x.needs, x.verdict] for x in limits],
    )


class Document:
    """The model's tables, each by its marker name."""

    def __init__(self, model: Model, benches: dict[str, Source], prices: Source, assumptions: Source) -> None:
        self.m, self.benches, self.prices, self.a = model, benches, prices, assumptions

    def tables(self) -> dict[str, Callable[[], str]]:
        m, p = self.m, self.prices
        return {
            "summary": self.summary,
            "apply-first": lambda: cost_table(m.apply(first=True), p, per="One first apply"),
            "apply-again": lambda: cost_table(m.apply(first=False), p, per="One re-apply"),
            "watch": lambda: cost_table(m.watch_month(), p, per="A month"),
            "deliveries": lambda: cost_table(m.deliveries_month(), p, per="A month"),
            "deliveries-endpoints": self.deliveries_by_endpoints,
            "fixed": lambda: cost_table(m.fixed_month(), p, per="A month"),
            "limits": lambda: limits_table(limits(m)),
            # the inputs last: they list the fields the tables above read
            "assumptions": self.assumptions,
            "prices": self.price_list,
            "inputs": self.inputs,
            "status": self.status,
        }

    def summary(self) -> str:
        m, p = self.m, self.prices
        fixed, watch, deliveries = (
            total(x, p) for x in (m.fixed_month(), m.watch_month(), m.deliveries_month())
        )
        first, again = total(m.apply(first=True), p), total(m.apply(first=False), p)
        n = fmt_count(m.endpoints)
        rows = [
            ["Fixed: secrets, alarms, dashboard, metrics", f"{n} endpoints declared", money(fixed)],
            [f"(a) {n} endpoints applied for the first time", "once", money(first)],
            [f"(a) the same {n} applied again, unchanged", "once", money(again)],
            [
                f"(b) {n} endpoints watched every {fmt_count(m.t.default('WatchIntervalMinutes'))} minutes",
                f"{fmt_count(m.watches_per_month)} watches a month",
                money(watch),
            ],
            [
                f"(c) {fmt_count(m.workload('deliveries_per_day'))} deliveries a day",
                f"{fmt_count(m.workload('deliveries_per_day') * m.workload('month_days'))} a month",
                money(deliveries),
            ],
            [
                "**A month of all of it** (fixed + b + c + one first apply)",
                "",
                f"**{money(fixed + watch + deliveries + first)}**",
            ],
        ]
        return table(["What", "How much", "Cost"], rows)

    def deliveries_by_endpoints(self) -> str:
        m, p = self.m, self.prices
        rows = []
        rv = m.receive
        for endpoints in sorted({100.0, 1000.0, m.workload("receiving_endpoints")}):
            lines = m.deliveries_month(endpoints)
            secrets = sum(x.cost(p) for x in lines if x.service == "Secrets Manager API calls")
            rows.append(
                [
                    fmt_count(endpoints),
                    f"{m.cache_miss_share(rv.number('record_cache_seconds'), endpoints):.1%}",
                    f"{m.cache_miss_share(rv.number('secret_cache_seconds'), endpoints):.1%}",
                    money(secrets),
                    money(total(lines, p)),
                ]
            )
        return table(
            [
                "Endpoints receiving",
                "Record-cache misses",
                "Secret-cache misses",
                "Secrets Manager calls",
                "A month",
            ],
            rows,
        )

    def assumptions(self) -> str:
        a = self.a
        rows = []
        for group in ("workloads", "assumed"):
            for name in a.mapping(group):
                value = a.mapping(f"{group}.{name}").get("value")
                shown = fmt_count(value) if isinstance(value, int | float) else json.dumps(value)
                rows.append([f"`{name}`", shown, a.text(f"{group}.{name}.why")])
        return table(["Assumed", "Value", "Why"], rows)

    def price_list(self) -> str:
        p = self.prices
        rows = []
        for service in p.mapping("prices"):
            for item in p.mapping(f"prices.{service}"):
                key = f"prices.{service}.{item}"
                rows.append(
                    [
                        p.text(f"{key}.page"),
                        p.text(f"{key}.unit"),
                        p.text(f"{key}.listed"),
                        p.text(f"{key}.taken_on"),
                    ]
                )
        return table(["Page", "Unit", "Price", "Taken on"], rows)

    def inputs(self) -> str:
        rows = []
        for name, source in self.benches.items():
            guessed = source.placeholders or ()
            recorded = source.data.get("_recorded")
            if guessed:
                label = f"bench/{name}.py (placeholders, by hand)"
            elif isinstance(recorded, dict):
                label = f"`{recorded.get('command')}` ({recorded.get('on')})"
            else:
                label = f"bench/{name}.py"
            for i, field in enumerate(sorted(source.read)):
                mark = " (placeholder)" if "*" in guessed or field.split(".")[0] in guessed else ""
                rows.append([label if i == 0 else "", f"`{field}`", fmt_count(source.read[field]) + mark])
        return table(["Benchmark (recorded)", "Figure", "Value"], rows)

    def status(self) -> str:
        guessed = {s.name: s.placeholders for s in self.benches.values() if s.placeholders}
        if not guessed:
            return (
                "Every figure above is a measurement (see the inputs table for each one's command and day)."
            )
        named = "; ".join(
            f"`{n}` ({', '.join(f) if f != ('*',) else 'every field'})" for n, f in guessed.items()
        )
        return (
            f"**Placeholders still in the inputs**, marked in the inputs table: {named}. Re-run the "
            "benchmarks (`make bench`), then `make capacity`."
        )


# --- the markers ----------------------------------------------------------------------------------------


def replace_tables(text: str, tables: dict[str, Callable[[], str]], shown: str) -> tuple[str, list[str]]:
    """``text`` with each marked table replaced, and the names of those whose content changed."""
    spans: dict[str, tuple[int, int]] = {}
    open_name, open_end = None, 0
    for match in MARKER.finditer(text):
        side, name = match["side"], match["name"]
        if side == "begin":
            if open_name is not None:
                raise MarkerError(f"{shown}: '{name}' begins inside '{open_name}'")
            if name in spans:
                raise MarkerError(f"{shown}: table '{name}' is marked twice")
            open_name, open_end = name, match.end()
        else:
            if open_name != name:
                raise MarkerError(f"{shown}: an end marker for '{name}' with no begin before it")
            spans[name] = (open_end, match.start())
            open_name = None
    if open_name is not None:
        raise MarkerError(f"{shown}: table '{open_name}' begins but never ends")
    unknown = sorted(set(spans) - set(tables))
    if unknown:
        raise MarkerError(f"{shown}: no table is named '{unknown[0]}' (tables: {', '.join(tables)})")
    missing = [name for name in tables if name not in spans]
    if missing:
        raise MarkerError(
            f"{shown}: table '{missing[0]}' has no markers (add <!-- capacity:begin {missing[0]} --> "
            f"and <!-- capacity:end {missing[0]} -->)"
        )
    rendered = {name: "\n" + tables[name]() + "\n" for name in tables}  # in the tables' order
    out, changed, at = [], [], 0
    for name, (start, end) in sorted(spans.items(), key=lambda kv: kv[1][0]):
        out += [text[at:start], rendered[name]]
        if text[start:end] != rendered[name]:
            changed.append(name)
        at = end
    out.append(text[at:])
    return "".join(out), changed


def build(root: Path, doc: Path) -> tuple[str, list[str], dict[str, Source]]:
    """The document as its inputs give it, the tables that changed, and the benchmarks' inputs."""

    def shown(path: Path) -> str:
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    benches = {
        n: read_json(root / "bench" / "results" / f"{n}.json", f"bench/results/{n}.json") for n in BENCHMARKS
    }
    prices = read_json(root / "docs" / "capacity" / "prices.json", "docs/capacity/prices.json")
    assumptions = read_json(root / "docs" / "capacity" / "assumptions.json", "docs/capacity/assumptions.json")
    template = read_template(root / "template.yaml", "template.yaml")
    model = Model(
        reconcile=benches["reconcile"],
        watch=benches["watch"],
        receive=benches["receive"],
        prices=prices,
        assumptions=assumptions,
        template=template,
    )
    try:
        text = doc.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(shown(doc), f"unreadable: {exc.strerror or exc}") from None
    new, changed = replace_tables(text, Document(model, benches, prices, assumptions).tables(), shown(doc))
    return new, changed, benches


def main(argv: Sequence[str] | None = None, *, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(
        prog="docs/capacity/model.py",
        description="Rewrite docs/CAPACITY.md's tables from bench/results/*.json, the prices and the "
        "assumptions.",
        epilog="example: .venv/bin/python docs/capacity/model.py --check",
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 unless the document is current"
    )
    parser.add_argument("--doc", type=Path, help="the document (default: docs/CAPACITY.md)")
    args = parser.parse_args(argv)
    doc = args.doc or root / "docs" / "CAPACITY.md"
    try:
        new, changed, benches = build(root, doc)
    except (InputError, MarkerError) as exc:
        print(f"capacity: bad input: {exc}", file=sys.stderr)
        return 2
    placeholders = [(s.name, s.placeholders) for s in benches.values() if s.placeholders]
    for name, fields in placeholders:
        what = "every field" if fields == ("*",) else "fields " + ", ".join(fields or ())
        print(
            f"capacity: placeholder: {name} holds placeholder values ({what}): run its benchmark "
            "(make bench), then make capacity",
            file=sys.stderr,
        )
    if args.check:
        if changed:
            print(
                f"capacity: stale: {doc.name} differs from its inputs in {', '.join(changed)}: "
                "run make capacity",
                file=sys.stderr,
            )
        return 1 if changed or placeholders else 0
    if changed:
        doc.write_text(new, encoding="utf-8")
        print(f"capacity: wrote {doc.name} ({', '.join(changed)})")
    else:
        print(f"capacity: {doc.name} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
