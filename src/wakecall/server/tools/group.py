"""What every group of tools shares: the runtime it answers on, the hint it adds to answers,
and how a list is cut into a page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["ToolGroup", "one_page"]


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=_HasId)


class ToolGroup:
    """Tools answered on one runtime."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def hinted(self, owner: str, view: Any) -> Any:
        """`view` with the hint of the owner's unread events, if any."""
        view.hint = await self.rt.inbox.hint(owner)
        return view


def one_page(found: Sequence[Item], limit: int) -> tuple[Sequence[Item], str | None]:
    """The first `limit` of `found` (read as `limit + 1`), and the cursor of the next page
    (None when there is none)."""
    page = found[:limit]
    return page, page[-1].id if len(found) > limit else None
