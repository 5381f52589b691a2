"""Server settings, read from (highest first) command-line flags, `WAKECALL_*` environment
variables, an optional TOML config file, and the defaults below.

Every setting is declared once in `SETTINGS`; the CLI builds its flags and `--help` from it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wakecall.errors import InvalidInput

# Loaded where used: `wakecall serve` reads its settings before anything else of wakecall, and
# the engine package loads the whole engine.
if TYPE_CHECKING:
    from wakecall.engine.config import EngineConfig

__all__ = ["SETTINGS", "Setting", "Settings", "default_db_path", "load_settings", "parse_tokens"]


def default_db_path() -> Path:
    import platformdirs

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
    from wakecall.schedules import parse_duration

    return parse_duration(value)


def _list(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    flag: bool = True  # offered as a command-line flag


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "store",
        None,
        str,
        "SQLite file path, or a postgresql:// URL (default: SQLite in the user data directory)",
    ),
    Setting("owner", "local", str, "owner name of the stdio client"),
    Setting(
        "tasks_file",
        None,
        str,
        "TOML file of tasks applied (idempotently, by id) to the owner's tasks at start",
    ),
    Setting("http", False, _bool, "serve Streamable HTTP instead of stdio"),
    Setting("host", "127.0.0.1", str, "HTTP bind address; beyond loopback, tokens are required"),
    Setting("port", 8765, int, "HTTP port (0 picks a free one)"),
    Setting("tokens_file", None, str, "file of 'TOKEN OWNER' lines for HTTP bearer auth"),
    Setting(
        "tokens", (), _list, "TOKEN=OWNER pairs (prefer the file or the environment)", flag=False
    ),
    Setting("allowed_hosts", (), _list, "extra Host header values the HTTP server accepts"),
    Setting("pg_schema", "wakecall", str, "PostgreSQL schema that holds wakecall's tables"),
    Setting("pg_pool", 10, int, "PostgreSQL connections this node may open (pool size)"),
    Setting("node", None, str, "this node's name in claims (default: host:pid:random)"),
    Setting("concurrency", 64, int, "runs executing at once"),
    Setting("lease", timedelta(seconds=30), _duration, "claim lease, e.g. 30s"),
    Setting(
        "poll_interval",
        timedelta(seconds=2),
        _duration,
        "longest scheduler sleep: bounds how late a lost hint from another node is noticed",
    ),
    Setting(
        "heartbeat_timeout",
        timedelta(minutes=10),
        _duration,
        "a run silent this long (no output from a command) is reported stale; 0 turns it off",
    ),
    Setting("kill_stale", False, _bool, "also cancel stale runs (recorded as a timeout)"),
    Setting("min_interval", timedelta(seconds=1), _duration, "shortest schedule interval"),
    Setting("wakeup_min", timedelta(seconds=10), _duration, "shortest schedule_wakeup delay"),
    Setting("wakeup_max", timedelta(days=30), _duration, "longest schedule_wakeup delay"),
    Setting("max_tasks", 10_000, int, "tasks one owner may hold"),
    Setting("runs_per_task", 100, int, "finished runs kept per task"),
    Setting("run_retention", timedelta(days=30), _duration, "age after which runs are pruned"),
    Setting("event_retention", timedelta(days=7), _duration, "age after which events are pruned"),
    Setting(
        "allow_outbound",
        (),
        _list,
        "outgoing HTTP exceptions: CIDRs and/or 'loopback' (default: public addresses only)",
    ),
    Setting(
        "commands",
        (),
        _list,
        "executables that command actions may run (none: command actions are off)",
    ),
    Setting("secret_grace", timedelta(hours=24), _duration, "old callback secret keeps signing"),
    Setting("callback_attempts", 24, int, "callback attempts before dead-lettering"),
    Setting("channel", True, _bool, "push events as Claude Code channel messages"),
    Setting("max_wait", timedelta(seconds=120), _duration, "longest get_events long poll"),
    Setting(
        "shutdown_grace",
        timedelta(seconds=3),
        _duration,
        "on SIGTERM or SIGINT, how long runs in flight may take to finish before they are "
        "recorded interrupted (and retried per their policy); the process exits within this "
        "plus 5s",
    ),
    Setting("log_level", "INFO", str, "DEBUG, INFO, WARNING or ERROR"),
    Setting("log_format", "plain", str, "plain or json"),
)


@dataclass(frozen=True)
class Settings:
    store: str | None = None
    owner: str = "local"
    tasks_file: str | None = None
    http: bool = False
    host: str = "127.0.0.1"
    port: int = 8765
    tokens_file: str | None = None
    tokens: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    pg_schema: str = "wakecall"
    pg_pool: int = 10
    node: str | None = None
    concurrency: int = 64
    lease: timedelta = timedelta(seconds=30)
    poll_interval: timedelta = timedelta(seconds=2)
    heartbeat_timeout: timedelta = timedelta(minutes=10)
    kill_stale: bool = False
    min_interval: timedelta = timedelta(seconds=1)
    wakeup_min: timedelta = timedelta(seconds=10)
    wakeup_max: timedelta = timedelta(days=30)
    max_tasks: int = 10_000
    runs_per_task: int = 100
    run_retention: timedelta = timedelta(days=30)
    event_retention: timedelta = timedelta(days=7)
    allow_outbound: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    secret_grace: timedelta = timedelta(hours=24)
    callback_attempts: int = 24
    channel: bool = True
    max_wait: timedelta = timedelta(seconds=120)
    shutdown_grace: timedelta = timedelta(seconds=3)
    log_level: str = "INFO"
    log_format: str = "plain"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def store_path(self) -> str:
        return self.store or str(default_db_path())

    def engine_config(self) -> EngineConfig:
        """The scheduler's settings among these."""
        from wakecall.engine.config import EngineConfig, default_node_id

        return EngineConfig(
            node_id=self.node or default_node_id(),
            concurrency=self.concurrency,
            lease=self.lease,
            poll_interval=self.poll_interval,
            heartbeat_timeout=self.heartbeat_timeout or None,
            kill_stale=self.kill_stale,
            min_interval=self.min_interval,
            wakeup_min=self.wakeup_min,
            wakeup_max=self.wakeup_max,
            max_tasks_per_owner=self.max_tasks,
            runs_per_task=self.runs_per_task,
            run_max_age=self.run_retention,
            event_max_age=self.event_retention,
        )

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
    for setting in SETTINGS:
        raw: Any = setting.default
        source = "default"
        if setting.name in from_file:
            raw, source = from_file[setting.name], f"config {config_file}"
        env_name = f"WAKECALL_{setting.name.upper()}"
        if env_name in env:
            raw, source = env[env_name], f"environment {env_name}"
        if setting.name in flags:
            raw, source = flags[setting.name], "flag"
        if raw is not None and source != "default":
            try:
                raw = setting.parse(raw)
            except (ValueError, InvalidInput) as exc:
                raise InvalidInput(f"setting {setting.name} ({source}): {exc}") from exc
        values[setting.name] = raw
        sources[setting.name] = source
    names = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in names}, sources=sources)
