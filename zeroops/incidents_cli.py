"""``zeroops incidents list|show`` and ``zeroops postmortem``: incidents and their post-mortems.

They read a results folder (default ``out/``; see docs/results.md) or, with
``--db``, a live controller's audit trail plus the adapter's incident board
(``--journal``, default the state directory's ``live-journal.sqlite``, else ``.zeroops/live-journal.sqlite``, when
it exists).
Exit codes: 0 ok, 2 bad input (a missing folder or database, an unknown or
ambiguous id: the message names it and the ids that come close).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INPUT = 0, 2
DEFAULT_JOURNAL = Path(".zeroops/live-journal.sqlite")


def _runs(a: argparse.Namespace) -> list[Any]:
    """The records to read: the live trail (``--db``) or every matching run folder, result.json only for now."""
    from reports.incident_records import find_runs, load_live

    if a.db:
        from control.statedir import JOURNAL_FILE, state_dir

        default = state_dir() / JOURNAL_FILE  # live mode's journal, in the state directory
        if not default.is_file():
            default = DEFAULT_JOURNAL  # an older controller's, relative to the working directory
        journal = Path(a.journal) if a.journal else (default if default.is_file() else None)
        return [load_live(Path(a.db), journal)]
    return find_runs(Path(a.results_dir), a.scenario, a.engines)


def _read_json(path: Path) -> dict[str, Any]:
    from reports.incident_records import RecordsError

    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RecordsError(f"{path}: unreadable ({e})") from None
    if not isinstance(out, dict) or "incidents" not in out:
        raise RecordsError(f"{path}: field 'incidents' missing; not a result.json written by zeroops run/suite")
    return out


def _s(v: Any) -> str:
    """A cell: floats to 0.1 (seconds), None as ``-``."""
    if isinstance(v, float):
        return f"{v:.1f}".removesuffix(".0")
    return "-" if v is None else str(v)


def _table(heads: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def incident_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per ground-truth incident and per false declaration of a run's result.json."""
    rows = []
    for i in result.get("incidents") or []:
        rows.append([i["id"], i["type"], f"{i.get('true_severity') or '-'}/{i.get('declared_severity') or '-'}",
                     _s(i.get("start")), _s(i.get("ttd_s")), _s(i.get("ttr_s")) if i.get("end") is not None
                     else "open", i.get("resolved_by") or "-", _s(i.get("root_cause_rank"))])
    for d in result.get("declarations") or []:
        if d.get("verdict") == "false":
            rows.append([d["id"], "false declaration", f"-/{d.get('severity') or '-'}", _s(d.get("at")), "-", "-",
                         "-", "-"])
    return rows


def cmd_list(a: argparse.Namespace) -> int:
    runs = _runs(a)
    if a.db:
        from reports.postmortem import build_postmortems, when

        pms = build_postmortems(runs[0])
        rows = [[p.id, p.figures["declared_severity"] or "-", when(p.figures["declared_at"]), p.figures["declared_by"],
                 p.figures["status"], _s(p.figures["ttr_s"]), str(len(p.figures["decisions"]))] for p in pms]
        print(_table(["ID", "SEVERITY", "DECLARED AT", "BY", "STATUS", "RESOLVED AFTER S", "DECISIONS"], rows))
        print(f"{len(rows)} incident(s) declared in {a.db} (live: no ground truth)")
        return EXIT_OK
    heads = ["ID", "TYPE", "SEV TRUE/DECL", "ONSET S", "TTD S", "TTR S", "RESOLVED BY", "RCA RANK"]
    rows = []
    for folder in runs:
        for r in incident_rows(_read_json(folder / "result.json")):
            rows.append([f"{folder.parent.name}/{folder.name}", *r])
    print(_table(["RUN", *heads], rows))
    print(f"{len(rows)} incident(s) in {len(runs)} run(s)")
    return EXIT_OK


def _find(a: argparse.Namespace) -> Any:
    """The post-mortem of ``a.id`` (or ``scenario/engines/id``); one-line errors for unknown or ambiguous ids."""
    from reports.incident_records import RecordsError, load_run
    from reports.postmortem import build_postmortems

    want = a.id
    runs = _runs(a)
    if a.db:
        pms = build_postmortems(runs[0])
        hit = [p for p in pms if p.id == want]
        if hit:
            return hit[0]
        close = difflib.get_close_matches(want, [p.id for p in pms], n=5, cutoff=0.3)
        raise RecordsError(f"no incident {want!r} declared in {a.db}"
                           + (f"; close ids: {', '.join(close)}" if close else f" ({len(pms)} declared)"))
    prefix = None
    if want.count("/") >= 2:
        scn, eng, want = want.split("/", 2)
        prefix = (scn, eng)
    found, known = [], []
    for folder in runs:
        run_name = (folder.parent.name, folder.name)
        if prefix and run_name != prefix:
            continue
        res = _read_json(folder / "result.json")
        ids = {i["id"]: i["id"] for i in res.get("incidents") or []}
        ids |= {i["declared_id"]: i["id"] for i in res.get("incidents") or [] if i.get("declared_id")}
        ids |= {d["id"]: d["fault"] for d in res.get("declarations") or [] if d.get("verdict") == "duplicate"
                and d.get("fault")}
        ids |= {d["id"]: d["id"] for d in res.get("declarations") or [] if d.get("verdict") == "false"}
        known += [f"{run_name[0]}/{run_name[1]}/{k}" for k in ids]
        if want in ids:
            found.append((folder, ids[want]))
    if not found:
        close = difflib.get_close_matches(a.id, known + [k.split("/", 2)[2] for k in known], n=5, cutoff=0.3)
        raise RecordsError(f"no incident {a.id!r} in {a.results_dir}"
                           + (f"; close ids: {', '.join(dict.fromkeys(close))}" if close else
                              f" ({len(known)} incidents; see zeroops incidents list)"))
    if len(found) > 1:
        where = ", ".join(f"{f.parent.name}/{f.name}/{pid}" for f, pid in found)
        raise RecordsError(f"incident {a.id!r} is in {len(found)} runs: give --scenario and --engines, or one of "
                           f"{where}")
    folder, pid = found[0]
    return next(p for p in build_postmortems(load_run(folder)) if p.id == pid)


def cmd_show(a: argparse.Namespace) -> int:
    from reports.postmortem import Event, when

    pm = _find(a)
    f = pm.figures
    lines = [f"Incident {pm.id}  ({pm.run}): {pm.title}", *pm.summary, ""]
    keys = ("true_severity", "declared_severity", "declared_id", "declared_by", "detected_by", "ttd_s", "ttm_s",
            "ttr_s", "resolved_by", "root_component", "root_cause_rank", "user_impact", "failed_user_requests",
            "slo_minutes_user", "cost", "status")
    shown = {"user_impact": lambda v: f"{100 * v:.3f} % of user-facing requests failed",
             "failed_user_requests": lambda v: f"{v:,.0f}", "slo_minutes_user": lambda v: f"{v:.2f} min",
             "cost": lambda v: f"{v:.4f} spent while it was open"}
    lines += [f"  {k + ':':<22}{_s(f[k]) if f[k] is None or k not in shown else shown[k](f[k])}"
              for k in keys if k in f]
    lines += ["", "Timeline:"]
    lines += [f"  {when(e.at):<28} {e.text}" for e in sorted(pm.timeline, key=Event.key)]
    lines += ["", "Follow-ups:", *(f"  {x[2:] if x.startswith('- ') else x}" for x in pm.follow_ups or ["- none"])]
    print("\n".join(lines))
    return EXIT_OK


def cmd_postmortem(a: argparse.Namespace) -> int:
    from reports.incident_records import RecordsError

    text = _find(a).markdown()
    if a.out:
        try:
            Path(a.out).write_text(text)
        except OSError as e:
            raise RecordsError(f"--out {a.out}: cannot write ({e.strerror})") from None
        print(f"wrote {a.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _guard(fn: Any) -> Any:
    def run(a: argparse.Namespace) -> int:
        from reports.incident_records import RecordsError

        try:
            return int(fn(a))
        except BrokenPipeError:
            raise
        except RecordsError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_INPUT

    return run


def _common(p: argparse.ArgumentParser, with_id: bool) -> None:
    if with_id:
        p.add_argument("id", metavar="ID", help="incident id (a fault id, a declared id, or SCENARIO/ENGINES/ID)")
    p.add_argument("results_dir", metavar="RESULTS_DIR", nargs="?", default="out",
                   help="results folder written by zeroops run/suite, or one run folder (default: out/)")
    p.add_argument("--scenario", help="only this scenario's runs")
    p.add_argument("--engines", help="only this engine set's runs")
    p.add_argument("--db", help="live mode: read the audit database instead of a results folder")
    p.add_argument("--journal", help=f"live mode: the adapter's journal holding the incident board (default: "
                   f"{DEFAULT_JOURNAL} when it exists)")


def add_incidents_parsers(sub: Any) -> None:
    """Add ``incidents list|show`` and ``postmortem`` to the ``zeroops`` sub-parsers."""
    inc = sub.add_parser("incidents", help="incidents of a run (or of the live audit trail)").add_subparsers(
        dest="incidents_cmd", metavar="{list,show}", required=True)
    p = inc.add_parser("list", help="one row per incident: type, true/declared severity, onset, TTD, TTR, "
                       "resolved by, root-cause rank", description="List the incidents of every run in RESULTS_DIR.")
    _common(p, False)
    p.set_defaults(fn=_guard(cmd_list))
    p = inc.add_parser("show", help="one incident: figures, timeline and follow-ups")
    _common(p, True)
    p.set_defaults(fn=_guard(cmd_show))
    p = sub.add_parser("postmortem", help="print (or write) an incident's Markdown post-mortem",
                       description="The Markdown post-mortem of one incident, built from the run's records.")
    _common(p, True)
    p.add_argument("--out", metavar="FILE", help="write it to FILE instead of stdout")
    p.set_defaults(fn=_guard(cmd_postmortem))
