"""The dependency graph as the adapter shows it (``obs.services[..].dependencies``): who calls whom."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class Topology:
    """Transitive dependencies and callers of services; unknown names have neither."""

    def __init__(self, deps: Mapping[str, Iterable[str]]) -> None:
        self.deps = {s: tuple(d) for s, d in deps.items()}
        self.callers: dict[str, set[str]] = {s: set() for s in self.deps}
        for s, ds in self.deps.items():
            for d in ds:
                self.callers.setdefault(d, set()).add(s)
        self._below: dict[str, frozenset[str]] = {}
        self._above: dict[str, frozenset[str]] = {}

    @classmethod
    def of(cls, services: Mapping[str, object]) -> Topology:
        return cls({name: getattr(s, "dependencies", ()) for name, s in services.items()})

    def _walk(self, start: str, edges: Mapping[str, Iterable[str]]) -> frozenset[str]:
        out: set[str] = set()
        todo = [start]
        while todo:
            for n in edges.get(todo.pop(), ()):
                if n not in out and n != start:
                    out.add(n)
                    todo.append(n)
        return frozenset(out)

    def below(self, service: str) -> frozenset[str]:
        """Every service ``service`` depends on, transitively (where its symptoms' causes may sit)."""
        if service not in self._below:
            self._below[service] = self._walk(service, self.deps)
        return self._below[service]

    def above(self, service: str) -> frozenset[str]:
        """Every service that depends on ``service``, transitively (where its failure shows up)."""
        if service not in self._above:
            self._above[service] = self._walk(service, self.callers)
        return self._above[service]

    def related(self, a: str, b: str) -> bool:
        """Same service, or one depends on the other (transitively)."""
        return bool(a) and bool(b) and (a == b or b in self.below(a) or a in self.below(b))

    def edge(self) -> set[str]:
        """User-facing services: the ones nothing calls."""
        return {s for s in self.deps if not self.callers.get(s)}

    def size(self) -> int:
        return len(self.deps)
