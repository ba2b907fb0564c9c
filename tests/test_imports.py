"""The import graph of engine, dataprep and train, read from the source (lazy imports inside functions
included): no cycle, the engine never imports the packages above it, and dataprep and train reach the
engine only through its library modules, never its CLI or its story store."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "dataprep", "train")
# The root CLI finds dataprep and train through the `novelcraft.commands` entry point, never by import.
ROOT_CLI = "engine.cli"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imported(tree: ast.AST, module: str) -> set[str]:
    """Every module an import statement names, at the top or inside a function; not those under
    `if TYPE_CHECKING:`, which never run."""
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import"
            names.add(node.module)
            # `from dataprep import compile` imports the module dataprep.compile
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        stack += [child for child in ast.iter_child_nodes(node) if not _type_checking_only(child)]
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of these packages it imports (a package's own __init__ is not counted as
    imported by its submodules: Python runs it first, whatever they import)."""
    modules = {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    return {
        name: {t for t in imported(ast.parse(path.read_text(encoding="utf-8")), name) if t in modules}
        - {name}
        for name, path in modules.items()
    }


def edges(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return [(a, b) for a, targets in graph.items() for b in sorted(targets)]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_no_import_cycle(graph: dict[str, set[str]]):
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_the_engine_imports_nothing_above_it(graph: dict[str, set[str]]):
    upward = [
        (a, b)
        for a, b in edges(graph)
        if a.split(".")[0] == "engine" and b.split(".")[0] in ("dataprep", "train")
    ]
    assert upward == []


def test_dataprep_and_train_use_neither_the_engine_cli_nor_its_store(graph: dict[str, set[str]]):
    banned = {ROOT_CLI, "engine.store"}
    wrong = [(a, b) for a, b in edges(graph) if a.split(".")[0] in ("dataprep", "train") and b in banned]
    assert wrong == []


def test_a_cycle_is_found():
    """The check above would see one: train.serve and train.gguf_lora imported each other before."""
    with pytest.raises(CycleError):
        TopologicalSorter({"train.serve": {"train.gguf_lora"}, "train.gguf_lora": {"train.serve"}}).prepare()
