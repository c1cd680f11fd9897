"""The verb table and the two front ends generated from it: the CLI and the
magics take the same options for every verb (what differs is declared in
the table, with a reason), parse the same command line to the same values,
show help generated from the table, name the close verb or option on a
typo, and turn every bad command line into one line: exit 2 and one stderr
line on the command line, one ``UsageError`` line in a notebook."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
from IPython.core.error import UsageError

from guild_jupyter.frontends import calls, cli
from guild_jupyter.frontends import commands as C
from guild_jupyter.frontends.magics import GuildMagics

BOTH = [v for v in C.VERBS if C.CLI in v.fronts and C.LINE in v.fronts]
SAMPLE = {C.RUN: "1", C.SCRIPT: "train.py", C.FLAG: "lr=0.5", C.QUEUE_FLAG: "run-once=yes"}


@pytest.fixture(scope="module")
def shell(ipython):
    ipython.extension_manager.load_extension("guild_jupyter")
    return ipython


@pytest.fixture
def magics(shell):
    m = GuildMagics(shell)
    shell.register_magics(m)
    return m


@pytest.fixture(autouse=True)
def keep_showwarning(monkeypatch):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # cli.main replaces it


def parser_options(parser) -> set[str]:
    return set(parser._option_string_actions) - {"-h", "--help"}


def sample(arg: C.Arg) -> str:
    if arg.choices:
        return arg.choices[-1]
    if arg.completes in SAMPLE:
        return SAMPLE[arg.completes]
    return {int: "3", float: "0.5"}.get(arg.type, "x-value")


def command_line(verb: C.Verb, front: str) -> list[str]:
    """Every argument of the verb that both front ends take, options first
    (they mix with positionals in any order)."""
    common = [a for a in verb.args_for(front) if C.CLI in a.fronts and C.LINE in a.fronts and a is not C.STORE]
    words = []
    for a in common:
        if not a.positional:
            words += [a.names[-1]] if a.switch else [a.names[-1], sample(a)]
    for a in common:
        if a.positional:
            words += [sample(a)] * (2 if a.nargs in ("*", "+") else 1)
    return words


# -- one table, two front ends ------------------------------------------------------------------------


def test_the_table_is_well_formed():
    names = [v.name for v in C.VERBS]
    assert len(names) == len(set(names))
    for verb in C.VERBS:
        assert verb.help and verb.fronts, verb.name
        if verb.fronts != C.EVERY - {C.CELL} and verb.fronts != C.EVERY:
            assert verb.why, f"{verb.name} is for {sorted(verb.fronts)} only: say why"
        for a in verb.args:
            assert a.kind in ("positional", "option", "switch")
            if C.CLI not in a.fronts or C.LINE not in a.fronts:
                assert a.why, f"{verb.name} {a.names[0]} differs between front ends: say why"
            if a.completes == C.RUN and a.states:
                assert set(a.states) <= set(C.STATUSES)


def test_queue_flags_are_the_tables():
    from guild_jupyter.queueing.config import QUEUE_FLAGS
    from guild_jupyter.queueing.flags import QUEUE_FLAG_TABLE

    assert C.QUEUE_FLAGS == QUEUE_FLAGS == tuple(f.name for f in QUEUE_FLAG_TABLE)


def test_every_verb_is_called_through_one_glue_and_names_its_api_twin():
    import inspect

    from guild_jupyter import api

    assert set(calls.CALLS) == {v.name for v in C.VERBS}
    for verb in C.VERBS:
        if verb.api is None:  # a front end of its own (the panel), or IPython's set-up (autoload)
            assert verb.name in ("panel", "autoload") and len(verb.fronts) == 1, verb.name
            continue
        twin = getattr(api, verb.api)
        params = inspect.signature(twin).parameters
        for group in api.CONFLICTS.get(verb.name, ()):
            for name in group:  # each conflicting option is one the twin takes (or the runs it is given)
                assert name in params or name in ("runs", "action", "flags"), (verb.name, name)


@pytest.mark.parametrize("verb", BOTH, ids=lambda v: v.name)
def test_cli_and_magics_accept_the_same_options(verb, magics):
    cli_parser = C.build_parser(verb, C.CLI, f"guild-jupyter {verb.name}")
    magic_parser = magics.parser(verb, C.LINE)
    cli_opts, magic_opts = parser_options(cli_parser), parser_options(magic_parser)
    assert cli_opts == verb.options(C.CLI) and magic_opts == verb.options(C.LINE)
    only_cli = {n for a in verb.args if C.CLI in a.fronts and C.LINE not in a.fronts for n in a.names}
    only_magic = {n for a in verb.args if C.LINE in a.fronts and C.CLI not in a.fronts for n in a.names}
    assert cli_opts - only_cli == magic_opts - only_magic  # every difference is one the table declares
    assert cli_opts - magic_opts == only_cli - magic_opts and magic_opts - cli_opts == only_magic - cli_opts
    if C.CELL in verb.fronts:  # %%guild run: the line's options, and the cell's own
        only_cell = {n for a in verb.args if a.fronts == {C.CELL} for n in a.names}
        assert parser_options(magics.parser(verb, C.CELL)) - only_cell == magic_opts


@pytest.mark.parametrize("verb", BOTH, ids=lambda v: v.name)
def test_one_command_line_parses_to_the_same_values_in_both(verb, shell, magics, monkeypatch):
    words = command_line(verb, C.CLI) + ["--store", "/tmp/a-guild-home"]
    got = {}
    def record(args, door):
        got.setdefault("cli" if door.front == C.CLI else "magic", vars(args))

    monkeypatch.setitem(calls.CALLS, verb.name, record)
    assert cli.main([verb.name, *words]) == 0
    shell.run_line_magic("guild", " ".join([verb.name, *words]))
    common = {a.key for a in verb.args_for(C.CLI) if C.LINE in a.fronts}
    assert {k: got["cli"][k] for k in common} == {k: got["magic"][k] for k in common}
    assert got["cli"]["store"] == "/tmp/a-guild-home"
    for a in verb.args:  # every value given is the one parsed
        if a.key in common and not a.positional and not a.switch:
            value = got["cli"][a.key]
            if a.repeat:  # given once: a list of that one value
                assert isinstance(value, list) and len(value) == 1, (a.key, value)
                value = value[0]
            assert str(value) in (sample(a), str(a.type(sample(a))) if a.type else "")


def test_options_and_assignments_mix_in_any_order(monkeypatch):
    got = {}
    monkeypatch.setitem(calls.CALLS, "run", lambda args, door: got.update(vars(args)))
    assert cli.main(["run", "--label", "x", "train.py", "lr=1", "--stage", "epochs=2", "--gpus", "0"]) == 0
    assert got["script"] == "train.py" and got["flags"] == ["lr=1", "epochs=2"] and got["stage"]


# -- help ---------------------------------------------------------------------------------------------


def test_help_is_generated_from_the_table(shell, capsys):
    doc = shell.find_line_magic("guild").__doc__
    for verb in C.verbs_for(C.LINE):
        assert f"%guild {verb.name}" in doc and verb.help in doc
    assert "%%guild run" in doc and "--name NAME" in doc and "autoload" not in doc
    assert shell.run_cell("%guild?").success
    assert "%guild stop [RUN ...] [--all] [--queues] [--no-wait]" in capsys.readouterr().out
    shell.run_line_magic("guild", "-h")
    assert capsys.readouterr().out.strip() == C.help_text(C.LINE, "%guild")
    for verb in C.verbs_for(C.LINE):
        assert shell.run_cell(f"%guild {verb.name} -h").success
        out = capsys.readouterr().out
        assert out.startswith(f"usage: %guild {verb.name}") and all(o in out for o in verb.options(C.LINE))
    shell.run_cell_magic("guild", "run -h", "x = 1\n")
    assert "--name NAME" in capsys.readouterr().out


def test_cli_help_lists_every_verb(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in C.verbs_for(C.CLI):
        assert f"guild-jupyter {verb.name}" in out
    assert "panel" not in out
    assert cli.main([]) == 2 and "guild-jupyter run SCRIPT" in capsys.readouterr().out
    assert cli.main(["queue", "-h"]) == 0 and "--background" in capsys.readouterr().out


# -- did you mean ----------------------------------------------------------------------------------------

TYPOS = [
    (["rnus"], "unknown subcommand 'rnus' (did you mean 'runs'?)"),
    (["run", "train.py", "--foregroud"], "unrecognized arguments: --foregroud (did you mean '--foreground'?)"),
    (["stop", "--no-wiat"], "did you mean '--no-wait'?"),
    (["runs", "--stagde"], "did you mean '--staged'?"),
    (["--stroe", "runs"], "did you mean '--store'?"),
]


@pytest.mark.parametrize("words, message", TYPOS, ids=[" ".join(w) for w, _ in TYPOS])
def test_a_typo_names_the_close_verb_or_option(words, message, shell, capsys):
    assert cli.main(words) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("guild-jupyter: error: ") and message in err[0], err
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("guild", " ".join(words))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_an_option_of_the_other_front_end_says_why(shell, capsys):
    assert cli.main(["runs", "--all"]) == 2
    assert "--all: a terminal shows every run" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--json: a notebook gets the object"):
        shell.run_line_magic("guild", "runs --json")
    assert cli.main(["panel"]) == 2
    assert "'panel' is not a subcommand here: a panel is a notebook widget" in capsys.readouterr().err
    with pytest.raises(UsageError, match="'autoload' is not a subcommand here"):
        shell.run_line_magic("guild", "autoload on")


# -- bad input, table-driven ---------------------------------------------------------------------------


def required_words(verb: C.Verb, front: str) -> list[str]:
    return [sample(a) for a in verb.args_for(front) if a.required]


def bad_lines(front: str):
    """For every verb of the front end: an unknown option, each required
    argument missing, each typed or choice-restricted value wrong, each
    value-taking option without its value."""
    for verb in C.verbs_for(front):
        req = required_words(verb, front)
        yield verb, [*req, "--no-such-option"], "unrecognized arguments: --no-such-option"
        if req:
            yield verb, [], "the following arguments are required"
        for a in verb.args_for(front):
            if a.positional and a.choices:
                yield verb, ["bogus-choice" if w == sample(a) else w for w in req], "invalid choice"
            if a.positional or a.switch:
                continue
            if a.type in (int, float):
                yield verb, [*req, a.names[-1], "many"], f"invalid {a.type.__name__} value: 'many'"
            yield verb, [*req, a.names[-1]], "expected one argument"


CLI_BAD = list(bad_lines(C.CLI))
MAGIC_BAD = [(front, *case) for front in (C.LINE, C.CELL) for case in bad_lines(front)]


@pytest.mark.parametrize("verb, words, message", CLI_BAD, ids=[f"{v.name} {' '.join(w)}" for v, w, _ in CLI_BAD])
def test_bad_command_lines_are_one_stderr_line_and_exit_2(verb, words, message, capsys, monkeypatch):
    monkeypatch.setattr(calls, "CALLS", {})  # nothing may run
    assert cli.main([verb.name, *words]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("guild-jupyter: error: ") and message in lines[0], captured.err
    assert captured.out == ""


@pytest.mark.parametrize("front, verb, words, message", MAGIC_BAD,
                         ids=[f"{f} {v.name} {' '.join(w)}" for f, v, w, _ in MAGIC_BAD])
def test_bad_magic_lines_are_one_line_usage_errors(front, verb, words, message, shell, magics, capsys, monkeypatch):
    monkeypatch.setattr(calls, "CALLS", {})  # nothing may run
    prog = "%%guild" if front == C.CELL else "%guild"
    capsys.readouterr()
    result = shell.run_cell(" ".join([prog, verb.name, *words]) + ("\nx = 1\n" if front == C.CELL else ""))
    err = capsys.readouterr().err
    assert type(result.error_in_exec) is UsageError
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"UsageError: {prog} {verb.name}: ") and message in lines[0], err


@pytest.mark.parametrize("verb, words, message", [c for c in CLI_BAD if c[0].name in {v.name for v in BOTH}],
                         ids=[f"{v.name} {' '.join(w)}" for v, w, _ in CLI_BAD if v.name in {b.name for b in BOTH}])
def test_both_front_ends_give_the_same_message(verb, words, message, shell, capsys, monkeypatch):
    monkeypatch.setattr(calls, "CALLS", {})
    cli.main([verb.name, *words])
    cli_message = capsys.readouterr().err.strip().removeprefix("guild-jupyter: error: ")
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("guild", " ".join([verb.name, *words]))
    assert str(e.value) == f"%guild {verb.name}: {cli_message}"


@pytest.mark.parametrize("entry", [[sys.executable, "-m", "guild_jupyter"],
                                   [os.path.join(os.path.dirname(sys.executable), "guild-jupyter")]])
def test_both_entry_points_run_the_generated_cli(entry, tmp_path):
    p = subprocess.run([*entry, "runs", "--stagde"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.splitlines() == [
        "guild-jupyter: error: unrecognized arguments: --stagde (did you mean '--staged'?)"]
    p = subprocess.run([*entry, "runs"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.strip() == "no runs", p.stderr
