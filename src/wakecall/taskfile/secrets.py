"""Where `wakecall serve --tasks-file` keeps the callback secrets it issues: a TOML file only
the operator may read (mode 0600), never the server's log."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

import tomli_w

from wakecall.errors import InvalidInput

__all__ = ["secrets_path", "write_secrets"]


def secrets_path(tasks_file: str | Path, given: str | Path | None = None) -> Path:
    """`given`, or the file beside the task file: `tasks.toml` → `tasks.secrets.toml`."""
    if given is not None:
        return Path(given).expanduser()
    path = Path(tasks_file).expanduser()
    return path.with_name(f"{path.stem}.secrets.toml")


def write_secrets(path: Path, secrets: Mapping[str, str]) -> None:
    """Add `secrets` (task id → `whsec_` secret) to the file at `path`, keeping the secrets of
    other tasks it holds, readable and writable by its owner only."""
    known = _read(path)
    known.update(secrets)
    text = "# Callback signing secrets issued by wakecall serve --tasks-file, by task id.\n"
    text += tomli_w.dumps({"secrets": dict(sorted(known.items()))})
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


def _read(path: Path) -> dict[str, str]:
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
    found = data.get("secrets", {})
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
