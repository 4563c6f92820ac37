"""A failed check's diagnosis: expected, observed, the objects involved and a command that reproduces it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Diagnosis:
    what: str
    expected: str
    observed: str
    objects: tuple[str, ...] = ()
    reproduce: tuple[str, ...] = ()
    hint: str | None = None

    def message(self) -> str:
        lines = [self.what, f"  expected: {self.expected}", f"  observed: {self.observed}"]
        if self.objects:  # each once: a probe's pod is often also among the objects its check names
            lines.append(f"  objects:  {'; '.join(dict.fromkeys(self.objects))}")
        for i, cmd in enumerate(self.reproduce):
            lines.append(f"  {'reproduce:' if i == 0 else '          '} {cmd}")
        if self.hint:
            lines.append(f"  hint:     {self.hint}")
        return "\n".join(lines)


@dataclass
class Involved:
    """Pods whose logs and namespaces whose events belong in a failed test's report."""

    pods: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name)
    namespaces: list[str] = field(default_factory=list)

    def add_pods(self, namespace: str, names: Iterable[str]) -> None:
        for n in names:
            if (namespace, n) not in self.pods:
                self.pods.append((namespace, n))
        if namespace not in self.namespaces:
            self.namespaces.append(namespace)


def summarize_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "(no answers)"
