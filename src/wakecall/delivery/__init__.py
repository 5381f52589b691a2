"""Delivery: what happens to events once stored (inbox reads, pushes, callbacks)."""

from __future__ import annotations

from wakecall.delivery.inbox import Inbox, InboxPage

__all__ = ["Inbox", "InboxPage"]
