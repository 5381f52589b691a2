"""The argument parser of every `wakecall` command: a usage error shows the usage of the
command that was given (not the top-level one) and suggests the nearest flag, command or
choice (`unknown flag --schedle; did you mean --schedule?`).

argparse offers no public way to list a parser's arguments, so `CommandParser` keeps its own
list of them as they are added (`add_argument` and `add_subparsers` return the action they
made, which is public); every `wakecall` parser is one.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

__all__ = ["ArgumentsOf", "CommandParser", "commands", "leaf_commands", "option_strings"]

EXIT_USAGE = 2  # as `wakecall.cli.context.EXIT_USAGE`, which `wakecall serve` does not load
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return list(parser.arguments) if isinstance(parser, CommandParser) else []


def _subcommand_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return list(parser.subcommands) if isinstance(parser, CommandParser) else []


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name (empty for a command that has none)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in _subcommand_actions(parser):
        if isinstance(action.choices, dict):
            found.update(action.choices)
    return found


def leaf_commands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command that runs something (`tasks add`, `runs`, ...), with its parser."""
    for name, sub in commands(parser).items():
        if commands(sub):
            for inner, leaf in leaf_commands(sub):
                yield f"{name} {inner}", leaf
        else:
            yield name, sub


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag the parser reads (`-h`, `--help`, `--json`, ...)."""
    return [flag for action in _actions(parser) for flag in action.option_strings]


def _positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in _actions(parser)
        if not action.option_strings and action not in _subcommand_actions(parser)
    ]


def _with_choices(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in _actions(parser) if a.option_strings and a.choices is not None]


class ArgumentsOf:
    """An argument group of a `CommandParser` that adds what it is given to its parser's list
    of arguments too (argparse's groups add to the parser without telling it)."""

    def __init__(self, group: Any, arguments: list[argparse.Action]) -> None:
        self.group = group
        self.arguments = arguments

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action: argparse.Action = self.group.add_argument(*args, **kwargs)
        self.arguments.append(action)
        return action

    def add_mutually_exclusive_group(self, **kwargs: Any) -> ArgumentsOf:
        return ArgumentsOf(self.group.add_mutually_exclusive_group(**kwargs), self.arguments)

    def __getattr__(self, name: str) -> Any:
        # Everything else is the group's own (argparse itself uses the groups it makes).
        return getattr(self.group, name)


class CommandParser(argparse.ArgumentParser):
    """An `ArgumentParser` that reports what it could not read itself, with a suggestion,
    instead of leaving unknown arguments to the top-level parser."""

    given: list[str]

    @property
    def arguments(self) -> list[argparse.Action]:
        """The actions added to this parser, in order (its flags and positionals)."""
        return self.__dict__.setdefault("_wakecall_arguments", [])

    @property
    def subcommands(self) -> list[argparse.Action]:
        """The actions `add_subparsers` made on this parser."""
        return self.__dict__.setdefault("_wakecall_subcommands", [])

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.arguments.append(action)
        return action

    def add_subparsers(self, **kwargs: Any) -> Any:
        action = super().add_subparsers(**kwargs)
        self.subcommands.append(action)
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        return ArgumentsOf(super().add_argument_group(*args, **kwargs), self.arguments)

    def add_mutually_exclusive_group(self, **kwargs: Any) -> Any:
        return ArgumentsOf(super().add_mutually_exclusive_group(**kwargs), self.arguments)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self.given = list(sys.argv[1:] if args is None else args)
        parsed, extras = super().parse_known_args(self.given, namespace)
        if extras:
            self.error(self._unexpected(extras))
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        """Print this command's usage and what was wrong; exit with status 2."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {self._explain(message)}\n")

    # --- what was wrong ---------------------------------------------------------------
    def _own_arguments(self) -> list[str]:
        """The arguments this parser reads itself: for a command with subcommands, those
        before the subcommand's name; none after `--`."""
        given = getattr(self, "given", [])
        own = given[: given.index("--")] if "--" in given else list(given)
        if commands(self):
            for i, argument in enumerate(own):
                if not argument.startswith("-"):
                    return own[: i + 1]
        return own

    def _explain(self, message: str) -> str:
        if "invalid choice" in message:
            return self._invalid_choice() or message
        if message.startswith("the following arguments are required"):
            unknown = [a for a in self._own_arguments() if self._is_unknown_flag(a)]
            if unknown:
                return f"{self._unknown_flag(unknown[0])} ({message})"
        return message

    def _unexpected(self, extras: list[str]) -> str:
        flags = [a for a in extras if a.startswith("-") and not _NEGATIVE_NUMBER.match(a)]
        if flags:
            return self._unknown_flag(flags[0])
        return f"unexpected argument {extras[0]!r}; `{self.prog} --help` shows what it takes"

    def _is_unknown_flag(self, argument: str) -> bool:
        if not argument.startswith("-") or argument == "-" or _NEGATIVE_NUMBER.match(argument):
            return False
        return self._option_for(argument) is None and argument[:2] not in option_strings(self)

    def _option_for(self, argument: str) -> argparse.Action | None:
        """The option `argument` names: exactly, as `--flag=value`, or abbreviated (a long
        flag's unique start, as argparse reads it)."""
        name = argument.split("=", 1)[0]
        exact = [a for a in _actions(self) if name in a.option_strings]
        if exact:
            return exact[0]
        if not name.startswith("--"):
            return None
        started = {a for a in _actions(self) for flag in a.option_strings if flag.startswith(name)}
        return started.pop() if len(started) == 1 else None

    def _unknown_flag(self, argument: str) -> str:
        name = argument.split("=", 1)[0]
        flags = [flag for flag in option_strings(self) if flag.startswith("--")]
        places = {"--" + a.dest.replace("_", "-"): a for a in _positionals(self)}
        nearest = difflib.get_close_matches(name, [*flags, *places], n=1)
        text = f"unknown flag {name}"
        if not nearest:
            return f"{text}; `{self.prog} --help` lists the flags"
        if nearest[0] in flags:
            return f"{text}; did you mean {nearest[0]}?"
        metavar = places[nearest[0]].metavar or places[nearest[0]].dest.upper()
        shape = " ".join(str(a.metavar or a.dest.upper()) for a in _positionals(self))
        return f"{text}; {metavar} is given without a flag: {self.prog} {shape}"

    def _invalid_choice(self) -> str | None:
        """Which command or choice was not one, and the nearest that is."""
        own = self._own_arguments()
        names = commands(self)
        if names and own and not own[-1].startswith("-") and own[-1] not in names:
            return _not_one_of(f"unknown command {own[-1]!r}", own[-1], list(names))
        for i, argument in enumerate(own):
            action = self._option_for(argument) if argument.startswith("--") else None
            if action is None or action not in _with_choices(self):
                continue
            _, equals, value = argument.partition("=")
            if not equals:
                value = own[i + 1] if i + 1 < len(own) else ""
            allowed = [str(choice) for choice in action.choices or ()]
            if _read(action, value) not in allowed:
                flag = action.option_strings[-1]
                return _not_one_of(f"{flag} cannot be {value!r}", value, allowed)
        return None


def _not_one_of(text: str, value: str, allowed: list[str]) -> str:
    nearest = difflib.get_close_matches(value, allowed, n=1)
    listed = ", ".join(allowed)
    if nearest:
        return f"{text}; did you mean {nearest[0]}? (one of: {listed})"
    return f"{text}; use one of: {listed}"


def _read(action: argparse.Action, value: str) -> str:
    """`value` as the option's type reads it (`--method get` is GET)."""
    try:
        return str(action.type(value)) if callable(action.type) else value
    except (TypeError, ValueError):
        return value
