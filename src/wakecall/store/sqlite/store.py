"""`SQLiteStore`: the embedded store, put together from its parts."""

from __future__ import annotations

from wakecall.store.sqlite.deliveries import DeliveryMethods
from wakecall.store.sqlite.events import EventMethods
from wakecall.store.sqlite.fires import FireMethods
from wakecall.store.sqlite.pruning import Pruning
from wakecall.store.sqlite.readers import ReaderMethods
from wakecall.store.sqlite.subscriptions import SubscriptionMethods
from wakecall.store.sqlite.task_writes import TaskWrites


class SQLiteStore(
    FireMethods,
    TaskWrites,
    EventMethods,
    DeliveryMethods,
    Pruning,
    ReaderMethods,
    SubscriptionMethods,
):
    """`Store` on one SQLite file. `path` may be ":memory:" for a private throwaway store."""
