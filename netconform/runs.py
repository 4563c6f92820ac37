"""What a run leaves on disk besides its reports: the namespaces it created, a note of those it could not delete
(the API server stopped answering), which the next run against the same server deletes first, and the layers a
precondition found broken, which every process of the run reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

REPORTS = Path(__file__).resolve().parent.parent / "reports"
NAMESPACES = "namespaces.txt"
LEFTOVERS = "leftover-namespaces.json"
MISSED = "missed-preconditions.txt"


@dataclass(frozen=True)
class RunFiles:
    reports: Path
    run: str

    @property
    def folder(self) -> Path:
        path = self.reports / self.run
        path.mkdir(parents=True, exist_ok=True)
        return path

    def record_namespace(self, name: str) -> None:
        """Append one created namespace (one short O_APPEND write: safe from several xdist workers at once)."""
        with (self.folder / NAMESPACES).open("a") as f:
            f.write(name + "\n")

    def recorded_namespaces(self) -> list[str]:
        path = self.reports / self.run / NAMESPACES
        return sorted(set(path.read_text().split())) if path.exists() else []

    def note_missed(self, layer: str) -> None:
        """Note a layer a precondition found broken (one short O_APPEND write, like a namespace)."""
        with (self.folder / MISSED).open("a") as f:
            f.write(layer + "\n")

    def missed(self) -> set[str]:
        """The layers a precondition of this run found broken so far, in any of its processes."""
        path = self.reports / self.run / MISSED
        return set(path.read_text().splitlines()) if path.exists() else set()

    def forget_missed(self) -> None:
        """A run id can be given again (NETCONFORM_RUN_ID): a new run starts knowing of no broken layer."""
        (self.reports / self.run / MISSED).unlink(missing_ok=True)

    def note_leftovers(self, server: str, names: list[str]) -> Path:
        path = self.folder / LEFTOVERS
        path.write_text(json.dumps({"server": server, "run": self.run, "namespaces": names}, indent=2))
        return path


def noted_leftovers(reports: Path, server: str) -> list[tuple[Path, str, list[str]]]:
    """(note, run id, namespaces) of earlier runs against `server` that could not delete their namespaces."""
    found = []
    for note in sorted(reports.glob(f"*/{LEFTOVERS}")):
        try:
            doc = json.loads(note.read_text())
        except (OSError, ValueError):
            continue
        if doc.get("server") == server:
            found.append((note, str(doc.get("run")), list(doc.get("namespaces") or [])))
    return found
