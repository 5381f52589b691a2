"""Server settings, read from (highest first) command-line flags, `WAKECALL_*` environment
variables, an optional TOML config file, and the defaults below.

Every setting is declared once, as a field of `Settings` (the scheduler's defaults come from
`EngineConfig`); the CLI builds its flags and `--help` from those fields (`SETTINGS`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wakecall.config import EngineConfig, default_node_id
from wakecall.errors import InvalidInput

# Loaded where used: `wakecall serve` reads its settings before anything else of wakecall, and
# the engine package loads the whole engine.
if TYPE_CHECKING:
    from wakecall.actions.policy import ActionPolicy
    from wakecall.clock import Clock
    from wakecall.engine import Engine, TaskService
    from wakecall.store import Store

__all__ = ["SETTINGS", "Setting", "Settings", "default_db_path", "load_settings", "parse_tokens"]


def default_db_path() -> Path:
    import platformdirs  # lazy: start-up time (see the imports above)

    return Path(platformdirs.user_data_dir("wakecall")) / "wakecall.db"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _duration(value: Any) -> timedelta:
    from wakecall.schedules import parse_duration  # lazy: start-up time (see the imports above)

    return parse_duration(value)


def _list(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


def setting(
    default: Any, help: str, parse: Callable[[Any], Any] = str, *, flag: bool = True
) -> Any:
    """A field of `Settings`: its default, what `--help` says of it, how a flag, variable or
    config value is read, and whether it is offered as a flag."""
    return field(default=default, metadata={"help": help, "parse": parse, "flag": flag})


#: The scheduler's defaults, which the settings of the same name take.
_ENGINE = EngineConfig(node_id="defaults")


@dataclass(frozen=True)
class Settings:
    """What `wakecall serve` and the commands run with; each setting declared once, here."""

    store: str | None = setting(
        None,
        "SQLite file path, or a postgresql:// URL (default: SQLite in the user data directory)",
    )
    owner: str = setting("local", "owner name of the stdio client")
    tasks_file: str | None = setting(
        None, "TOML file of tasks applied (idempotently, by id) to the owner's tasks at start"
    )
    secrets_file: str | None = setting(
        None,
        "where --tasks-file writes the callback secrets it issues, readable by its owner only "
        "(default: beside the task file, NAME.secrets.toml)",
    )
    http: bool = setting(False, "serve Streamable HTTP instead of stdio", _bool)
    host: str = setting("127.0.0.1", "HTTP bind address; beyond loopback, tokens are required")
    port: int = setting(8765, "HTTP port (0 picks a free one)", int)
    tokens_file: str | None = setting(None, "file of 'TOKEN OWNER' lines for HTTP bearer auth")
    tokens: tuple[str, ...] = setting(
        (), "TOKEN=OWNER pairs (prefer the file or the environment)", _list, flag=False
    )
    metrics_token: str | None = setting(
        None,
        "the operator's bearer token for /metrics: every owner's series (an owner's token shows "
        "its own; prefer WAKECALL_METRICS_TOKEN to the flag)",
    )
    public_url: str | None = setting(
        None,
        "the server's URL as clients reach it, e.g. https://wakecall.example.com (its /mcp is "
        "the resource URL tokens are for; default: http://HOST:PORT)",
    )
    oauth_issuer: str | None = setting(
        None,
        "an OAuth issuer whose JWT access tokens are accepted (keys from its JWKS, audience this "
        "server's resource URL); wakecall issues no tokens itself",
    )
    oauth_jwks_url: str | None = setting(
        None, "the issuer's JWKS URL (default: the jwks_uri of its published metadata)"
    )
    oauth_owner_claim: str = setting("sub", "the JWT claim that names the owner of a request")
    allowed_hosts: tuple[str, ...] = setting(
        (), "extra Host header values the HTTP server accepts", _list
    )
    pg_schema: str = setting("wakecall", "PostgreSQL schema that holds wakecall's tables")
    pg_pool: int = setting(10, "PostgreSQL connections this node may open (pool size)", int)
    node: str | None = setting(None, "this node's name in claims (default: host:pid:random)")
    concurrency: int = setting(_ENGINE.concurrency, "runs executing at once", int)
    lease: timedelta = setting(_ENGINE.lease, "claim lease, e.g. 30s", _duration)
    poll_interval: timedelta = setting(
        _ENGINE.poll_interval,
        "longest scheduler sleep: bounds how late a lost hint from another node is noticed",
        _duration,
    )
    fire_lead: timedelta = setting(
        _ENGINE.fire_lead,
        "how long before its instant a fire may be recorded (its action still starts on time; "
        "a pause within it does not stop that fire); 0 records fires at their instant",
        _duration,
    )
    heartbeat_timeout: timedelta = setting(
        _ENGINE.heartbeat_timeout,
        "a run silent this long (no output from a command) is reported stale; 0 turns it off",
        _duration,
    )
    kill_stale: bool = setting(
        _ENGINE.kill_stale, "also cancel stale runs (recorded as a timeout)", _bool
    )
    min_interval: timedelta = setting(_ENGINE.min_interval, "shortest schedule interval", _duration)
    wakeup_min: timedelta = setting(_ENGINE.wakeup_min, "shortest schedule_wakeup delay", _duration)
    wakeup_max: timedelta = setting(_ENGINE.wakeup_max, "longest schedule_wakeup delay", _duration)
    max_tasks: int = setting(_ENGINE.max_tasks_per_owner, "tasks one owner may hold", int)
    tasks_per_minute: int = setting(
        _ENGINE.tasks_per_minute,
        "new tasks one owner may create in any minute (task files excepted)",
        int,
    )
    wakeups_per_minute: int = setting(
        _ENGINE.wakeups_per_minute, "new wakeups one owner may create in any minute", int
    )
    max_metadata_bytes: int = setting(
        _ENGINE.max_metadata_bytes, "a task's metadata, in bytes of JSON", int
    )
    max_context_bytes: int = setting(
        _ENGINE.max_context_bytes, "a wakeup's context, in bytes of JSON", int
    )
    max_body_bytes: int = setting(
        _ENGINE.max_body_bytes, "a webhook action's body, in bytes of JSON", int
    )
    max_headers_bytes: int = setting(
        _ENGINE.max_headers_bytes, "a webhook action's headers, names and values, in bytes", int
    )
    max_output_bytes: int = setting(
        _ENGINE.max_output_bytes,
        "a run's stored output, in bytes of JSON (beyond it: its size and its start)",
        int,
    )
    runs_per_task: int = setting(_ENGINE.runs_per_task, "finished runs kept per task", int)
    run_retention: timedelta = setting(
        _ENGINE.run_max_age, "age after which runs are pruned", _duration
    )
    event_retention: timedelta = setting(
        _ENGINE.event_max_age, "age after which events are pruned", _duration
    )
    task_retention: timedelta = setting(
        _ENGINE.task_max_age,
        "how long a finished task (completed or expired) is kept, with its runs, after it "
        "ended and its last run finished",
        _duration,
    )
    allow_outbound: tuple[str, ...] = setting(
        (),
        "outgoing HTTP exceptions: CIDRs and/or 'loopback' (default: public addresses only)",
        _list,
    )
    outbound_ca: str | None = setting(
        None,
        "PEM file of certificate authorities trusted for outgoing HTTPS, besides the system's "
        "(a private CA of webhook receivers)",
    )
    commands: tuple[str, ...] = setting(
        (), "executables that command actions may run (none: command actions are off)", _list
    )
    secret_grace: timedelta = setting(
        _ENGINE.secret_grace, "old callback secret keeps signing", _duration
    )
    callback_attempts: int = setting(24, "callback attempts before dead-lettering", int)
    channel: bool = setting(True, "push events as Claude Code channel messages", _bool)
    max_wait: timedelta = setting(timedelta(seconds=120), "longest get_events long poll", _duration)
    events_heartbeat: timedelta = setting(
        timedelta(seconds=15),
        "an events/stream quiet this long gets a heartbeat with its position (at most 30s)",
        _duration,
    )
    shutdown_grace: timedelta = setting(
        timedelta(seconds=3),
        "on SIGTERM or SIGINT, how long runs in flight may take to finish before they are "
        "recorded interrupted (and retried per their policy); the process exits within this "
        "plus 5s",
        _duration,
    )
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING or ERROR")
    log_format: str = setting("plain", "plain or json")
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def store_path(self) -> str:
        return self.store or str(default_db_path())

    def engine_config(self) -> EngineConfig:
        """The scheduler's settings among these."""
        return EngineConfig(
            node_id=self.node or default_node_id(),
            concurrency=self.concurrency,
            lease=self.lease,
            poll_interval=self.poll_interval,
            fire_lead=self.fire_lead,
            heartbeat_timeout=self.heartbeat_timeout or None,
            kill_stale=self.kill_stale,
            min_interval=self.min_interval,
            wakeup_min=self.wakeup_min,
            wakeup_max=self.wakeup_max,
            max_tasks_per_owner=self.max_tasks,
            tasks_per_minute=self.tasks_per_minute,
            wakeups_per_minute=self.wakeups_per_minute,
            max_metadata_bytes=self.max_metadata_bytes,
            max_context_bytes=self.max_context_bytes,
            max_body_bytes=self.max_body_bytes,
            max_headers_bytes=self.max_headers_bytes,
            max_output_bytes=self.max_output_bytes,
            runs_per_task=self.runs_per_task,
            run_max_age=self.run_retention,
            event_max_age=self.event_retention,
            task_max_age=self.task_retention,
            secret_grace=self.secret_grace,
        )

    def action_policy(self) -> ActionPolicy:
        """The operator's policy on actions, callbacks and conditions among these."""
        # lazy: start-up time (see the imports above)
        from wakecall.actions.command import CommandPolicy
        from wakecall.actions.policy import ActionPolicy
        from wakecall.net import OutboundPolicy

        return ActionPolicy(
            OutboundPolicy.parse_allow(self.allow_outbound),
            CommandPolicy(enabled=bool(self.commands), allow=self.commands),
        )

    def task_service(
        self, store: Store, clock: Clock, config: EngineConfig, engine: Engine | None = None
    ) -> TaskService:
        """The task operations on `store` under these limits and the operator's policy; with
        the `engine` of this process, which they wake and whose executors they allow."""
        # lazy: start-up time (see the imports above)
        from wakecall.engine import TaskService

        policy = self.action_policy()
        if engine is not None:
            policy = policy.with_runnable(engine.executors)
        return TaskService(store, clock=clock, config=config, policy=policy, scheduler=engine)

    def token_owners(self) -> dict[str, str]:
        """Bearer token → owner, from `tokens`, WAKECALL_TOKENS and the tokens file."""
        owners = parse_tokens(self.tokens)
        if self.tokens_file:
            path = Path(self.tokens_file).expanduser()
            try:
                text = path.read_text()
            except OSError as exc:
                raise InvalidInput(f"cannot read tokens file {path}: {exc.strerror}") from exc
            for number, line in enumerate(text.splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.replace("=", " ").split()
                if len(parts) != 2:
                    raise InvalidInput(
                        f"{path}:{number}: expected 'TOKEN OWNER'", example="s3cr3t-token alice"
                    )
                owners[parts[0]] = parts[1]
        return owners


@dataclass(frozen=True)
class Setting:
    """One field of `Settings`, as the command line and the loaders see it."""

    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    flag: bool = True  # offered as a command-line flag


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, f.default, f.metadata["parse"], f.metadata["help"], f.metadata["flag"])
    for f in fields(Settings)
    if "help" in f.metadata
)


def parse_tokens(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for pair in pairs:
        token, sep, owner = pair.partition("=")
        if not sep or not token or not owner:
            raise InvalidInput("a token must be given as TOKEN=OWNER", example="s3cr3t=alice")
        owners[token] = owner
    return owners


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Merge defaults < config file < environment < flags (None flags are ignored)."""
    env = os.environ if environ is None else environ
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    config_file = config_file or env.get("WAKECALL_CONFIG")
    from_file: dict[str, Any] = {}
    if config_file:
        path = Path(config_file).expanduser()
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise InvalidInput(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"config file {path} is not valid TOML: {exc}") from exc
        from_file = dict(data.get("wakecall", data))
    known = {s.name: s for s in SETTINGS}
    unknown = set(from_file) - set(known)
    if unknown:
        raise InvalidInput(
            f"config file has unknown settings {sorted(unknown)}; known: {sorted(known)}"
        )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for known_setting in SETTINGS:
        name = known_setting.name
        raw: Any = known_setting.default
        source = "default"
        if name in from_file:
            raw, source = from_file[name], f"config {config_file}"
        env_name = f"WAKECALL_{name.upper()}"
        if env_name in env:
            raw, source = env[env_name], f"environment {env_name}"
        if name in flags:
            raw, source = flags[name], "flag"
        if raw is not None and source != "default":
            try:
                raw = known_setting.parse(raw)
            except (ValueError, InvalidInput) as exc:
                raise InvalidInput(f"setting {name} ({source}): {exc}") from exc
        values[name] = raw
        sources[name] = source
    return Settings(**values, sources=sources)
