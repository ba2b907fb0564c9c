"""The reference pages, generated from the code each time the site is built, so they cannot drift.

A page asks for a table with a marker line of its own, `<!-- reference: NAME -->` (NAME one of
RENDERERS); `on_page_markdown` swaps each marker for the Markdown its renderer returns. The renderers are
pure functions of the installed package, so tests/test_docs.py imports this file by path and checks
them against the code without building the site.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
import types
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

MARKER = re.compile(r"^<!-- reference: ([a-z0-9-]+) -->[ \t]*$", re.MULTILINE)
CLI_NAME = "novelcraft"


# ---------------------------------------------------------------------------------------------------------
# Cells of a Markdown table.


def escape(text: str) -> str:
    """Text for a table cell: code spans kept as they are, Markdown and HTML characters outside them
    escaped, so a help line such as `quality_*.png` or `NOVELCRAFT_<NAME>` is shown, not interpreted."""
    parts = re.split(r"(`[^`]*`)", " ".join(text.split()))
    return "".join(
        part if part.startswith("`") else re.sub(r"([\\*_<>|\[\]])", r"\\\1", part) for part in parts
    )


def code(text: str) -> str:
    """A code span; Python-Markdown's tables do not split a cell at a pipe inside one, so none is escaped."""
    return f"`{text}`"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Pydantic models: seeds, settings, backend options.


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment block right above each field in the model's class body: the code documents its
    settings in comments, and reading them here keeps one text for the code and the page."""
    try:
        source = textwrap.dedent(inspect.getsource(model))
    except (OSError, TypeError):  # no source (a frozen build): the tables go without descriptions
        return {}
    lines = source.splitlines()
    body = ast.parse(source).body[0]
    comments = {}
    for node in getattr(body, "body", []):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above = []
            row = node.lineno - 2
            while row >= 0 and lines[row].strip().startswith("#"):
                above.insert(0, lines[row].strip().lstrip("#").strip())
                row -= 1
            if above:
                comments[node.target.id] = " ".join(above)
    return comments


def type_label(annotation: Any) -> str:
    """A field's type as an author writes it in a file: `int | None`, `"first" | "third"`."""
    if annotation is type(None):
        return "None"
    if annotation is Any:
        return "any"
    origin = get_origin(annotation)
    if origin is Literal:
        return " | ".join(json.dumps(v) for v in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " | ".join(type_label(arg) for arg in get_args(annotation))
    if origin is not None:
        args = ", ".join(type_label(arg) for arg in get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if isinstance(annotation, type):
        return "path" if issubclass(annotation, Path) else annotation.__name__
    return str(annotation)


def value_label(value: Any) -> str:
    """A default as it is written in a YAML or TOML file."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def default_label(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    return "unset" if value is None else code(value_label(value))


_BOUNDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


def constraint_label(field: FieldInfo) -> str:
    """Bounds and lengths from the field's metadata (pydantic keeps Field(ge=...) there)."""
    parts = []
    for item in field.metadata:
        for attr, sign in _BOUNDS.items():
            if getattr(item, attr, None) is not None:
                parts.append(f"{sign} {getattr(item, attr)}")
        if getattr(item, "min_length", None) == 1:
            parts.append("not empty")
        elif getattr(item, "min_length", None) is not None:
            parts.append(f"at least {item.min_length} characters")
        if getattr(item, "max_length", None) is not None:
            parts.append(f"at most {item.max_length} characters")
    return ", ".join(parts)


def model_rows(model: type[BaseModel], extra: Callable[[str], list[str]] | None = None) -> list[list[str]]:
    """One row per field: name (as a file writes it: the alias where there is one), type, default,
    constraints, [extra columns,] description."""
    comments = field_comments(model)
    rows = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        row = [code(key), code(type_label(field.annotation)), default_label(field), constraint_label(field)]
        row += extra(name) if extra else []
        rows.append(row + [escape(field.description or comments.get(name, ""))])
    return rows


def model_table(model: type[BaseModel], extra_header: list[str] | None = None, extra=None) -> str:
    header = ["Field", "Type", "Default", "Constraints", *(extra_header or []), "Description"]
    return table(header, model_rows(model, extra))


def seed_fields_markdown() -> str:
    """Every field of a seed file, and of each entry of its `characters` list."""
    from novelcraft.core.schema import Character, Seed

    return "\n\n".join(
        [
            "### Seed fields",
            escape(inspect.getdoc(Seed) or ""),
            model_table(Seed),
            "### Character fields",
            "Each entry of `characters` is a mapping with these keys.",
            model_table(Character),
        ]
    )


def settings_env_var(name: str) -> str:
    from novelcraft.settings.config import ENV_PREFIX

    return ENV_PREFIX + name.upper()


def settings_markdown() -> str:
    """Every setting, with the environment variable that sets it."""
    from novelcraft.settings.config import Settings

    def env(name: str) -> list[str]:
        if name == "backend_options":  # each option has a variable of its own (backend options below)
            return ["per option, see below"]
        return [code(settings_env_var(name))]

    return model_table(Settings, ["Environment"], env)


def backend_env_var(backend: str, option: str) -> str:
    from novelcraft.settings.config import ENV_PREFIX

    return f"{ENV_PREFIX}{backend.upper()}_{option.upper()}"


def backend_options_markdown() -> str:
    """One table per registered backend: its options model's fields, and where each is set."""
    from novelcraft.backends import registry

    sections = []
    for name in registry.names():
        spec = registry.spec(name)
        sections.append(f"### {name}")
        sections.append(f'`backend = "{name}"`: {escape(spec.summary)}.')
        if not spec.options.model_fields:
            sections.append("This backend has no options of its own.")
            continue
        sections.append(
            f"In a config file these go in a `[novelcraft.{name}]` table (TOML) or a `{name}:` mapping "
            f"(YAML); on the command line, `-o KEY=VALUE` when `{name}` is the chosen backend."
        )
        sections.append(
            model_table(
                spec.options, ["Environment"], lambda option, n=name: [code(backend_env_var(n, option))]
            )
        )
    return "\n\n".join(sections)


# ---------------------------------------------------------------------------------------------------------
# The command line, walked as click sees it (typer builds click commands; every group is loaded).


def walk_commands(command: Any, ctx: Any) -> Iterator[tuple[Any, Any]]:
    """(command, context) for the command and every sub-command under it, depth first, in the order
    `--help` lists them; the root's lazy groups are built by asking for them."""
    yield command, ctx
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            yield from walk_commands(sub, type(ctx)(sub, info_name=name, parent=ctx))


def root_command() -> tuple[Any, Any]:
    import typer

    from novelcraft.cli.main import app

    command = typer.main.get_command(app)
    return command, typer.Context(command, info_name=CLI_NAME)


def param_names(param: Any) -> str:
    if param.param_type_name == "argument":
        return code(param.display_name_raw)
    names = ", ".join(code(opt) for opt in param.opts)
    if param.secondary_opts:
        names += " / " + ", ".join(code(opt) for opt in param.secondary_opts)
    return names


def param_type(param: Any, ctx: Any) -> str:
    if getattr(param, "is_flag", False) and not getattr(param, "count", False):
        return "flag"
    label = code(param.display_type(ctx).removeprefix("<").removesuffix(">"))
    if param.nargs == -1:
        return f"{label}, one or more" if param.required else f"{label}, any number"
    return f"{label}, repeatable" if param.multiple else label


def param_default(param: Any) -> str:
    """The default as `--help` states it: a flag's off value and an unset value are not defaults."""
    if param.required:
        return "required"
    if isinstance(param.show_default, str):
        return escape(param.show_default)
    value = param.default
    if value is None or not param.show_default or callable(value):
        return ""
    if getattr(param, "is_bool_flag", False):
        if param.secondary_opts:  # --report / --no-report: the default is the one that is on
            return code((param.opts if value else param.secondary_opts)[0])
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(code(str(getattr(v, "value", v))) for v in value)
    return code(str(getattr(value, "value", value)))


def param_help(param: Any) -> str:
    text = escape(getattr(param, "help", None) or "")
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None or high is not None:
        bounds = " and ".join(
            f"{sign} {v}" for sign, v in (("≥", low), ("≤", high)) if v is not None
        )  # click's range
        text += f" ({bounds})"
    if getattr(param, "envvar", None):
        text += f" Environment: {code(param.envvar)}."
    return text.strip()


def command_markdown(command: Any, ctx: Any) -> str:
    depth = ctx.command_path.count(" ")
    level = "#" * min(2 + max(depth - 1, 0), 6)
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    parts = [
        f"{level} `{ctx.command_path}`",
        escape(inspect.cleandoc(command.help or "")),
        f"```text\n{usage}\n```",
    ]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if params:
        rows = [[param_names(p), param_type(p, ctx), param_default(p), param_help(p)] for p in params]
        parts.append(table(["Name", "Type", "Default", "Description"], rows))
    if hasattr(command, "list_commands"):
        subs = [f"`{name}`" for name in command.list_commands(ctx)]
        parts.append(f"Commands: {', '.join(subs)}.")
    return "\n\n".join(p for p in parts if p)


def cli_markdown(command: Any = None, ctx: Any = None) -> str:
    """Every command and sub-command with its usage, help and a table of its arguments and options.
    Without arguments, the `novelcraft` command line."""
    if command is None:
        command, ctx = root_command()
    return "\n\n".join(command_markdown(c, cctx) for c, cctx in walk_commands(command, ctx))


# ---------------------------------------------------------------------------------------------------------
# The mkdocs hook.

RENDERERS: dict[str, Callable[[], str]] = {
    "seed-fields": seed_fields_markdown,
    "settings": settings_markdown,
    "backend-options": backend_options_markdown,
    "cli": cli_markdown,
}


def render_markers(markdown: str) -> str:
    """The page with every marker line replaced; an unknown marker is an error, not an empty section."""
    unknown = sorted({m.group(1) for m in MARKER.finditer(markdown)} - set(RENDERERS))
    if unknown:
        raise ValueError(f"unknown reference marker(s): {', '.join(unknown)} (known: {', '.join(RENDERERS)})")
    return MARKER.sub(lambda m: RENDERERS[m.group(1)](), markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **_: Any) -> str:
    try:
        return render_markers(markdown)
    except ValueError as exc:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"{page.file.src_path}: {exc}") from None
