"""Loading scenario files with errors that name the file, the field and what is allowed.

The guarantee: :func:`load_scenario` returns a :class:`Scenario` that can be
built, or raises :class:`ScenarioError` whose message names the file (and the
field, and what is allowed) -- never another exception.  A file with one
problem gets a one-line message ``FILE: FIELD: what is wrong``.  Trace files
are opened and checked too (columns, values, the start/end window, gaps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from scenarios.schema import Scenario


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message says where and why."""


MAX_VALUES = 1_000_000  # values in a document, aliases expanded: a billion-laughs file would take hours to check


def _expanded_size(data: Any, limit: int) -> int:
    """How many values ``data`` holds with shared (aliased) parts counted each time; stops past ``limit``."""
    n, stack = 0, [data]
    while stack and n <= limit:
        x = stack.pop()
        n += 1
        if isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return n


def load_scenario(path: str | Path, check_files: bool = True) -> Scenario:
    """Read and validate ``path``; ``check_files``: also open and check the trace files it replays."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{p}: is a directory, expected a .yaml file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{p}: cannot read ({e})") from None
    scn = parse_scenario(text, p)
    if check_files:
        check_traces(scn, p)
    return scn


def check_traces(scn: Scenario, path: Path) -> None:
    """Open every trace the scenario replays (relative to the scenario's folder) as a run would.

    Gaps are reported as :class:`twin.traffic.TraceNotice` warnings; errors raise ScenarioError.
    """
    from twin.config import Trace
    from twin.traffic import calendar_offset, read_trace

    for i, s in enumerate(scn.services):
        for j, c in enumerate(s.traffic.components if s.traffic else []):
            if isinstance(c, Trace):
                try:
                    read_trace(c, path.parent)
                except ValueError as e:
                    raise ScenarioError(f"{path}: services[{i}] ({s.name}).traffic.components[{j}].file: {e}") from None
        if s.traffic is not None:
            try:
                calendar_offset(s.traffic._start_time, s.traffic._anchor_trace, path.parent)
            except ValueError as e:
                raise ScenarioError(f"{path}: {e}") from None


def parse_scenario(text: str, path: Path) -> Scenario:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ScenarioError(f"{path}{where}: invalid YAML: {problem}") from None
    except (RecursionError, ValueError, OverflowError) as e:  # nesting too deep, a number YAML cannot hold
        raise ScenarioError(f"{path}: invalid YAML: {type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario must be a mapping of fields (name, duration, regions, ...), "
                            f"got {type(data).__name__}")
    if _expanded_size(data, MAX_VALUES) > MAX_VALUES:
        raise ScenarioError(f"{path}: the document expands to more than {MAX_VALUES:,} values (YAML aliases "
                            f"repeating lists?); a scenario is far smaller")
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(format_errors(path, e, Scenario)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        raise ScenarioError(f"{path}: {e}") from None


def format_errors(path: Path, err: ValidationError, model: type[BaseModel]) -> str:
    """One line ``FILE: FIELD: problem`` for one error; a count and one indented line each for several."""
    lines = [f"{path}: {err.error_count()} error(s)"]
    for e in err.errors():
        loc = _loc(e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            allowed = _fields_at(model, e["loc"][:-1])
            msg = f"unknown field {e['loc'][-1]!r}" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown type; {msg}"
        elif e["type"] == "finite_number":
            msg = "must be a finite number (not .inf or .nan)"
        elif e["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            msg = f"{msg}, got {_short(e.get('input'))}"
        msg = " ".join(str(msg).split())  # one line, whatever the input held
        lines.append(f"  {loc}: {msg}" if loc else f"  {msg}")  # top level: the message names its field
    if len(lines) == 2:
        return f"{path}: {lines[1].strip()}"
    return "\n".join(lines)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found at ``loc`` (best effort through lists, dicts and unions)."""
    import typing

    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None:
            return []
        if part not in fields:
            # a tagged union member named by its tag: search the union's members
            return []
        ann = fields[part].annotation
        current = _model_in(ann, typing)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    if not fields:
        return []
    return sorted((f.alias or k) for k, f in fields.items())


def _model_in(ann: Any, typing: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        m = _model_in(arg, typing)
        if m is not None:
            return m
    return None
