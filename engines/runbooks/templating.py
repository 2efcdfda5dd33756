"""Filling a step's ``{variables}`` in and building its adapter action."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from adapters.base import ACTION_TYPES, Action
from engines.runbooks.schema import Step

_WHOLE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class RenderError(ValueError):
    """A step's params cannot be filled in for this incident (an unbound variable, a missing key)."""


# ----------------------------------------------------------------- templating
def render(value: Any, env: Mapping[str, Any]) -> Any:
    """Fill ``{name}`` placeholders; a string that is one placeholder becomes the variable's own value."""
    if isinstance(value, str):
        m = _WHOLE.match(value)
        if m:
            if env.get(m.group(1)) is None:
                raise RenderError(f"{{{m.group(1)}}} is not known for this incident")
            return env[m.group(1)]
        try:
            return value.format_map(_Strict(env))
        except (KeyError, IndexError, AttributeError) as e:
            raise RenderError(f"{value!r}: {e} is not known for this incident") from None
    if isinstance(value, Mapping):
        return {render(k, env): render(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, env) for v in value]
    return value


class _Strict(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)

    def __getitem__(self, key: str) -> Any:
        v = super().__getitem__(key)
        if v is None:
            raise KeyError(key)
        return v


def _arith(text: str) -> float:
    """A number, or NUMBER OP NUMBER with OP one of + - * / (``'100 * 1.5'``, after templating)."""
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:([-+*/])\s*(-?\d+(?:\.\d+)?))?\s*", text)
    if not m:
        raise RenderError(f"{text!r} is not a number (or NUMBER OP NUMBER)")
    a = float(m.group(1))
    if m.group(2) is None:
        return a
    b = float(m.group(3))
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else float("nan")}[m.group(2)]


def build_action(step: Step, env: Mapping[str, Any], meta: Mapping[str, Any]) -> Action:
    """The step's action with its params filled from ``env`` and its explanation from ``meta``."""
    cls = ACTION_TYPES[step.action]
    types = {f.name: str(f.type) for f in fields(cls)}
    params: dict[str, Any] = {}
    for k, raw in step.params.items():
        v = render(raw, env)
        t = types[k].replace(" | None", "")
        if t in ("int", "float") and isinstance(v, str):
            v = _arith(v)
        if t == "int" and isinstance(v, float):
            v = int(round(v))
        elif t == "float" and isinstance(v, int | float) and not isinstance(v, bool):
            v = float(v)
        elif t == "str" and isinstance(v, int | float) and not isinstance(v, bool):
            v = str(v)
        elif t.startswith("tuple") and isinstance(v, list):
            v = tuple(v)
        params[k] = v
    try:
        return cls(**params, **meta)
    except (TypeError, ValueError) as e:
        raise RenderError(f"cannot build {step.action}: {e}") from None
