"""Ids as a person types them: the whole id, or a prefix of it (at least `MIN_ID_PREFIX`
characters, as tables show ids) that starts exactly one of the owner's ids."""

from __future__ import annotations

from collections.abc import Sequence

from wakecall.cli.context import Context
from wakecall.cli.tables import MIN_ID_PREFIX, abbreviate_ids
from wakecall.errors import InvalidInput, NotFound, TaskNotFound

__all__ = ["AmbiguousId", "delivery_id_of", "task_id_of", "task_names"]

#: Candidates named in the message about an ambiguous prefix.
SHOWN_CANDIDATES = 5
_PAGE = 500


class AmbiguousId(InvalidInput):
    """A prefix that starts several of the owner's ids."""

    def __init__(self, what: str, prefix: str, candidates: Sequence[tuple[str, str]]):
        self.prefix = prefix
        self.candidates = [found for found, _ in candidates]
        named = [
            f"{found} ({label})" if label else found
            for found, label in candidates[:SHOWN_CANDIDATES]
        ]
        more = len(candidates) - len(named)
        listed = ", ".join(named) + (f" and {more} more" if more else "")
        example = abbreviate_ids(self.candidates, minimum=len(prefix) + 1)[self.candidates[0]]
        super().__init__(
            f"{what} id {prefix!r} is ambiguous: {len(candidates)} {_PLURAL[what]} start with "
            f"it: {listed}; give more of the id, as in {example}"
        )


_PLURAL = {"task": "tasks", "delivery": "deliveries"}


async def task_id_of(ctx: Context, given: str, *, missing_ok: bool = False) -> str:
    """The id of the owner's task `given` names. An unknown id raises `TaskNotFound`, or is
    returned as given when `missing_ok` (a filter may name a deleted task)."""
    try:
        await ctx.service.get(ctx.owner, given)
        return given
    except TaskNotFound:
        if len(given) < MIN_ID_PREFIX:
            if missing_ok:
                return given
            raise
    tasks = await ctx.service.list_all(ctx.owner)
    matches = [(t.id, t.name) for t in tasks if t.id.startswith(given)]
    return _one(matches, "task", given, missing_ok=missing_ok, missing=TaskNotFound(given))


async def delivery_id_of(ctx: Context, given: str) -> str:
    """The id of the owner's callback delivery `given` names (`NotFound` if none)."""
    missing = NotFound(
        f"no delivery with id {given!r} for owner {ctx.owner!r}; "
        "`wakecall deliveries --status all` shows them"
    )
    matches: list[tuple[str, str]] = []
    before: str | None = None
    while True:
        page = await ctx.service.list_deliveries(ctx.owner, before=before, limit=_PAGE)
        if any(d.id == given for d in page):
            return given
        if len(given) >= MIN_ID_PREFIX:
            matches += [(d.id, str(d.event_type)) for d in page if d.id.startswith(given)]
        if len(page) < _PAGE:
            break
        before = page[-1].id
    return _one(matches, "delivery", given, missing_ok=False, missing=missing)


def _one(
    matches: list[tuple[str, str]],
    what: str,
    given: str,
    *,
    missing_ok: bool,
    missing: Exception,
) -> str:
    if len(matches) == 1:
        return matches[0][0]
    if matches:
        raise AmbiguousId(what, given, sorted(matches))
    if missing_ok:
        return given
    raise missing


async def task_names(ctx: Context, task_ids: set[str]) -> dict[str, str]:
    """The names of those of `task_ids` that are the owner's tasks (deleted ones are left out)."""
    names: dict[str, str] = {}
    for task_id in sorted(task_ids):
        try:
            names[task_id] = (await ctx.service.get(ctx.owner, task_id)).name
        except TaskNotFound:
            continue
    return names
