"""What applying a task file did (or, in a dry run, would do): one `TaskChange` per task and an
`ApplyReport` with them all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["OPS", "ApplyReport", "Op", "TaskChange"]

Op = Literal["create", "change", "unchanged", "delete"]
OPS: tuple[Op, ...] = ("create", "change", "unchanged", "delete")
_SYMBOLS = {"create": "+", "change": "~", "unchanged": "=", "delete": "-"}
_DONE = {"create": "created", "change": "changed", "unchanged": "unchanged", "delete": "deleted"}
_PLANNED = {
    "create": "would be created",
    "change": "would change",
    "unchanged": "unchanged",
    "delete": "would be deleted",
}


@dataclass(frozen=True)
class TaskChange:
    """What applying a file did (or, in a dry run, would do) to one task."""

    op: Op
    id: str
    name: str
    fields: tuple[str, ...] = ()  # for a change: the file fields that differ
    status: str | None = None  # the task's status after the apply
    line: int | None = None
    callback_secret: str | None = None  # issued for a new callback URL; shown once
    trigger_secret: str | None = None  # issued for a new or changed trigger; shown once

    def describe(self, *, dry_run: bool = False, secrets_in: str | None = None) -> str:
        """One line; with `secrets_in`, a new callback secret is named as written there, not
        shown (for a log)."""
        verb = (_PLANNED if dry_run else _DONE)[self.op]
        text = f"{_SYMBOLS[self.op]} {self.id} ({self.name}): {verb}"
        if self.fields:
            text += f" ({', '.join(self.fields)})"
        if self.status in ("completed", "expired"):
            text += f" [{self.status}]"
        for what, secret in (("callback", self.callback_secret), ("trigger", self.trigger_secret)):
            if secret and secrets_in is not None:
                text += f"; its {what} secret is in {secrets_in}"
            elif secret:
                text += f"; {what} secret {secret} (shown once)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "id": self.id,
            "name": self.name,
            "fields": list(self.fields),
            "status": self.status,
            "line": self.line,
            "callback_secret": self.callback_secret,
            "trigger_secret": self.trigger_secret,
        }


@dataclass(frozen=True)
class ApplyReport:
    source: str
    owner: str
    dry_run: bool
    changes: tuple[TaskChange, ...]
    #: Ids of the owner's tasks the file does not name, left as they are (without `prune`).
    unnamed: tuple[str, ...] = ()

    def count(self, op: Op) -> int:
        return sum(1 for c in self.changes if c.op == op)

    def summary(self) -> str:
        planned = self.dry_run
        parts = [
            f"{self.count('create')} {'to create' if planned else 'created'}",
            f"{self.count('change')} {'to change' if planned else 'changed'}",
            f"{self.count('unchanged')} unchanged",
        ]
        if self.count("delete"):
            parts.append(f"{self.count('delete')} {'to delete' if planned else 'deleted'}")
        text = ", ".join(parts)
        if self.unnamed:
            text += (
                f"; {len(self.unnamed)} task{'s' if len(self.unnamed) != 1 else ''} not in the "
                "file left as they are (--prune deletes them)"
            )
        if self.dry_run:
            text += "; dry run: nothing was changed"
        return text

    def lines(self, *, secrets_in: str | None = None) -> list[str]:
        """The report, a line per task and a summary; see `TaskChange.describe`."""
        described = [c.describe(dry_run=self.dry_run, secrets_in=secrets_in) for c in self.changes]
        return [*described, self.summary()]

    def secrets(self) -> dict[str, str]:
        """The callback secrets this apply issued, by task id."""
        return {c.id: c.callback_secret for c in self.changes if c.callback_secret}

    def trigger_secrets(self) -> dict[str, str]:
        """The inbound-event (trigger) secrets this apply issued, by task id."""
        return {c.id: c.trigger_secret for c in self.changes if c.trigger_secret}

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "owner": self.owner,
            "dry_run": self.dry_run,
            "changes": [c.to_json() for c in self.changes],
            "unnamed": list(self.unnamed),
            "counts": {op: self.count(op) for op in OPS},
        }
