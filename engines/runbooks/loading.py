"""Reading runbook files: YAML documents to validated :class:`Runbook` models, every problem one line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engines.runbooks.schema import AnomalyMatch, Escalate, Match, Runbook, RunbookError, Step, Verify


@dataclass(frozen=True)
class _Err:
    loc: str
    msg: str


def _errors(err: ValidationError) -> list[_Err]:
    out = []
    for e in err.errors():
        loc = ""
        for part in e["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else ("." if loc else "") + str(part)
        msg = str(e["msg"]).removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown field {e['loc'][-1]!r}; allowed: {', '.join(_allowed_at(e['loc'][:-1]))}"
            loc = loc.rsplit(".", 1)[0] if "." in loc else ""
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "literal_error":
            msg = f"{msg}, got {e.get('input')!r}"
        out.append(_Err(loc, " ".join(msg.split())))
    return out


def _allowed_at(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Runbook
    nested = {"match": Match, "verify": Verify, "escalate": Escalate, "steps": Step, "rollback": Step,
              "anomaly": AnomalyMatch}
    for part in loc:
        if isinstance(part, str) and part in nested:
            model = nested[part]
    return list(model.model_fields)


def parse_runbook(data: Any, source: str) -> Runbook:
    """Validate one runbook mapping read from ``source``; raises :class:`RunbookError`."""
    if not isinstance(data, dict):
        raise RunbookError(f"{source}: a runbook must be a mapping (name, steps, verify, ...), "
                           f"got {type(data).__name__}")
    try:
        rb = Runbook.model_validate(data)
    except ValidationError as e:
        raise RunbookError("\n".join(f"{source}: {x.loc or 'runbook'}: {x.msg}" for x in _errors(e))) from None
    rb._source = source
    return rb


def read_file(path: Path) -> list[Runbook]:
    """The runbooks of one YAML file (one document, a list, or several ``---`` documents)."""
    import yaml

    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RunbookError(f"{path}: no such file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise RunbookError(f"{path}{where}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunbookError(f"{path}: cannot read ({e})") from None
    items: list[Any] = []
    for d in docs:
        if d is None:
            continue
        items.extend(d if isinstance(d, list) else [d])
    if not items:
        raise RunbookError(f"{path}: no runbook in the file")
    out, errors = [], []
    for i, d in enumerate(items):
        src = str(path) if len(items) == 1 else f"{path}[{i}]"
        try:
            out.append(parse_runbook(d, src))
        except RunbookError as e:
            errors.append(str(e))
    if errors:
        raise RunbookError("\n".join(errors))
    return out

