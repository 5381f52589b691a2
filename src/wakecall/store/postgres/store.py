"""`PostgresStore`: the store for several nodes, put together from its parts."""

from __future__ import annotations

from datetime import datetime, timedelta

from wakecall.store.base import PassResult, Planner, fire_and_start_in_steps
from wakecall.store.postgres.deliveries import DeliveryMethods
from wakecall.store.postgres.fires import FireMethods
from wakecall.store.postgres.pruning import Pruning
from wakecall.store.postgres.readers import ReaderMethods
from wakecall.store.postgres.run_leases import RunLeases
from wakecall.store.postgres.subscriptions import SubscriptionMethods
from wakecall.store.postgres.task_writes import TaskWrites


class PostgresStore(
    FireMethods,
    RunLeases,
    TaskWrites,
    DeliveryMethods,
    Pruning,
    ReaderMethods,
    SubscriptionMethods,
):
    """`Store` on a PostgreSQL database, shared by any number of nodes.

    `url` is a libpq URL (`postgresql://user:password@host:port/database`); `schema` names the
    PostgreSQL schema that holds wakecall's tables (created when missing). Each node keeps a
    pool of `min_pool`..`max_pool` connections; a statement that takes longer than
    `command_timeout` seconds, or a connection not made within `connect_timeout`, is a
    `StoreError`."""

    async def fire_and_start(
        self,
        node: str,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        plan: Planner,
        start_limit: int,
        horizon: datetime | None = None,
    ) -> PassResult:
        # Claims are marked, so each step is its own transaction and nodes share the work.
        return await fire_and_start_in_steps(
            self,
            node,
            now,
            limit=limit,
            lease=lease,
            plan=plan,
            start_limit=start_limit,
            horizon=horizon,
        )
