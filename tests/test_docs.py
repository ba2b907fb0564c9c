"""The docs tell the truth: the generated reference covers the code, the getting-started commands run,
the examples parse, every path the docs and the shipped examples name is in a clone, and the site builds.

The reference renderers live in docs/hooks/reference.py (the mkdocs hook); they are imported by path,
and the CLI and the models are walked here again on their own, so a renderer that drops a command, an
option or a field fails these tests.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import typer
import typer.main
import yaml

from novelcraft.backends import registry
from novelcraft.cli.main import app
from novelcraft.core.schema import Character, Seed
from novelcraft.core.seedfile import parse_seed
from novelcraft.settings import config as settings_config
from novelcraft.settings.config import Settings, resolve_settings

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
HOOK = DOCS / "hooks" / "reference.py"
VENV_BIN = Path(sys.executable).parent


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference_hook", HOOK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = load_hook()


# ---------------------------------------------------------------------------------------------------------
# The generated reference covers the code.


def cli_commands() -> list[tuple[str, object, typer.Context]]:
    """(command path, command, context) of every command and sub-command, walked with click's API."""
    root = typer.main.get_command(app)
    found = []
    stack = [(root, typer.Context(root, info_name="novelcraft"))]
    while stack:
        command, ctx = stack.pop()
        found.append((ctx.command_path, command, ctx))
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                stack.append((sub, typer.Context(sub, info_name=name, parent=ctx)))
    return found


def sections(markdown: str) -> dict[str, str]:
    """The generated CLI reference cut at its headings: command path -> its section."""
    parts = re.split(r"^#+ `([^`]+)`$", markdown, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.fixture(scope="module")
def cli_reference() -> dict[str, str]:
    return sections(ref.cli_markdown())


def test_every_command_has_a_section(cli_reference: dict[str, str]) -> None:
    paths = [path for path, _, _ in cli_commands()]
    # The lazily loaded groups are there, and their sub-commands.
    assert {"novelcraft experts list", "novelcraft dataprep run", "novelcraft train sweep"} <= set(paths)
    assert sorted(cli_reference) == sorted(paths)


def test_every_argument_and_option_is_documented(cli_reference: dict[str, str]) -> None:
    for path, command, ctx in cli_commands():
        section = cli_reference[path]
        assert " ".join(command.collect_usage_pieces(ctx)) in section, path
        if command.help:
            assert ref.escape(command.help.split("\n\n")[0]) in section, path
        for param in command.params:
            names = [param.display_name_raw] if param.param_type_name == "argument" else param.opts
            for name in [*names, *param.secondary_opts]:
                assert f"`{name}`" in section, f"{path}: {name}"
            if param.help:
                assert ref.escape(param.help) in section, f"{path}: help of {param.name}"


def table_rows(markdown: str) -> dict[str, str]:
    """Field name -> its table row (the first cell is the name in a code span)."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([\w-]+)` \|.*$", markdown, re.MULTILINE)}


def test_every_seed_field_is_documented() -> None:
    markdown = ref.seed_fields_markdown()
    seed_part, character_part = markdown.split("### Character fields")
    for model, part in ((Seed, seed_part), (Character, character_part)):
        rows = table_rows(part)
        # A file's key: the field's alias where it has one (`seed` for Seed.sampling_seed).
        keys = {field.alias or name: field for name, field in model.model_fields.items()}
        assert sorted(rows) == sorted(keys)
        for key, field in keys.items():
            assert ("| required |" in rows[key]) == field.is_required(), key


def test_every_setting_and_its_variable_is_documented() -> None:
    rows = table_rows(ref.settings_markdown())
    assert sorted(rows) == sorted(Settings.model_fields)
    for name in Settings.model_fields:
        if name == "backend_options":
            continue
        variable = re.findall(r"`(NOVELCRAFT_\w+)`", rows[name])
        assert variable, name
        # The variable the page names is the one the settings really read.
        assert settings_config._from_env({variable[0]: "x"}) == {name: "x"}, name


def test_every_backend_option_and_its_variable_is_documented() -> None:
    markdown = ref.backend_options_markdown()
    parts = dict(zip(*[iter(re.split(r"^### (\S+)$", markdown, flags=re.MULTILINE)[1:])] * 2, strict=True))
    assert sorted(parts) == registry.names()
    for backend, part in parts.items():
        rows = table_rows(part)
        fields = registry.spec(backend).options.model_fields
        assert sorted(rows) == sorted(fields), backend
        for option in fields:
            variable = re.findall(r"`(NOVELCRAFT_\w+)`", rows[option])[0]
            expected = {"backend_options": {backend: {option: "x"}}}
            assert settings_config._from_env({variable: "x"}) == expected, f"{backend}.{option}"


def test_generated_defaults_are_the_models_defaults() -> None:
    rows = table_rows(ref.settings_markdown())
    assert "`0.8`" in rows["temperature"] and "≥ 0" in rows["temperature"]
    assert f"`{Settings.model_fields['backend'].default}`" in rows["backend"].replace('"', "")
    seed_rows = table_rows(ref.seed_fields_markdown())
    assert "≥ 300, ≤ 500000" in seed_rows["target_words"]


def test_pages_carry_their_markers() -> None:
    expected = {
        "seeds.md": ["seed-fields"],
        "configuration.md": ["settings", "backend-options"],
        "cli.md": ["cli"],
    }
    for page, names in expected.items():
        text = (DOCS / page).read_text(encoding="utf-8")
        assert [m.group(1) for m in ref.MARKER.finditer(text)] == names, page
        rendered = ref.render_markers(text)
        assert "<!-- reference:" not in rendered, page


def test_an_unknown_marker_is_an_error() -> None:
    with pytest.raises(ValueError, match="seed-feilds"):
        ref.render_markers("# Page\n\n<!-- reference: seed-feilds -->\n")


# ---------------------------------------------------------------------------------------------------------
# The hand-written examples are right.


def fenced_blocks(text: str, *languages: str) -> list[str]:
    # A fence opens with ``` and a language at the start of a line and closes with ``` alone.
    pattern = r"^```(" + "|".join(map(re.escape, languages)) + r")[^\n]*\n(.*?)^```[ \t]*$"
    return [m.group(2) for m in re.finditer(pattern, text, re.MULTILINE | re.DOTALL)]


def test_seed_examples_are_valid_seeds() -> None:
    text = (DOCS / "seeds.md").read_text(encoding="utf-8")
    blocks = fenced_blocks(text, "yaml", "markdown")
    assert len(blocks) >= 2
    for block in blocks:
        parse_seed(block)  # raises SeedError, one line per problem


def test_config_examples_are_valid_configs(tmp_path: Path) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    files = [(block, ".toml") for block in fenced_blocks(text, "toml")]
    files += [(block, ".yaml") for block in fenced_blocks(text, "yaml")]
    assert files
    resolved = []
    for i, (block, suffix) in enumerate(files):
        path = tmp_path / f"config{i}{suffix}"
        path.write_text(block, encoding="utf-8")
        resolved.append(resolve_settings(path, env={}))
    # The TOML and the YAML example say the same thing.
    assert all(s == resolved[0] for s in resolved)
    # So do the environment variables of the shell example.
    env = dict(re.findall(r"(NOVELCRAFT_\w+)=(\S+)", "\n".join(fenced_blocks(text, "console"))))
    from_env = resolve_settings(env=env)
    for name in ("backend", "model", "temperature"):
        assert getattr(from_env, name) == getattr(resolved[0], name), name
    assert from_env.options().base_url == resolved[0].options().base_url


# The getting-started page is run as written: its ```bash blocks are commands, ```console and ```text
# blocks are shown, not run (installation, long runs, sample output).
NOT_IN_A_TEST = re.compile(r"\bpip install\b|install\.sh|\bgit clone\b")


def test_getting_started_commands_run(tmp_path: Path) -> None:
    page = DOCS / "getting-started.md"
    if not page.exists():
        pytest.skip("docs/getting-started.md is not written yet")
    blocks = fenced_blocks(page.read_text(encoding="utf-8"), "bash")
    assert blocks, "getting-started.md has no ```bash block to run"
    shutil.copytree(REPO / "stories", tmp_path / "stories", ignore=shutil.ignore_patterns("*.db", "*.db-*"))
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "NOVELCRAFT_BACKEND": "fake",
        "NOVELCRAFT_CONFIG": "",
        "NOVELCRAFT_CACHE": str(tmp_path / "cache"),
        "NOVELCRAFT_LOG": str(tmp_path / "novelcraft.log"),
    }
    for block in blocks:
        assert not NOT_IN_A_TEST.search(block), f"installs; fence it as ```console:\n{block}"
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (
            f"{block}\nexit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


# ---------------------------------------------------------------------------------------------------------
# Every path the docs and the shipped examples name is in a clone.

# Where the engine writes (not shipped), and placeholders an author replaces.
OUTPUT_ROOTS = {"runs", "out", "data", "site"}
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$|[<>{}]|\.\.\.")
# A repository path in prose or code: one of the shipped folders, or ../ on the way to one.
REPO_PATH = re.compile(
    r"(?<![\w./~$@-])((?:\.\./)*(?:stories|corpus|bench|scripts|docs|tests|engine|prompts|dataprep|train)"
    r"/[\w./*-]*)"
)
# What a command is told to write is an output, not a path the clone must have; so is a file a page
# asks the reader to create ("Save it as `engine/backends/ollama.py`"), wherever that page names it.
OUTPUT_FLAG = re.compile(r"(?:--out|--output-dir|--export|--gguf|>)[ =]$")
NEW_FILE = re.compile(r"(?i)\b(?:save (?:it|this) as|create)\s+`([^`]+)`")


def code_text(markdown: str) -> str:
    """The code blocks, code spans and link targets of a Markdown page: where paths are named."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)
    rest = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    spans = re.findall(r"`([^`\n]+)`", rest)
    links = re.findall(r"\]\(([^)\s#]+)", rest)
    return "\n".join([*blocks, *spans, *links])


def named_paths(text: str) -> list[str]:
    paths = []
    for m in REPO_PATH.finditer(text):
        path = m.group(1).rstrip(".,:;")
        line_start = text.rfind("\n", 0, m.start()) + 1
        if OUTPUT_FLAG.search(text[line_start : m.start()]):
            continue
        if path.endswith(".db") or any(PLACEHOLDER.search(part) for part in path.split("/")):
            continue
        paths.append(path)
    return paths


def shipped(path: Path) -> bool:
    """The path exists and git would put it in a clone (a file git ignores exists only here)."""
    matches = [path] if "*" not in path.name else list(path.parent.glob(path.name))
    if not matches or not all(p.exists() for p in matches):
        return False
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", *map(str, matches)], capture_output=True
    )
    return ignored.returncode != 0  # 0: every one ignored; 1: none; 128: not a git checkout


def is_output(path: Path) -> bool:
    try:
        return path.resolve().relative_to(REPO).parts[0] in OUTPUT_ROOTS
    except ValueError:
        return False


def missing_paths(text: str, bases: list[Path], new: frozenset[str] = frozenset()) -> list[str]:
    """The named paths that are in no base directory (a path with ../ may be relative to any of them),
    leaving out the `new` files the reader is asked to create."""
    missing = []
    for name in named_paths(text):
        if name in new:
            continue
        candidates = [base / name for base in bases] if name.startswith("../") else [REPO / name]
        if any(is_output(c) for c in candidates):
            continue
        if not any(shipped(c) for c in candidates):
            missing.append(name)
    return missing


def markdown_pages() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def example_files() -> list[Path]:
    return sorted([*REPO.glob("stories/**/*.yaml"), *REPO.glob("stories/**/*.yml")])


def test_paths_in_the_docs_exist() -> None:
    study_dirs = sorted({p.parent for p in example_files()})
    problems = []
    for page in markdown_pages():
        if page.exists():
            markdown = page.read_text(encoding="utf-8")
            new = frozenset(NEW_FILE.findall(markdown))
            missing = missing_paths(code_text(markdown), [page.parent, *study_dirs], new)
            problems += [f"{page.relative_to(REPO)}: {p}" for p in sorted(set(missing))]
    assert not problems, "named but not in a clone:\n" + "\n".join(problems)


def yaml_strings(data: object) -> list[str]:
    if isinstance(data, dict):
        return [s for value in data.values() for s in yaml_strings(value)]
    if isinstance(data, list):
        return [s for item in data for s in yaml_strings(item)]
    return [data] if isinstance(data, str) else []


FILE_VALUE = re.compile(r"^[\w./-]+\.(?:ya?ml|txt|md|toml|json|jsonl|gguf|epub|docx)$")


def test_paths_in_the_examples_exist() -> None:
    problems = []
    for file in example_files():
        text = file.read_text(encoding="utf-8")
        # Values are relative to the file (seed lists, baselines, exemplars, adapters)...
        for value in yaml_strings(yaml.safe_load(text)):
            path = file.parent / value
            if FILE_VALUE.match(value) and not is_output(path) and not shipped(path):
                problems.append(f"{file.relative_to(REPO)}: {value}")
        # ...and the commands in its comments run from the repository root.
        comments = "\n".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)
        problems += [f"{file.relative_to(REPO)} (comment): {p}" for p in missing_paths(comments, [REPO])]
    assert not problems, "named but not in a clone:\n" + "\n".join(problems)


def test_nothing_shipped_points_outside_the_repository() -> None:
    files = [*markdown_pages(), *REPO.glob("stories/**/*.yaml"), *REPO.glob("stories/**/*.md")]
    outside = [
        f.relative_to(REPO) for f in files if f.exists() and "../shared" in f.read_text(encoding="utf-8")
    ]
    assert not outside, f"these point at ../shared, which a clone does not have: {outside}"


# ---------------------------------------------------------------------------------------------------------
# The site builds.


def test_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs and mkdocs-material are not installed (pip install -e '.[docs]')")
    done = subprocess.run(
        # Never --quiet: mkdocs 1.6 then stops counting warnings, and --strict passes whatever is broken.
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    cli_page = (tmp_path / "site" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "novelcraft dataprep run" in cli_page and "reference:" not in cli_page
