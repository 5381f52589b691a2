"""The command line's parser (`wakecall.cli.parsing`): usage errors of the command given, with
the nearest flag, command or choice; and the reads of argparse's private attributes that this
one module makes, pinned here so that a Python release that changes them fails loudly."""

from __future__ import annotations

import pytest

from wakecall.cli import build_parser
from wakecall.cli.parsing import CommandParser, commands, leaf_commands, option_strings


def small_parser() -> CommandParser:
    parser = CommandParser(prog="tool")
    parser.add_argument("--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", usage="%(prog)s TARGET [options]")
    make.add_argument("target", metavar="TARGET")
    make.add_argument("--jobs", type=int)
    make.add_argument("--mode", choices=["fast", "safe"], type=str.lower)
    group = sub.add_parser("group")
    inner = group.add_subparsers(dest="inner", required=True)
    inner.add_parser("list")
    return parser


def test_the_parser_lists_its_own_arguments_groups_and_subcommands_included() -> None:
    parser = small_parser()
    assert set(commands(parser)) == {"make", "group"}
    assert isinstance(commands(parser)["make"], CommandParser)  # subparsers share the class
    assert dict(leaf_commands(parser)).keys() == {"make", "group list"}
    assert option_strings(commands(parser)["make"]) == ["-h", "--help", "--jobs", "--mode"]
    grouped = CommandParser(prog="tool")
    group = grouped.add_argument_group("output")
    group.add_argument("--json", action="store_true")
    either = group.add_mutually_exclusive_group()
    either.add_argument("--quiet", action="store_true")
    either.add_argument("--loud", action="store_true")
    assert option_strings(grouped) == ["-h", "--help", "--json", "--quiet", "--loud"]
    with pytest.raises(SystemExit):
        grouped.parse_args(["--quiet", "--loud"])  # the group still does its job


def test_the_real_parser_walks_to_every_command() -> None:
    names = {name for name, _ in leaf_commands(build_parser())}
    assert {"serve", "preview", "tasks add", "tasks list", "runs", "export"} <= names
    assert {name for name, _ in leaf_commands(build_parser(serve_only=True))} == {
        "serve",
        "preview",
    }


def run(parser: CommandParser, args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(args)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    return err


ERRORS = [
    (["make", "x", "--jbos", "2"], "usage: tool make TARGET [options]",
     "tool make: error: unknown flag --jbos; did you mean --jobs?"),
    (["make", "x", "--jobs=2", "--frobnicate"], "usage: tool make",
     "unknown flag --frobnicate; `tool make --help` lists the flags"),
    (["make", "--target", "x"], "usage: tool make",
     "unknown flag --target; TARGET is given without a flag: tool make TARGET"),
    (["make", "x", "y"], "usage: tool make",
     "unexpected argument 'y'; `tool make --help` shows what it takes"),
    (["make", "x", "--mode", "fsat"], "usage: tool make",
     "--mode cannot be 'fsat'; did you mean fast? (one of: fast, safe)"),
    (["make", "x", "--mode=slow"], "usage: tool make",
     "--mode cannot be 'slow'; use one of: fast, safe"),
    (["mkae", "x"], "usage: tool [-h]", "tool: error: unknown command 'mkae'; did you mean make?"),
    (["group", "lsit"], "usage: tool group", "unknown command 'lsit'; did you mean list?"),
    (["--verbse", "make", "x"], "usage: tool [-h]",
     "unknown flag --verbse; did you mean --verbose?"),
    (["make"], "usage: tool make", "the following arguments are required: TARGET"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "usage", "message"), ERRORS)
def test_a_usage_error_names_the_command_and_the_nearest_right_word(
    capsys: pytest.CaptureFixture[str], args: list[str], usage: str, message: str
) -> None:
    err = run(small_parser(), args, capsys)
    assert err.startswith(usage), err
    assert message in err, err


def test_what_argparse_reads_is_not_called_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    parser = small_parser()
    parsed = parser.parse_args(["make", "x", "--jo", "3", "--mode", "FAST"])  # an abbreviation
    assert (parsed.target, parsed.jobs, parsed.mode) == ("x", 3, "fast")
    err = run(parser, ["make", "x", "--mode", "FAST", "--jobs", "many"], capsys)
    assert "argument --jobs: invalid int value: 'many'" in err  # argparse's own, unchanged
