"""The runtime of a server process: the store, the engine, the task service and what delivers
events (the inbox, pushes to live sessions, callbacks), started once per process by
`open_runtime` and shared by every MCP session.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio

from wakecall.actions import default_executors
from wakecall.actions.command import CommandExecutor
from wakecall.actions.condition import ConditionChecker
from wakecall.actions.webhook import WebhookExecutor
from wakecall.clock import Clock
from wakecall.delivery import Inbox
from wakecall.delivery.callbacks import CallbackDispatcher
from wakecall.delivery.fanout import EventFanout
from wakecall.delivery.subscriptions import SubscriptionFeeder
from wakecall.engine import Engine, EngineConfig, TaskService
from wakecall.errors import InvalidInput
from wakecall.net import OutboundPolicy, build_http_client
from wakecall.server.auth import current_owner
from wakecall.server.metrics import Metrics
from wakecall.server.push import OwnerBus, Pusher, SessionRegistry
from wakecall.settings import Settings
from wakecall.store import Store, clock_of, open_store

__all__ = ["Runtime", "open_runtime"]


@dataclass
class Runtime:
    """What the tools need, shared by every session of the process."""

    engine: Engine
    tasks: TaskService
    settings: Settings
    inbox: Inbox
    pusher: Pusher
    registry: SessionRegistry
    bus: OwnerBus
    callbacks: CallbackDispatcher
    outbound: OutboundPolicy
    metrics: Metrics
    #: Feeds MCP Events webhook subscriptions into the delivery queue.
    feeder: SubscriptionFeeder

    def owner(self) -> str:
        return current_owner(self.settings.owner)


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    config: EngineConfig | None = None,
    executors: dict[str, Any] | None = None,
    registry: SessionRegistry | None = None,
    bus: OwnerBus | None = None,
) -> AsyncIterator[Runtime]:
    """Open the store, start the engine and the push task; stop them all on exit. A server
    built before the runtime passes its session `registry` and subscription `bus`."""
    own_store = store is None
    if store is None:
        store = open_store(
            settings.store_path, pg_schema=settings.pg_schema, pg_pool=settings.pg_pool
        )
    outbound = OutboundPolicy.parse_allow(settings.allow_outbound)
    verify = _trust(settings.outbound_ca)
    await store.open()
    try:
        async with build_http_client(outbound, verify=verify) as client:
            if executors is None:
                executors = {
                    **default_executors(),
                    "webhook": WebhookExecutor(client),
                    "command": CommandExecutor(settings.action_policy().commands),
                }
            fanout = EventFanout()
            async with Engine(
                store,
                clock=clock or clock_of(store),
                config=config or settings.engine_config(),
                executors=executors,
                conditions=ConditionChecker(client),
                fanout=fanout,
            ) as engine:
                registry = registry or SessionRegistry()
                bus = bus or OwnerBus(lambda: current_owner(settings.owner))
                async with _deliveries(settings, engine, client, outbound, registry, bus) as parts:
                    pusher, callbacks, metrics, feeder = parts
                    yield Runtime(
                        engine,
                        settings.task_service(store, engine.clock, engine.config, engine),
                        settings,
                        Inbox(store, fanout, clock=engine.clock),
                        pusher,
                        registry,
                        bus,
                        callbacks,
                        outbound,
                        metrics,
                        feeder,
                    )
    finally:
        if own_store:
            await store.close()


def _trust(ca_file: str | None) -> ssl.SSLContext | bool:
    """What outgoing HTTPS trusts: the system's authorities, and those of `ca_file`."""
    if not ca_file:
        return True
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(
            f"cannot read certificate authorities from {ca_file}: {exc}",
            field="outbound_ca",
            example="--outbound-ca /etc/ssl/private-ca.pem",
        ) from exc
    return context


@asynccontextmanager
async def _deliveries(
    settings: Settings,
    engine: Engine,
    client: Any,
    outbound: OutboundPolicy,
    registry: SessionRegistry,
    bus: OwnerBus,
) -> AsyncIterator[tuple[Pusher, CallbackDispatcher, Metrics, SubscriptionFeeder]]:
    """Pushes to live sessions, callbacks (and webhook subscriptions' deliveries) and metrics,
    listening to the engine, with their background tasks running until exit."""
    store, fanout = engine.store, engine.fanout
    pusher = Pusher(
        bus,
        registry,
        store,
        channel=settings.channel,
        poll_interval=engine.config.poll_interval.total_seconds(),
    )
    callbacks = CallbackDispatcher(
        store,
        client,
        clock=engine.clock,
        node=engine.node,
        # Long enough for one attempt (10 s at most) and for recording it; if the node dies,
        # another resends after this (same webhook-id).
        lease=max(settings.lease, timedelta(seconds=20)),
        max_attempts=settings.callback_attempts,
        poll_interval=engine.config.poll_interval,
    )
    feeder = SubscriptionFeeder(
        store,
        clock=engine.clock,
        poll_interval=engine.config.poll_interval,
        on_queued=callbacks.wake,
        outbound=outbound,
    )
    callbacks.add_listener(feeder.on_delivery)
    listeners = (pusher.on_events, callbacks.on_events, feeder.on_events)
    hint_listeners = (pusher.on_hint, callbacks.on_hint, feeder.on_hint)
    for listener in listeners:
        fanout.add_listener(listener)
    for hint_listener in hint_listeners:
        fanout.add_hint_listener(hint_listener)
    metrics = Metrics()
    metrics.attach(engine, callbacks)
    pusher.on_pushed = metrics.on_push
    registry.on_registered = pusher.on_registered
    async with anyio.create_task_group() as tg:
        tg.start_soon(pusher.run, name="wakecall-push")
        tg.start_soon(callbacks.run, name="wakecall-callbacks")
        tg.start_soon(metrics.run, name="wakecall-metrics")
        tg.start_soon(feeder.run, name="wakecall-subscriptions")
        try:
            yield pusher, callbacks, metrics, feeder
        finally:
            for listener in listeners:
                fanout.remove_listener(listener)
            for hint_listener in hint_listeners:
                fanout.remove_hint_listener(hint_listener)
            registry.on_registered = None
            callbacks.remove_listener(feeder.on_delivery)
            metrics.detach(engine, callbacks)
            pusher.close()
            tg.cancel_scope.cancel()
