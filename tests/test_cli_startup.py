"""What a command that drafts nothing loads: the engine's other commands are mounted from ENGINE_COMMANDS
only when asked for, and `list`, `show` and `--help` import none of the heavy or unrelated modules.
The time it takes is bench/startup.py's; these tests check the imports that the time comes from."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from novelcraft.cli.main import ENGINE_COMMANDS, app

runner = CliRunner()
SEED = "title: T\npremise: A keeper and a letter.\ntarget_words: 600\nscenes: 3\nscene_words: 200\n"

# Loaded by no command that drafts nothing: the lazily mounted commands, the packages above the engine,
# the drafting loop and its graph, the progress display, typer's rich help, and yaml (read when a
# config or registry file is).
NOT_AT_START = (
    *sorted(set(ENGINE_COMMANDS.values())),
    "dataprep",
    "train",
    "langgraph",
    "novelcraft.drafting.graph",
    "novelcraft.drafting.scene",
    "jinja2",
    "rich.progress",
    "typer.rich_utils",
    "yaml",
)


def registered_names(typer_app: typer.Typer) -> list[str]:
    """The names a module's `commands` gives its commands and groups (each is named explicitly)."""
    return [info.name for info in typer_app.registered_commands] + [
        info.name for info in typer_app.registered_groups
    ]


def test_the_table_names_exactly_the_commands_each_module_defines():
    for module in set(ENGINE_COMMANDS.values()):
        defined = registered_names(importlib.import_module(module).commands)
        assert sorted(defined) == sorted(n for n, m in ENGINE_COMMANDS.items() if m == module), module


def test_every_listed_command_resolves_and_answers_help():
    root = typer.main.get_command(app)
    core = list(root.commands)  # built with the root; the mounted ones never join it
    assert "write" in core and set(core).isdisjoint(ENGINE_COMMANDS)
    names = root.list_commands(typer.Context(root))
    assert names[: len(core)] == core
    assert [n for n in names if n in ENGINE_COMMANDS] == list(ENGINE_COMMANDS)
    assert {"dataprep", "train"} <= set(names)
    for name in names:
        result = runner.invoke(app, [name, "--help"], prog_name="novelcraft")
        assert result.exit_code == 0, (name, result.output)
        assert f"novelcraft {name}" in result.output, name


def test_an_unknown_command_is_a_usage_error():
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.output


def loaded_modules(*args: str) -> tuple[set[str], str]:
    """The modules a fresh `novelcraft ARGS` process imported (from -X importtime), and its stdout."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "novelcraft.cli.main", *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = {
        line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    return names, done.stdout


@pytest.fixture(scope="module")
def story_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("startup")
    (work / "seed.yaml").write_text(SEED)
    db = work / "stories.db"
    result = runner.invoke(
        app, ["--db", str(db), "--backend", "fake", "write", str(work / "seed.yaml"), "--json"]
    )
    assert result.exit_code == 0, result.output
    return db, json.loads(result.stdout)["story_id"]


@pytest.mark.parametrize("command", ["help", "list", "show"])
def test_commands_that_draft_nothing_import_nothing_heavy(story_db: tuple[Path, str], command: str):
    db, story_id = story_db
    args = {
        "help": ["--help"],
        "list": ["--db", str(db), "list", "--json"],
        "show": ["--db", str(db), "show", story_id, "--json"],
    }[command]
    loaded, stdout = loaded_modules(*args)
    assert "novelcraft.cli.shell" in loaded  # the listing is real: the CLI itself shows up in it
    heavy = sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in NOT_AT_START))
    # --help lists the mounted commands' one-line help, so it builds them (and only for that)
    if command == "help":
        heavy = [m for m in heavy if m not in ENGINE_COMMANDS.values()]
    assert heavy == []
    if command == "list":
        assert [row["story_id"] for row in json.loads(stdout)] == [story_id]


def test_a_reader_that_goes_away_is_not_an_error(tmp_path: Path):
    """`novelcraft experts --help | head -0`: the pipe closes before the CLI writes; typer ends quietly.
    (A subcommand's help is written inside the root's error handling, as a command's output is.)"""
    env = {**os.environ, "NOVELCRAFT_LOG": str(tmp_path / "novelcraft.log")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "novelcraft.cli.main", "experts", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # long before the child has imported anything
    stderr = proc.stderr.read().decode()
    assert proc.wait() == 1
    assert "unexpected" not in stderr and "Traceback" not in stderr, stderr
    assert not (tmp_path / "novelcraft.log").exists()
