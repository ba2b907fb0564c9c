"""The layers of the `novelcraft` namespace, stated as data and read from the source: every import
(at the top of a module or inside a function) goes to the same layer or one below it, there is no
cycle, and the package list that pyproject.toml installs is every folder with an __init__.py."""

from __future__ import annotations

import ast
import tomllib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Where each part of the namespace lives in the repository (the folders the design fixed).
FOLDERS = {"novelcraft": "engine", "novelcraft.prompts": "prompts", "novelcraft.dataprep": "dataprep",
           "novelcraft.train": "train"}  # fmt: skip
# Bottom to top. A module may import its own layer and the layers below; a package's own __init__ is
# the layer of the package (the top-level one is the public API, above everything).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("records and text", ("novelcraft.core",)),
    ("metrics", ("novelcraft.metrics",)),
    ("backends and prompts", ("novelcraft.backends", "novelcraft.prompts")),
    ("settings", ("novelcraft.settings",)),
    ("model calls and the store", ("novelcraft.runtime",)),
    ("judges", ("novelcraft.judges",)),
    ("experts", ("novelcraft.experts",)),
    ("drafting loop", ("novelcraft.drafting",)),
    ("Story API", ("novelcraft.story",)),
    ("evaluation", ("novelcraft.evaluation",)),
    ("pipelines", ("novelcraft.dataprep", "novelcraft.train", "novelcraft.study")),
    # The pipelines' own command lines and progress displays share the CLI's conventions (cli.shell).
    (
        "front ends",
        (
            "novelcraft.cli",
            "novelcraft.studio",
            "novelcraft.dataprep.cli",
            "novelcraft.dataprep.progress",
            "novelcraft.train.cli",
        ),
    ),
    ("public API", ("novelcraft",)),
]


def module_name(path: Path) -> str:
    folder = path.relative_to(REPO).parts[0]
    namespace = next(ns for ns, f in FOLDERS.items() if f == folder)
    parts = path.relative_to(REPO / folder).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join((namespace, *parts))


def layer_of(module: str) -> int:
    """The index in LAYERS of the longest package prefix of `module`."""
    best, best_len = -1, -1
    for index, (_, packages) in enumerate(LAYERS):
        for package in packages:
            if (module == package or module.startswith(package + ".")) and len(package) > best_len:
                best, best_len = index, len(package)
    if best < 0:
        raise KeyError(f"{module}: in no layer")
    return best


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
            # `from novelcraft.dataprep import compile` imports the module novelcraft.dataprep.compile
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        stack += [child for child in ast.iter_child_nodes(node) if not _type_checking_only(child)]
    return names


def source_files() -> list[Path]:
    return sorted(p for folder in FOLDERS.values() for p in (REPO / folder).rglob("*.py"))


def ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:n]) for n in range(1, len(parts) + 1)}


def import_graph() -> dict[str, set[str]]:
    """module -> the novelcraft modules it imports. The packages a module sits in are not counted as
    imported by it: Python runs their __init__ first, whatever it imports."""
    modules = {module_name(p): p for p in source_files()}
    return {
        name: {t for t in imported(ast.parse(path.read_text(encoding="utf-8")), name) if t in modules}
        - ancestors(name)
        for name, path in modules.items()
    }


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import that goes to a higher layer, as `a (its layer) -> b (its layer)`."""
    return [
        f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if layer_of(b) > layer_of(a)
    ]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_module_is_in_a_layer(graph):
    for module in graph:
        layer_of(module)


def test_no_import_goes_up_a_layer(graph):
    assert upward(graph) == []


def test_no_import_cycle(graph):
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_an_upward_import_and_a_cycle_are_found():
    """The checks above would see one: a record importing the store, two modules importing each other."""
    bad = {"novelcraft.core.schema": {"novelcraft.runtime.store"}, "novelcraft.runtime.store": set()}
    assert upward(bad) == [
        "novelcraft.core.schema (records and text) -> novelcraft.runtime.store (model calls and the store)"
    ]
    with pytest.raises(CycleError):
        TopologicalSorter({"a": {"b"}, "b": {"a"}}).prepare()


def test_a_lazy_upward_import_inside_a_function_counts():
    tree = ast.parse("def f():\n    from novelcraft.story.novel import Story\n")
    assert "novelcraft.story.novel" in imported(tree, "novelcraft.core.x")


def test_pipelines_use_neither_the_root_cli_nor_the_store(graph):
    banned = {"novelcraft.cli.main", "novelcraft.runtime.store"}
    wrong = [
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if a.startswith(("novelcraft.dataprep", "novelcraft.train")) and b in banned
    ]
    assert wrong == []


def test_pyproject_installs_every_package_under_the_namespace():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert config["package-dir"] == FOLDERS
    folders = {module_name(p) for p in source_files() if p.name == "__init__.py"}
    assert sorted(config["packages"]) == sorted(folders)


FRONT_ENDS = ("novelcraft.studio", "novelcraft.cli", "novelcraft.study")


def store_reaches(tree: ast.AST) -> list[str]:
    """Where a module reaches past the Story API: an attribute named `store` (`story.store`, in any
    expression) or an import of the store module, under `if TYPE_CHECKING:` too."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "store":
            found.append(f"line {node.lineno}: .store")
        elif isinstance(node, ast.ImportFrom) and node.module in (
            "novelcraft.runtime.store",
            "novelcraft.runtime",
        ):
            if node.module == "novelcraft.runtime.store" or any(a.name == "store" for a in node.names):
                found.append(f"line {node.lineno}: imports novelcraft.runtime.store")
        elif isinstance(node, ast.Import) and any(a.name == "novelcraft.runtime.store" for a in node.names):
            found.append(f"line {node.lineno}: imports novelcraft.runtime.store")
    return found


def test_front_ends_read_and_write_only_through_the_story_api():
    """The studio, the CLI and the study runner call Story (and the evaluation layer's functions over
    a Story) and never the store below it. Nothing is exempt: the store's errors live in
    novelcraft.core.errors, and a study's own table is reached through Story.record_study_cell and
    novelcraft.story.novel.study_cells."""
    wrong = {
        module_name(path): reaches
        for path in source_files()
        if module_name(path).startswith(FRONT_ENDS)
        and (reaches := store_reaches(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert wrong == {}


def test_a_reach_into_the_store_is_found():
    tree = ast.parse(
        "from novelcraft.runtime.store import Store\ndef f(story):\n    return story.store.scenes(story.id)\n"
    )
    assert store_reaches(tree) == ["line 1: imports novelcraft.runtime.store", "line 3: .store"]
