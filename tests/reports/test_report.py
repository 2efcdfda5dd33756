"""``zeroops report`` HTML/Markdown and ``zeroops dashboard`` from a small real run: every section present,
every figure read from the results files, images real PNGs, HTML well-formed and self-contained."""

from __future__ import annotations

import base64
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import pandas as pd
import pytest

from reports.dashboard import fmt_stat, fmt_value, t_interval
from reports.report import ReportError, build_report
from tests.reports.conftest import ENGINES, SEEDS
from zeroops.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input"}


class Tree(HTMLParser):
    """Collects tables (rows of cell texts), headings, images and ids; checks that tags balance."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.headings: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self._cell: list[str] | None = None
        self._head: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "img":
            self.images.append(str(a.get("src")))
        if tag == "a":
            self.hrefs.append(str(a.get("href")))
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h1", "h2", "h3"):
            self._head = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag in ("h1", "h2", "h3") and self._head is not None:
            self.headings.append("".join(self._head).strip())
            self._head = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._head is not None:
            self._head.append(data)


@pytest.fixture(scope="module")
def html_report(results: Path) -> tuple[Path, Tree]:
    path = build_report(results, "html")
    tree = Tree()
    tree.feed(path.read_text())
    tree.close()
    return path, tree


def _summary(results: Path) -> list[dict[str, Any]]:
    return json.loads((results / "summary.json").read_text())["runs"]


def _row(tree: Tree, label: str) -> list[str]:
    rows = [r for t in tree.tables for r in t if r and r[0] == label]
    assert rows, f"no table row {label!r}"
    return rows[0]


def _assert_png(data: bytes) -> None:
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    img = mpimg.imread(io.BytesIO(data), format="png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 0  # not a blank canvas


def test_html_has_every_section(html_report: tuple[Path, Tree]) -> None:
    path, tree = html_report
    assert path.name == "report.html"
    for h in ("Automation dashboard", "Automation coverage", "Performance", "Cost", "Alerting", "Summary",
              "Scenarios", "small"):
        assert h in tree.headings, h
    for label in ("automation rate", "human intervention rate", "success rate (executed / executed + failed)",
                  "total decisions", "MTTD (mean)", "MTTR p50", "MTTR p95", "availability (user-facing)",
                  "change success", "spend (all scenarios)", "savings vs static", "savings vs reactive",
                  "raw alerts", "suppressed (raw − sent to humans)", "auto-remediated incidents",
                  "sent to humans (pages)", "false positives (pages tied to no fault)"):
        _row(tree, label)
    # demand, service (latency/errors/spend), alert funnel per scenario, plus the summary
    assert len(tree.images) == 4


def test_html_is_well_formed_and_self_contained(html_report: tuple[Path, Tree]) -> None:
    path, tree = html_report
    text = path.read_text()
    assert tree.errors == [] and tree.stack == []
    ET.fromstring(text.split("\n", 1)[1])  # XHTML-clean after the doctype: a strict XML parser accepts it
    assert "<script" not in text
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text), "no network reference"
    for href in tree.hrefs:
        assert href.startswith("#") and href[1:] in tree.ids, href  # every link lands inside the file
    for src in tree.images:
        assert src.startswith("data:image/png;base64,")
        _assert_png(base64.b64decode(src.split(",", 1)[1]))


def test_dashboard_figures_match_the_results_files(results: Path, html_report: tuple[Path, Tree]) -> None:
    _, tree = html_report
    runs = _summary(results)
    heads = [r for t in tree.tables for r in t if r and r[0] == "figure"][0]
    col = {h.split(" (")[0]: i for i, h in enumerate(heads)}
    assert heads[1] == "ops (under test)"

    def per_seed(e: str, key: str) -> list[float]:
        return [float(r["metrics"][key]) for r in runs if r["engines"] == e and r["metrics"].get(key) is not None]

    for e in ENGINES:  # one scenario: the pooled figure per seed is the run's own, then mean [t interval]
        for label, key, unit, dom in (("raw alerts", "alerts_raw", "count", (0.0, None)),
                                      ("availability (user-facing)", "availability", "avail", (0.0, 1.0)),
                                      ("spend (all scenarios)", "cost", "money", (0.0, None)),
                                      ("sent to humans (pages)", "notifications", "count", (0.0, None))):
            want = fmt_stat(t_interval(per_seed(e, key), dom), unit)
            assert _row(tree, label)[col[e]] == want, (label, e)
    # savings vs static from the summed costs of the same seeds
    cost = {e: per_seed(e, "cost") for e in ENGINES}
    sv = [1 - a / b for a, b in zip(cost["ops"], cost["static"], strict=True)]
    assert _row(tree, "savings vs static")[col["ops"]] == fmt_stat(t_interval(sv, (None, 1.0)), "pct")
    assert "[" in _row(tree, "raw alerts")[col["ops"]] or len(set(per_seed("ops", "alerts_raw"))) == 1
    assert "[" in _row(tree, "availability (user-facing)")[col["static"]]  # seeds differ: an interval
    # the design target and the scenario file's own target, and its met count from the results
    avail = _row(tree, "availability (user-facing)")
    assert ">= 99.999 % (5.0 nines) (design)" in avail[col["target"]]
    met = [r["targets"]["availability"]["status"] for r in runs if r["engines"] == "ops"]
    assert avail[col["scenario targets met"]] == f"{met.count('met')}/{len(met)} met"


def test_summary_and_incident_tables_match_the_files(results: Path, html_report: tuple[Path, Tree]) -> None:
    _, tree = html_report
    runs = _summary(results)
    summary = [r for t in tree.tables for r in t if len(r) > 3 and r[0] == "small"]
    assert len(summary) == len(ENGINES) * len(SEEDS)
    for r in runs:
        assert any(row[1] == r["engines"] and row[2] == str(r["seed"]) and f"{r['metrics']['cost']:,.2f}" in row
                   for row in summary)
    inc = pd.read_csv(results / "small" / "ops" / "incidents.csv")
    timeline = [t for t in tree.tables if t and t[0][0] == "incident"][0]
    assert [r[0] for r in timeline[1:]] == list(inc["id"])
    for row, (_, i) in zip(timeline[1:], inc.iterrows(), strict=True):
        assert row[8] == fmt_value(float(i["ttr_s"]), "s")
        if (results / "small" / "ops" / "postmortems" / f"{i['id']}.md").is_file():
            assert row[-1] == "post-mortem"


def test_markdown_report_links_files_that_exist(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(results), "--format", "md,html"]) == 0  # both, the plots drawn once
    path = results / "report.md"
    assert f"wrote {path} and {results / 'report.html'}" in capsys.readouterr().out
    text = path.read_text()
    for h in ("## Automation dashboard", "### Automation coverage", "### Alerting", "## Scenarios", "### small"):
        assert h in text
    links = re.findall(r"\]\(([^)#]+)\)", text)
    pngs = [x for x in links if x.endswith(".png")]
    assert len(pngs) == 4
    for x in links:
        assert (path.parent / x).is_file(), x
    for x in pngs:
        _assert_png((path.parent / x).read_bytes())
    assert any("postmortems/" in x for x in links)


def test_bench_section(results: Path, tmp_path: Path) -> None:
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"benchmarks": [
        {"name": "test_fleet[fleet-10k-day]", "stats": {"mean": 9.1, "rounds": 1},
         "extra_info": {"wall_s": 9.0, "simulated_s": 86400.0, "peak_rss_mb": 429.4, "actions": 13923,
                        "target_rtf": 26000, "targets": "missed"}},
        {"name": "test_other", "stats": {"mean": 0.5, "rounds": 5}, "extra_info": {}}]}))
    path = build_report(results, "html", tmp_path / "r.html", bench)
    tree = Tree()
    tree.feed(path.read_text())
    assert "Benchmarks" in tree.headings
    row = _row(tree, "test_fleet[fleet-10k-day]")
    assert row[1:7] == ["9.000", "9,600", "26,000", "429.4", "1,547", "missed"]
    assert _row(tree, "test_other")[1:3] == ["0.500", "–"]
    assert len(tree.images) == 5


def test_cli_report_and_dashboard(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "elsewhere" / "r.md"  # a report elsewhere links relative to itself
    assert main(["report", str(results), "--format", "md", "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    for x in re.findall(r"\]\(([^)#]+)\)", out.read_text()):
        assert (out.parent / x).is_file(), x
    assert main(["dashboard", str(results)]) == 0
    text = capsys.readouterr().out
    for h in ("ZERO-OPS AUTOMATION DASHBOARD", "Automation coverage", "Performance", "Cost", "Alerting",
              "automation rate", "MTTD", "availability", "savings vs static", "raw alerts"):
        assert h in text, h
    runs = [r for r in _summary(results) if r["engines"] == "ops"]
    raw = t_interval([float(r["metrics"]["alerts_raw"]) for r in runs], (0.0, None))
    assert re.search(r"raw alerts:\s+" + re.escape(fmt_stat(raw, "count")), text)


def test_bad_input_is_named(tmp_path: Path, results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ReportError, match="summary.json"):
        build_report(tmp_path)
    with pytest.raises(ReportError, match="allowed values are md, html"):
        build_report(results, "pdf")
    assert main(["report", str(results), "--format", "md,pdf"]) == 2
    assert main(["report", str(results), "--format", "md,html", "--out", str(tmp_path / "x")]) == 2
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert main(["dashboard", str(tmp_path)]) == 2
    bad = tmp_path / "b.json"
    bad.write_text("[1, 2]")
    assert main(["report", str(results), "--bench", str(bad), "--out", str(tmp_path / "r.md")]) == 2
    assert "pytest-benchmark" in capsys.readouterr().err
    sweep = tmp_path / "s"
    sweep.mkdir()
    (sweep / "summary.json").write_text(json.dumps({"runs": []}))
    (sweep / "sweep.csv").write_text("scenario,cost\nsmall,1\n")
    with pytest.raises(ReportError, match="missing columns engines, seed"):
        build_report(sweep)


def test_intervals_stay_inside_the_domain() -> None:
    s = t_interval([0.90, 0.999], (0.0, 1.0))
    assert s.n == 2 and s.lo is not None and s.hi == 1.0 and s.lo < 0.9
    assert t_interval([1.0]).lo is None  # one seed: no interval
    assert fmt_stat(t_interval([3.0, 3.0], (0.0, None)), "count") == "3 (all 2 seeds)"


def test_a_sweep_folder_gives_intervals_across_its_seeds(results: Path, tmp_path: Path) -> None:
    """Runs written by ``zeroops sweep`` (its own writer) are read with their targets: intervals over seeds."""
    sweep_stats = pytest.importorskip("scenarios.sweep_stats")
    from reports.dashboard import build_dashboard
    from reports.results_model import load_results

    flat = [{"scenario": r["scenario"], "engines": r["engines"], "seed": r["seed"], "wall_s": r["wall_s"],
             "worker": "w1", **r["metrics"], "targets_met": 0, "targets_missed": 0, "_targets": r["targets"]}
            for r in _summary(results)]
    sweep_stats.write(tmp_path, flat, [], {})
    res = load_results(tmp_path)  # no summary.json: the sweep alone
    assert res.sweep == tmp_path / "sweep.json" and len(res.runs) == len(flat)
    d = build_dashboard(res)
    avail = [ln for _, lines in d.sections for ln in lines if ln.spec.key == "availability"][0]
    want = t_interval([r["availability"] for r in flat if r["engines"] == "static"], (0.0, 1.0))
    assert avail.values["static"] == want and want.n == len(SEEDS)
    assert avail.scenario_targets  # the targets came along with the sweep's runs
    from reports.report import scenario_blocks

    blocks = scenario_blocks(res, "small", tmp_path / "plots")
    assert "(no time series found in `small/`)" in [getattr(b, "text", "") for b in blocks]


def test_budget_figures_come_from_the_budget_managers_last_report(results: Path, tmp_path: Path) -> None:
    """Budget, spend against it and the 30-day forecast: the last executed budget_forecast per project; an
    account budget (project ``*``) stands for its projects rather than being added to them."""
    import shutil

    from reports.dashboard import budget_figures
    from reports.results_model import load_results

    out = tmp_path / "r"
    shutil.copytree(results, out)
    acts = out / "small" / "ops" / "actions.csv"
    df = pd.read_csv(acts, dtype=str, keep_default_na=False)

    def row(seq: int, at: float, project: str, spent: float, limit: float, ahead: float, outcome: str) -> dict:
        ev = {"budget_forecast": {"project": project, "spent": spent, "limit": limit, "next_days": {"point": ahead}}}
        return {c: "" for c in df.columns} | {"seq": str(seq), "at": str(at), "engine": "budget_manager",
                                             "kind": "notify", "target": project, "verdict": "allow",
                                             "outcome": outcome, "evidence": json.dumps(ev)}
    extra = [row(900, 10, "p", 1.0, 50.0, 9.0, "executed"), row(901, 20, "p", 2.0, 50.0, 7.0, "executed"),
             row(902, 30, "p", 3.0, 50.0, 5.0, "denied"), row(903, 20, "q", 4.0, 20.0, 1.0, "executed")]
    pd.concat([df, pd.DataFrame(extra)]).to_csv(acts, index=False)
    b = budget_figures(load_results(out))
    assert (b["budget"], b["spent"], b["forecast_30d"]) == (70.0, 6.0, 8.0)
    extra.append(row(904, 25, "*", 6.5, 60.0, 8.5, "executed"))
    pd.concat([df, pd.DataFrame(extra)]).to_csv(acts, index=False)
    b = budget_figures(load_results(out))
    assert (b["budget"], b["spent"], b["forecast_30d"]) == (60.0, 6.5, 8.5)


def test_alert_rates_pool_the_counts_not_the_scenarios() -> None:
    """A scenario with one raw alert and two pages has a suppression rate of −100 %; averaging it with a
    181-alert scenario that paged nobody would print 0 %.  The dashboard pools the counts."""
    from reports.dashboard import false_alert_rate, suppression_rate

    runs = [{"metrics": {"alerts_raw": 1, "notifications": 2, "pages_false": 1}},
            {"metrics": {"alerts_raw": 181, "notifications": 0, "pages_false": 0}},
            {"metrics": {"alerts_raw": 0, "notifications": 1, "pages_false": 1}}]  # pages with no raw alert count
    assert suppression_rate(runs) == pytest.approx(1 - 3 / 182)
    assert false_alert_rate(runs) == pytest.approx(2 / 3)
    assert suppression_rate([{"metrics": {"alerts_raw": 0, "notifications": 0}}]) is None
