"""A sealed seam: an engine acts only through the actions it returns, and reads only what the adapter shows.

Three proofs:

(a) reachability: during a real twin step, the object graph reachable from the
    engine's ``Observation`` (its state, the values it cached, their fields,
    arrays, closures) holds no adapter, no twin ``World``, no ``GroundTruth``
    and nothing with an ``execute`` method;
(b) the known routes fail or change nothing in the world: ``obs.adapter``,
    ``obs.__dict__``, ``vars(obs)``, keeping the observation past the step,
    writing into a metric window's arrays or into the mappings an observation
    returns, mutating a returned ``Server`` or ``ServiceState``;
(c) what Python cannot forbid at run time (the class's functions reach the
    module globals, ``_READERS`` among them; ``gc``; ``sys.modules``;
    frames) is forbidden in the source: an AST check over ``engines/``.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import gc
import types
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapters import base
from adapters.base import Action, Observation
from adapters.sim import SimAdapter
from control.runtime import Runtime
from tests.builders import make_scenario
from twin.groundtruth import GroundTruth
from twin.world import World

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------- (a) reachability
_OPAQUE = (type, types.ModuleType, types.CodeType, types.FrameType, types.BuiltinFunctionType,
           types.WrapperDescriptorType, types.MethodDescriptorType, types.GetSetDescriptorType,
           types.MemberDescriptorType)


def reachable(root: Any, limit: int = 200_000) -> list[Any]:
    """Objects reachable from ``root``'s own state (breadth first, bounded).

    Classes, modules and code are not entered: every object reaches its class,
    and a class's functions reach their module's globals, i.e. everything.
    That route (``type(obs).x.__globals__``) is closed by the AST check (c).
    A function is entered through its closure cells and defaults only; a bound
    method through ``__self__``.
    """
    seen: set[int] = {id(root)}
    out: list[Any] = []
    todo: deque[Any] = deque([root])
    while todo and len(out) < limit:
        x = todo.popleft()
        out.append(x)
        if isinstance(x, _OPAQUE):
            continue
        if isinstance(x, types.FunctionType):
            nxt: Iterable[Any] = [c.cell_contents for c in (x.__closure__ or ()) if _filled(c)]
            nxt = [*nxt, *(x.__defaults__ or ()), *(x.__kwdefaults__ or {}).values()]
        elif isinstance(x, types.MethodType):
            nxt = [x.__self__, x.__func__]
        else:
            nxt = gc.get_referents(x)
            slots = [getattr(x, s) for c in type(x).__mro__ for s in getattr(c, "__slots__", ())
                     if isinstance(s, str) and s != "__weakref__" and hasattr(x, s)]
            nxt = [*nxt, *slots]
        for y in nxt:
            if id(y) not in seen:
                seen.add(id(y))
                todo.append(y)
    assert len(out) < limit, "the walk hit its bound: the observation reaches far too much"
    return out


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def leaks(objs: Iterable[Any]) -> list[str]:
    bad = []
    for x in objs:
        if isinstance(x, type):
            continue
        if isinstance(x, SimAdapter | World | GroundTruth) or hasattr(x, "execute"):
            bad.append(type(x).__name__)
        elif isinstance(x, types.MethodType) and hasattr(x.__self__, "execute"):
            bad.append(f"bound method of {type(x.__self__).__name__}")
    return bad


def _world() -> tuple[World, SimAdapter]:
    w = World(make_scenario())
    w.run(until=600)
    return w, SimAdapter(w)


def read_everything(obs: Observation) -> list[Any]:
    """Touch every view, so the observation caches as much as an engine could make it hold; returns what it read."""
    got: list[Any] = [obs.flavors, obs.hypervisors, obs.services, obs.quotas, obs.prices, obs.spend]
    for s in obs.servers():
        got += [s, obs.server(s.id)]
    for name in obs.services:
        for m in base.SERVICE_METRICS:
            got.append(obs.window(m, 300, service=name))
    for m in base.SERVICE_METRICS:
        got.append(obs.latest(m))
    got.append(obs.alerts(0.0))
    for view in (lambda: obs.budgets, lambda: obs.reservations, lambda: obs.incidents, lambda: obs.requests,
                 lambda: obs.deploys(0.0), lambda: obs.history("cpu_util", 3600, 300, service="api")):
        with contextlib.suppress(AttributeError):  # a view the twin's adapter does not have yet
            got.append(view())
    return got


class Probe:
    """An engine that reads everything, then walks what its observation reaches."""

    name = "probe"
    cadence = 10.0

    def __init__(self) -> None:
        self.kept: Observation | None = None
        self.reached: list[Any] = []

    def step(self, now: float, obs: Observation) -> list[Action]:
        self.reached = reachable([obs, *read_everything(obs)])  # the observation and everything it returned
        self.kept = obs
        return []


def test_nothing_that_acts_or_knows_the_truth_is_reachable_from_an_observation() -> None:
    w, adapter = _world()
    probe = Probe()
    Runtime(adapter, [probe]).step(probe, w.now())
    assert len(probe.reached) > 100, "the walk saw the views"
    assert any(isinstance(x, base.Server) for x in probe.reached)
    assert any(isinstance(x, np.ndarray) for x in probe.reached)
    assert leaks(probe.reached) == []


def test_the_walk_would_see_a_leak() -> None:
    """Positive control: the same walk finds an adapter held in a closure, a field, a bound method."""
    w, adapter = _world()
    held = types.SimpleNamespace(fn=(lambda: adapter.now()))
    assert "SimAdapter" in leaks(reachable(held))
    assert "GroundTruth" in leaks(reachable({"k": [w.truth]}))
    assert "World" in leaks(reachable([types.SimpleNamespace(world=w)]))
    assert leaks(reachable((adapter.execute,)))


def test_the_runtime_closes_each_observation_and_keeps_no_reader() -> None:
    w, adapter = _world()
    before = len(base._READERS)  # noqa: SLF001 - the test inspects the seal itself
    probe = Probe()
    rt = Runtime(adapter, [probe])
    for _ in range(3):
        rt.step(probe, w.now())
    assert len(base._READERS) == before  # noqa: SLF001
    with pytest.raises(RuntimeError, match="closed"):
        probe.kept.servers(status="ERROR")  # type: ignore[union-attr]  # a view not read during the step


# --------------------------------------------------------------- (b) the known routes
def test_the_observation_has_no_handle_and_no_dict() -> None:
    _, adapter = _world()
    obs = Observation(adapter, 0.0)
    try:
        for name in ("adapter", "world", "w", "_adapter", "execute"):
            assert not hasattr(obs, name)
        with pytest.raises(AttributeError):
            obs.__dict__  # noqa: B018
        with pytest.raises(TypeError):
            vars(obs)
        with pytest.raises(AttributeError):
            obs.adapter = adapter  # type: ignore[attr-defined]
    finally:
        obs.close()


def test_writes_through_what_an_observation_returns_fail_and_change_nothing() -> None:
    w, adapter = _world()
    obs = Observation(adapter, w.now())
    try:
        svc = obs.services["db"]
        srv = obs.servers(service="api")[0]
        win = obs.window("cpu_util", 300, service="api")
        truth = (adapter.services()[1].settings["pool_size"], adapter.server(srv.id).status,  # type: ignore[union-attr]
                 adapter.metric_window("cpu_util", {"service": "api"}, 300).v.copy())
        with pytest.raises(dataclasses.FrozenInstanceError):
            svc.active = 0  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            srv.status = "DELETED"  # type: ignore[misc]
        with pytest.raises(TypeError):
            svc.settings["pool_size"] = 1.0  # type: ignore[index]
        with pytest.raises(TypeError):
            srv.metadata["zeroops_request_id"] = "x"  # type: ignore[index]
        with pytest.raises(TypeError):
            obs.services["db"] = svc  # type: ignore[index]  # the gate reads the same observation
        with pytest.raises(TypeError):
            obs.latest("cpu_util")["api"] = 0.0  # type: ignore[index]
        with pytest.raises(ValueError, match="read-only"):
            win.v[:] = 0.0
        with pytest.raises(ValueError, match="read-only"):
            win.t[0] = 0.0
        for alert in obs.alerts(0.0):
            with pytest.raises(TypeError):
                alert.labels["severity"] = "info"  # type: ignore[index]
        # nothing of the world moved
        assert adapter.services()[1].settings["pool_size"] == truth[0]
        assert adapter.server(srv.id).status == truth[1]  # type: ignore[union-attr]
        assert np.array_equal(adapter.metric_window("cpu_util", {"service": "api"}, 300).v, truth[2], equal_nan=True)
    finally:
        obs.close()


def test_a_poisoned_observation_cache_does_not_mislead_the_gate() -> None:
    """The gate reads the engine's observation; the engine cannot write into what it cached."""
    from control.runtime import ChokePoint
    from control.safety import SafetyConfig, SafetyGate

    w, adapter = _world()
    seen: list[Any] = []

    class Spy(SafetyGate):
        def review(self, now: float, engine: str, action: Action, obs: Observation | None) -> Any:
            seen.append(obs.services.get("db") if obs is not None else None)
            return super().review(now, engine, action, obs)

    class Poisoner:
        name, cadence = "poisoner", 10.0

        def step(self, now: float, obs: Observation) -> list[Action]:
            with pytest.raises(AttributeError):  # the cache lives in the sealed reader table, not on the object
                obs._cache["services"] = base.FrozenDict()  # type: ignore[attr-defined]  # noqa: SLF001 - the attack
            with pytest.raises(AttributeError):
                obs._cache = {"services": base.FrozenDict()}  # type: ignore[attr-defined]  # noqa: SLF001
            return [base.Notify(component="db", message="x")]

    rt = Runtime(adapter, [Poisoner()], choke=ChokePoint(adapter, Spy(SafetyConfig())))
    rt.step(rt.engines[0], w.now())
    assert seen and seen[0] is not None and seen[0].name == "db"


def test_a_kept_observation_reads_nothing_new_after_its_step() -> None:
    w, adapter = _world()
    probe = Probe()
    Runtime(adapter, [probe]).step(probe, w.now())
    kept = probe.kept
    assert kept is not None
    w.run(until=w.now() + 600)
    with pytest.raises(RuntimeError, match="closed"):
        kept.window("cpu_util", 60, service="db")  # not read during the step
    with pytest.raises(RuntimeError, match="closed"):
        kept.server("srv-000000-never")


def test_the_adapter_is_not_reachable_from_an_action_either() -> None:
    """Actions are plain frozen records: an engine cannot smuggle a callback through one."""
    from adapters.base import ACTION_TYPES

    for cls in ACTION_TYPES.values():
        for f in dataclasses.fields(cls):
            assert "Callable" not in str(f.type), f"{cls.__name__}.{f.name} accepts a callable"


# --------------------------------------------------------------- (c) the AST check over engines/
# (module names are caught where they are imported, so a local variable may be called ``gc``)
FORBIDDEN_NAMES = {"_READERS", "__closure__", "__self__", "__globals__", "__code__",
                   "__builtins__", "f_globals", "f_locals", "f_back", "_getframe", "__subclasses__",
                   "get_referents", "get_referrers", "get_objects"}
FORBIDDEN_MODULES = {"gc", "inspect", "ctypes", "sys", "importlib"}


def _adapter_privates() -> set[str]:
    """Private names of the seam: module globals and Observation internals (``_reader``, ``_cache``, ``_get``...)."""
    names = {n for n in vars(base) if n.startswith("_") and not n.startswith("__")}
    names |= {n for n in dir(Observation) if n.startswith("_") and not n.startswith("__")}
    names |= set(Observation.__slots__) - {"now", "__weakref__"}
    return names


def violations(source: str, filename: str = "<engine>") -> list[str]:
    """What an engine's source does that could reach past the seam; [] when clean."""
    privates = _adapter_privates()
    tree = ast.parse(source, filename)
    out: list[str] = []

    def where(node: ast.AST) -> str:
        return f"{filename}:{getattr(node, 'lineno', '?')}"

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for m in mods:
                top = m.split(".")[0]
                if top in FORBIDDEN_MODULES:
                    out.append(f"{where(node)}: imports {m}")
                if top == "adapters" and m not in ("adapters", "adapters.base"):
                    out.append(f"{where(node)}: imports {m} (engines see adapters.base only)")
            if isinstance(node, ast.ImportFrom):
                for a in node.names:
                    if a.name.startswith("_") or a.name in FORBIDDEN_NAMES | FORBIDDEN_MODULES:
                        out.append(f"{where(node)}: imports {a.name} from {node.module}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            out.append(f"{where(node)}: uses {node.id}")
        elif isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_NAMES or node.attr == "modules":
                out.append(f"{where(node)}: reads .{node.attr}")
            elif node.attr in privates and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                out.append(f"{where(node)}: reads the seam's private .{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "vars", "__import__", "eval", "exec", "globals")):
            args = node.args[1:2] if node.func.id in ("getattr", "setattr") else []
            dynamic = not args or not (isinstance(args[0], ast.Constant) and not str(args[0].value).startswith("_"))
            if node.func.id in ("vars", "__import__", "eval", "exec", "globals") or dynamic:
                out.append(f"{where(node)}: calls {node.func.id}" + ("" if not args else " with a private or computed name"))
    return out


def test_no_engine_reaches_past_the_seam() -> None:
    found = []
    for path in sorted((ROOT / "engines").rglob("*.py")):
        found += violations(path.read_text(), str(path.relative_to(ROOT)))
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("snippet", [
    "from adapters.base import _READERS",
    "import adapters.base as b\nx = b._READERS",
    "def step(now, obs):\n    return obs._reader().execute(None)",
    "def step(now, obs):\n    obs._key = 0",
    "import gc\ngc.get_referents(1)",
    "import sys\nsys.modules['adapters.sim']",
    "import inspect",
    "def step(now, obs):\n    return type(obs).servers.__globals__",
    "def f(g):\n    return g.__closure__",
    "def f(m):\n    return m.__self__",
    "from adapters.sim import SimAdapter",
    "def f(obs, k):\n    return getattr(obs, k)",
    "def f(obs):\n    return getattr(obs, '_key')",
    "def f(obs):\n    return vars(obs)",
])
def test_the_ast_check_catches_each_route(snippet: str) -> None:
    assert violations(snippet), snippet


def test_the_ast_check_lets_ordinary_engine_code_through() -> None:
    ok = (
        "from adapters.base import CreateServer, Observation\n"
        "class E:\n"
        "    def __init__(self):\n        self._state = {}\n"
        "    def step(self, now, obs: Observation):\n"
        "        s = obs.services['api']\n        self._state['n'] = s.active\n"
        "        w = obs.window('cpu_util', 300, service='api')\n"
        "        return [CreateServer(service='api')] if getattr(s, 'active') < 2 else []\n"
    )
    assert violations(ok) == []
