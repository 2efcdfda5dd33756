"""``zeroops runbooks list|show NAME|validate FILE_OR_DIR...``: the runbook library from the command line.

``list`` and ``show`` read the built-in library, then ``$ZEROOPS_RUNBOOKS``, then each ``--dir`` (a later
runbook replaces an earlier one of the same name). ``validate`` checks files or folders on their own and
exits 2 with one line per problem (file, field, what is allowed).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

EXIT_OK, EXIT_INPUT = 0, 2


def _load(a: argparse.Namespace) -> Any:
    from engines.runbooks import RunbookLibrary

    return RunbookLibrary.load(a.dir or [])


def _what(rb: Any) -> str:
    parts = ["|".join(rb.fault_classes)] if rb.fault_classes else []
    m = rb.match.model_dump(exclude_none=True) if rb.match is not None else {}
    for k, v in m.items():
        if k == "anomaly":
            v = "|".join("/".join(str(x[f]) for f in ("metric", "source") if x.get(f)) for x in v)
        elif k == "recent_deploy":
            v = f"{v / 3600:g}h" if v >= 3600 else f"{v:g}s"
        elif isinstance(v, list):
            v = "|".join(map(str, v))
        parts.append(f"{k}={v}")
    return " ".join(parts)


def cmd_list(a: argparse.Namespace) -> int:
    lib = _load(a)
    rows = [(rb.name, _what(rb), " -> ".join(s.action for s in rb.steps),
             "; ".join(c.text for c in rb.verify.conditions) if rb.verify else "-") for rb in lib]
    head = ("NAME", "MATCHES", "STEPS", "VERIFY")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    for r in [head, *rows]:
        print("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    return EXIT_OK


def cmd_show(a: argparse.Namespace) -> int:
    from engines.runbooks import RunbookError

    lib = _load(a)
    try:
        rb = lib.get(a.name)
    except RunbookError as e:
        print(f"zeroops runbooks show: {e}", file=sys.stderr)
        return EXIT_INPUT
    data = rb.model_dump(exclude_defaults=True, mode="json")
    data["description"] = " ".join(rb.description.split())
    if rb.verify is not None:
        data["verify"] = {"within": rb.verify.within, "conditions": [c.text for c in rb.verify.conditions]}
    print(f"# {rb.source}")
    print(yaml.safe_dump(data, sort_keys=False, width=110).rstrip())
    return EXIT_OK


def cmd_validate(a: argparse.Namespace) -> int:
    from engines.runbooks import RunbookError, read_paths

    try:
        books = read_paths(a.paths)
    except RunbookError as e:
        print(str(e), file=sys.stderr)
        return EXIT_INPUT
    print(f"{len(books)} runbook(s) valid: {', '.join(rb.name for rb in books)}")
    return EXIT_OK


def add_runbooks_parser(sub: Any) -> None:
    """Add ``runbooks`` to the ``zeroops`` sub-parsers."""
    p = sub.add_parser("runbooks", help="list, show and validate incident runbooks (YAML)",
                       description="The runbook library: the built-in runbooks, $ZEROOPS_RUNBOOKS and --dir folders.")
    r = p.add_subparsers(dest="runbooks_cmd", metavar="{list,show,validate}", required=True)

    def dirs(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dir", action="append", metavar="DIR", help="also read runbooks from this folder "
                       "(repeatable; after the built-in ones and $ZEROOPS_RUNBOOKS)")

    q = r.add_parser("list", help="every runbook: what it matches, its steps and its verification")
    dirs(q)
    q.set_defaults(fn=_guard(cmd_list))
    q = r.add_parser("show", help="one runbook in full")
    q.add_argument("name", metavar="NAME")
    dirs(q)
    q.set_defaults(fn=_guard(cmd_show))
    q = r.add_parser("validate", help="check runbook files or folders; exit 2 with one line per problem")
    q.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    q.set_defaults(fn=cmd_validate)


def _guard(fn: Any) -> Any:
    """A broken library (a bad file in $ZEROOPS_RUNBOOKS or --dir) is exit 2 with its errors, not a traceback."""

    def run(a: argparse.Namespace) -> int:
        from engines.runbooks import RunbookError

        try:
            return int(fn(a))
        except RunbookError as e:
            print(str(e), file=sys.stderr)
            return EXIT_INPUT

    return run
