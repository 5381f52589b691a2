"""Where `wakecall serve --tasks-file` keeps the callback secrets it issues: a TOML file only
the operator may read (mode 0600), never the server's log."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

import tomli_w

from wakecall.errors import InvalidInput

__all__ = ["TABLES", "secrets_path", "write_secrets"]


def secrets_path(tasks_file: str | Path, given: str | Path | None = None) -> Path:
    """`given`, or the file beside the task file: `tasks.toml` → `tasks.secrets.toml`."""
    if given is not None:
        return Path(given).expanduser()
    path = Path(tasks_file).expanduser()
    return path.with_name(f"{path.stem}.secrets.toml")


#: The tables of the file: the secrets that sign a task's callbacks, and those that inbound
#: events (`POST /triggers/{task_id}`) must carry.
TABLES = ("callback_secrets", "trigger_secrets")


def write_secrets(path: Path, issued: Mapping[str, Mapping[str, str]]) -> None:
    """Add the `issued` secrets (table → task id → secret, tables of `TABLES`) to the file at
    `path`, keeping those of other tasks it holds, readable and writable by its owner only."""
    known = _read(path)
    for table, secrets in issued.items():
        known.setdefault(table, {}).update(secrets)
    text = "# Secrets issued by wakecall serve --tasks-file, by task id. Keep this file private.\n"
    text += tomli_w.dumps({table: dict(sorted(known[table].items())) for table in sorted(known)})
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except OSError as exc:
        raise InvalidInput(
            f"cannot write the callback secrets to {path}: {exc.strerror}; give a writable "
            "path with --secrets-file",
            field="secrets_file",
        ) from exc


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read the callback secrets file {path} ({exc}); move it away or give "
            "another path with --secrets-file",
            field="secrets_file",
        ) from exc
    tables = {}
    for table in TABLES:
        found = data.get(table, {})
        if isinstance(found, dict):
            tables[table] = {str(k): str(v) for k, v in found.items()}
    return tables
