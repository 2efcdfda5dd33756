"""The dashboard in headless Chromium against a running ``zeroops serve --scenario`` (tests/browser/dashboard-small.yaml).

Every test fails on a browser console error (the ``page`` fixture) and saves a screenshot under its pytest tmp dir,
named in its assertion messages.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.browser.harness import Console, Server
from zeroops.serve.dashboard.figures import FIGURES, Figure, lookup

FIGURES_LOADED = "#fig-mttd .value:not([data-raw=''])"


def sign_in(pg: Any, server: Server, role: str) -> None:
    pg.goto(server.base + "/dashboard")
    pg.wait_for_selector("body[data-ready]")
    pg.get_by_label("Bearer token").fill(server.tokens[role])
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_selector("body[data-roles]")
    pg.wait_for_selector(FIGURES_LOADED)
    pg.wait_for_selector("body[data-refreshed]")


def shoot(pg: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"dashboard-{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path


def quiet_events(pg: Any) -> None:
    """Replace the event stream by an empty one, so the figures on the page stay those of one refresh."""
    pg.route("**/api/zeroops/events*", lambda route: route.fulfill(
        status=200, headers={"Content-Type": "text/event-stream"}, body=": quiet\n\n"))


def expected_text(v: Any, unit: str) -> str:
    """The page's formatting (dashboard.js ``fmt``), as an oracle."""
    if v is None:
        return "no data"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if not isinstance(v, int | float):
        return str(v)
    if unit == "percent":
        digits = 4 if (0.99 <= v < 1) or (0 < v < 0.001) else 2
        return f"{100 * v:.{digits}f} %"
    if unit == "seconds":
        return f"{v:.1f} s"
    if unit == "money":
        return f"${v:,.2f}"
    if unit == "count":
        return f"{v:,}" if float(v).is_integer() else f"{v:.2f}"
    return str(v)


def page_rows(pg: Any) -> dict[str, dict[str, Any]]:
    """Every figure row on the page: id -> raw value, shown text, status text."""
    rows = pg.eval_on_selector_all("#figure-sections tr[data-figure]", """rows => rows.map(r => ({
        id: r.id, figure: r.dataset.figure, raw: r.querySelector('.value').dataset.raw,
        text: r.querySelector('.value').textContent, status: r.querySelector('.status').textContent}))""")
    return {r["id"]: r for r in rows}


def expected_rows(f: Figure, doc: Any) -> dict[str, Any]:
    if not f.each:
        return {f"fig-{f.id}": lookup(doc, f.path)}
    return {f"fig-{f.id}--{it[f.key]}": lookup(it, f.path) for it in lookup(doc, f.each) or []}


def judged(f: Figure, v: Any) -> str:
    """The status cell the page should show for ``v`` (Python's judgement of the same target)."""
    if f.target is None:
        return ""
    ok = f.target.met(v)
    return "not judged (no value)" if ok is None else "✓ meets target" if ok else "✗ misses target"


def test_figures_match_the_api(server: Server, page: tuple[Any, Console], tmp_path: Path) -> None:
    pg, _ = page
    sources = sorted({f.source for f in FIGURES})
    before = {s: server.get(s) for s in sources}
    seen: dict[str, Any] = {}

    def keep(resp: Any) -> None:
        path = urlparse(resp.url).path
        if path in sources and resp.ok:
            seen[path] = resp.json()

    pg.on("response", keep)
    quiet_events(pg)
    sign_in(pg, server, "viewer")
    after = {s: server.get(s) for s in sources}
    shot = shoot(pg, tmp_path, "figures")
    rows = page_rows(pg)
    assert set(seen) == set(sources), f"the page read {sorted(seen)}, not every source {sources} (screenshot {shot})"

    stable = 0
    for f in FIGURES:
        want = expected_rows(f, seen[f.source])
        for rid, v in want.items():
            assert rid in rows, f"{f.label}: no row {rid} on the page (screenshot {shot})"
            row = rows[rid]
            # exactly what the API answered the page, formatted as documented, judged against the target as in Python
            assert json.loads(row["raw"]) == v, f"{rid}: page {row['raw']} != API {v!r} (screenshot {shot})"
            assert row["text"] == expected_text(v, f.unit), f"{rid}: shown {row['text']!r} (screenshot {shot})"
            assert row["status"] == judged(f, v), f"{rid}: status {row['status']!r} for {v!r} (screenshot {shot})"
            # and what the API answers anyone: a figure that did not change around the page's load is the same
            a, b = (expected_rows(f, d[f.source]).get(rid) for d in (before, after))
            if a == b:
                stable += 1
                assert json.loads(row["raw"]) == a, f"{rid}: page {row['raw']} but the API says {a!r} (screenshot {shot})"
    assert stable >= 5, f"only {stable} figures held still long enough to compare (screenshot {shot})"
    assert len(rows) >= len(FIGURES), f"figures missing from the page (screenshot {shot})"
    # every target is labelled as one
    targets = pg.eval_on_selector_all("#figure-sections td.target", "cs => cs.map(c => c.textContent)")
    assert all(t.startswith("target ") or t == "no target" for t in targets), targets


def test_live_updates_arrive_without_reload(server: Server, page: tuple[Any, Console], tmp_path: Path) -> None:
    pg, _ = page
    urls: list[str] = []
    pg.on("request", lambda r: urls.append(r.url))
    sign_in(pg, server, "viewer")
    pg.evaluate("window.__noReload = 1")
    first = pg.get_attribute("body", "data-refreshed")
    decisions = pg.get_attribute("#fig-decisions_total .value", "data-raw")
    pg.wait_for_selector("body[data-last-event]")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if (pg.get_attribute("body", "data-refreshed") != first
                and pg.get_attribute("#fig-decisions_total .value", "data-raw") != decisions):
            break
        pg.wait_for_timeout(250)
    shot = shoot(pg, tmp_path, "live")
    assert pg.get_attribute("#fig-decisions_total .value", "data-raw") != decisions, \
        f"the decision count stayed {decisions} for 15 s of a running twin (screenshot {shot})"
    assert pg.evaluate("window.__noReload") == 1, f"the page reloaded (screenshot {shot})"
    assert pg.inner_text("#live").startswith("Live updates: on"), f"{pg.inner_text('#live')} (screenshot {shot})"
    assert any("/api/zeroops/events" in u for u in urls), "the page never opened the event stream"
    assert not [u for u in urls if server.tokens["viewer"] in u or "access_token" in u], "a token went into a URL"


def test_approver_approves_by_keyboard(server: Server, page: tuple[Any, Console], tmp_path: Path) -> None:
    pg, _ = page
    sign_in(pg, server, "approver")
    pg.reload()  # the tab keeps its token: signed in again, with the focus at the top of the page
    pg.wait_for_selector("body[data-roles]")
    pg.wait_for_selector("#approval-rows button.approve")
    reached, presses = None, 0
    while presses < 60 and not reached:
        pg.keyboard.press("Tab")
        presses += 1
        focused = pg.evaluate("document.activeElement && document.activeElement.id")
        reached = focused if focused and focused.startswith("approve-") else None
    shot = shoot(pg, tmp_path, "approve-focus")
    assert reached, f"60 Tab presses never reached an Approve button (screenshot {shot})"
    pid = int(reached.removeprefix("approve-"))
    print(f"Tab presses from the top of the page to the first Approve button: {presses}")
    label = pg.get_attribute(f"#{reached}", "aria-label") or ""
    assert label.startswith(f"Approve proposal {pid}:"), f"{label!r} reached after {presses} Tab presses"
    pg.keyboard.press("Enter")
    pg.wait_for_selector(f"#approvals-result:has-text('Proposal {pid} approved')")
    shot = shoot(pg, tmp_path, "approved")
    after = pg.evaluate("document.activeElement && (document.activeElement.id || document.activeElement.tagName)")
    assert after and (after.startswith(("approve-", "deny-")) or after == "approvals-h"), \
        f"after the vote the focus went to {after!r}, not the queue (screenshot {shot})"
    proposal = next(p for p in server.get("/api/zeroops/approvals?status=all") if p["id"] == pid)
    assert proposal["status"] != "pending" and "ann" in proposal["approvers"], \
        f"proposal {pid} after the page's approve: {proposal['status']}, {proposal['approvers']} (screenshot {shot})"
    assert pg.locator(f"#approval-{pid}").count() == 0, f"proposal {pid} still listed as pending (screenshot {shot})"
    vote = [d for d in server.get("/api/zeroops/operations/decisions?limit=50&q=approval_approve")
            if d.get("target") == f"proposal:{pid}"]
    assert vote and vote[-1]["engine"] == "api:ann", f"no audit record names ann's vote on {pid}: {vote}"


def test_viewer_is_read_only(server: Server, page: tuple[Any, Console], tmp_path: Path) -> None:
    pg, _ = page
    sign_in(pg, server, "viewer")
    pg.wait_for_selector("#approval-rows tr")
    shot = shoot(pg, tmp_path, "viewer")
    pending = server.get("/api/zeroops/approvals")
    assert pending, "the scenario should have proposals waiting by now"
    assert pg.locator("#approval-rows button").count() == 0, f"a viewer sees vote buttons (screenshot {shot})"
    assert "Read-only" in pg.inner_text("#approvals-mode"), f"no read-only notice (screenshot {shot})"


def test_decision_search(server: Server, page: tuple[Any, Console], tmp_path: Path) -> None:
    pg, _ = page
    sign_in(pg, server, "viewer")
    pg.wait_for_selector("#incident-list summary", timeout=20_000)  # an incident was declared: there is a match
    pg.get_by_label("Search decisions").fill("declare_incident")
    pg.wait_for_selector("body[data-decision-query='declare_incident']")
    shot = shoot(pg, tmp_path, "search")
    kinds = pg.eval_on_selector_all("#decision-rows tr", "rs => rs.map(r => r.children[3].textContent)")
    assert kinds and set(kinds) == {"declare_incident"}, f"search rows: {kinds[:10]} (screenshot {shot})"
    api = server.get("/api/zeroops/operations/decisions?limit=200&q=declare_incident")
    assert len(kinds) == len(api), f"page {len(kinds)} rows, API {len(api)} (screenshot {shot})"


def test_incident_timeline(server: Server, page: tuple[Any, Console], tmp_path: Path) -> None:
    pg, _ = page
    sign_in(pg, server, "viewer")
    pg.wait_for_selector("#incident-list summary", timeout=20_000)
    summary = pg.locator("#incident-list summary").first
    summary.focus()
    pg.keyboard.press("Enter")  # <details> opens from the keyboard
    pg.wait_for_selector("#incident-list details[open] .timeline li:has-text('decision')")
    shot = shoot(pg, tmp_path, "incident")
    iid = pg.get_attribute("#incident-list details[open]", "data-id")
    api = server.get(f"/api/zeroops/incidents/{iid}")
    items = pg.eval_on_selector_all("#incident-list details[open] .timeline li", "ls => ls.map(l => l.textContent)")
    shown = {int(m.group(1)) for t in items if (m := re.search(r"decision (\d+) ", t))}
    # the API read after the page: its timeline holds every decision the page listed (timelines only grow)
    assert shown and shown <= {d["id"] for d in api["timeline"]}, f"{items[:5]} (screenshot {shot})"
    assert any("declared by" in t for t in items), f"{items[:5]} (screenshot {shot})"
    pg.get_by_role("button", name=f"Post-mortem of incident {iid}").press("Enter")
    pg.wait_for_selector("#incident-list pre.postmortem")
    text = pg.inner_text("#incident-list pre.postmortem")
    shot = shoot(pg, tmp_path, "postmortem")
    assert text.startswith(f"# Post-mortem: {iid}") and "## Timeline" in text, f"{text[:200]!r} (screenshot {shot})"


def test_accessible_structure_and_session_token(server: Server, page: tuple[Any, Console], tmp_path: Path) -> None:
    pg, _ = page
    pg.goto(server.base + "/dashboard")
    pg.wait_for_selector("body[data-ready]")
    assert pg.get_attribute("html", "lang") == "en"
    for role in ("banner", "navigation", "main"):
        assert pg.get_by_role(role).count() == 1, role
    unnamed = pg.eval_on_selector_all(
        "input, button", """els => els.filter(e => !e.labels?.length && !e.getAttribute('aria-label')
                                                   && !e.textContent.trim()).map(e => e.outerHTML)""")
    assert not unnamed, f"controls without a name: {unnamed}"
    assert pg.locator("table:not(:has(caption))").count() == 0, "every table has a caption"
    sign_in(pg, server, "viewer")
    assert pg.evaluate("sessionStorage.getItem('zeroops.token')") == server.tokens["viewer"]
    pg.reload()
    pg.wait_for_selector("body[data-roles]")  # the token survives a reload of the tab
    pg.get_by_role("button", name="Sign out").click()
    shot = shoot(pg, tmp_path, "signed-out")
    assert pg.evaluate("sessionStorage.getItem('zeroops.token')") is None, f"token kept after sign-out ({shot})"
    assert pg.inner_text("#whoami") == "Not signed in."


@pytest.mark.parametrize("token", ["not-a-token"])
def test_a_bad_token_is_refused_without_errors(server: Server, page: tuple[Any, Console], token: str) -> None:
    pg, console = page
    pg.goto(server.base + "/dashboard")
    pg.wait_for_selector("body[data-ready]")
    pg.get_by_label("Bearer token").fill(token)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_selector("#error:has-text('401')")
    assert pg.evaluate("sessionStorage.getItem('zeroops.token')") is None
    # the browser logs the refused request itself ("Failed to load resource: ... 401"): that one is expected
    console.errors[:] = [e for e in console.errors if "401" not in e]


def test_approver_denies_by_click(server: Server, page: tuple[Any, Console], tmp_path: Path) -> None:
    pg, _ = page
    sign_in(pg, server, "admin")
    pid = int(pg.locator("#approval-rows button.deny").first.get_attribute("data-id") or 0)
    pg.locator(f"#deny-{pid}").click()  # by id: the live queue re-renders and grows under the test
    pg.wait_for_selector(f"#approvals-result:has-text('Proposal {pid} denied')")
    shot = shoot(pg, tmp_path, "denied")
    proposal = next(p for p in server.get("/api/zeroops/approvals?status=all") if p["id"] == pid)
    assert proposal["status"] == "denied" and proposal["deniers"] == ["ada"], f"{proposal} (screenshot {shot})"


def file_request(pg: Any, project: str, count: int, cpus: int, memory_gb: int) -> str:
    pg.get_by_label("Kind", exact=True).select_option("vm_provision")
    pg.get_by_label("Project", exact=True).fill(project)
    pg.get_by_label("Count", exact=True).fill(str(count))
    pg.get_by_label("vCPUs", exact=True).fill(str(cpus))
    pg.get_by_label("Memory (GB)").fill(str(memory_gb))
    pg.get_by_label("Storage (GB)").fill("40")
    pg.locator("#requests-result").evaluate("n => n.textContent = ''")
    pg.get_by_role("button", name="Submit request").click()
    pg.wait_for_selector("#requests-result:has-text('filed')")
    m = re.search(r"Request (\S+) filed", pg.inner_text("#requests-result"))
    assert m, pg.inner_text("#requests-result")
    rid = m.group(1)
    pg.wait_for_selector(f"#request-{rid}:not([data-verdict=''])")  # decided by the policy, shown without a reload
    return rid


def test_requests_filed_and_answered_through_the_page(server: Server, page: tuple[Any, Console], tmp_path: Path) -> None:
    pg, _ = page
    sign_in(pg, server, "admin")
    pg.wait_for_selector("#request-form:not([hidden])")
    small = file_request(pg, "shop", 2, 2, 4)
    huge = file_request(pg, "shop", 40, 8, 16)
    shot = shoot(pg, tmp_path, "requests")
    for rid in (small, huge):
        api = server.get(f"/api/selfservice/requests/{rid}")
        row = pg.eval_on_selector_all(f"#request-{rid} td", "ts => ts.map(t => t.textContent)")
        d = api["decision"]
        assert row[7].startswith(f"{d['verdict']} · {d['rule']}"), f"{rid}: page {row[7]!r}, API {d} (screenshot {shot})"
        assert api["requester"] == "ada" and row[3] == "ada", f"{rid}: requester {api['requester']} (screenshot {shot})"
    assert server.get(f"/api/selfservice/requests/{huge}")["decision"]["verdict"] == "refuse", \
        f"40 x 8 vCPUs should break a hard limit (screenshot {shot})"
    # the scenario's 500/month budget leaves no headroom for two more servers: the policy routes it to a person
    d = server.get(f"/api/selfservice/requests/{small}")["decision"]
    assert d["verdict"] == "approval", f"expected a request routed to people, got {d} (screenshot {shot})"
    pg.locator(f"#rq-approve-{small}").click()
    pg.wait_for_selector(f"#requests-result:has-text('Request {small} approved')")
    shot = shoot(pg, tmp_path, "request-approved")
    after = server.get(f"/api/selfservice/requests/{small}")
    assert after["status"] != "open" or after["decision"]["approved_by"] == "ada", \
        f"{small} not approved by ada after the page approved it: {after} (screenshot {shot})"
    assert pg.locator(f"#rq-approve-{small}").count() == 0, f"{small} still offers Approve (screenshot {shot})"


def test_viewer_cannot_file_requests(server: Server, page: tuple[Any, Console], tmp_path: Path) -> None:
    pg, _ = page
    sign_in(pg, server, "viewer")
    pg.wait_for_selector("#requests-mode:has-text('Read-only')")
    assert pg.locator("#request-form").is_hidden(), f"a viewer sees the request form ({shoot(pg, tmp_path, 'rq-viewer')})"
