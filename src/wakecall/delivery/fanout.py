"""The in-process fan-out: who hears of events as this process writes them, and of the hints
the store gives about changes other processes made.

The engine publishes here after each write; the inbox, the pushes to live sessions and the
callback dispatcher listen. Listeners run on the event loop and must not block; one that
raises is logged and the others still hear.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from wakecall.models import Event
from wakecall.store.base import Hint, HintListener

__all__ = ["EventFanout", "EventListener"]

log = logging.getLogger(__name__)

#: Called with each batch of events just written. Must not block; runs on the engine's loop.
EventListener = Callable[[Sequence[Event]], None]


class EventFanout:
    def __init__(self) -> None:
        self._listeners: list[EventListener] = []
        self._hint_listeners: list[HintListener] = []

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: EventListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_hint_listener(self, listener: HintListener) -> None:
        """Hear of changes other processes made to the store (see `Store.watch`)."""
        self._hint_listeners.append(listener)

    def remove_hint_listener(self, listener: HintListener) -> None:
        if listener in self._hint_listeners:
            self._hint_listeners.remove(listener)

    def publish(self, events: Sequence[Event]) -> None:
        """Tell every listener of `events`, just written by this process."""
        if not events:
            return
        for listener in list(self._listeners):
            try:
                listener(events)
            except Exception:  # a listener's bug must not stop the writer
                log.exception("event listener %r failed", listener)

    def hint(self, hint: Hint) -> None:
        """Tell every hint listener of `hint`, from the store's watch."""
        for listener in list(self._hint_listeners):
            try:
                listener(hint)
            except Exception:  # a listener's bug must not stop the watch
                log.exception("hint listener %r failed", listener)
