"""
The package's shape (docs/architecture.md): the Airflow face at the top, subpackages whose
``__init__`` says what they may import, layers that point down, and no import circle.

Read from the source with :mod:`ast`, so it checks every import, also those inside functions;
imports under ``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bsg_provider"

#: What each part may import of this package (beside itself, the package root and the exceptions).
ALLOWED = {
    "client": set(),
    "extraction": {"client"},
    "hooks": {"client", "extraction"},
    "triggers": {"hooks", "client"},
    "sensors": {"hooks", "triggers", "client"},
    "operators": {"hooks", "extraction", "client", "assets"},
    "assets": set(),
    "probe": {"hooks", "client", "extraction"},
    "check_api": {"probe"},
    "simulator": set(),
}
#: Parts that must not import Airflow, and the one module of a part allowed to.
NO_AIRFLOW = {"client": (), "extraction": ("bsg_provider.extraction.storage",), "simulator": ()}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path) -> set[str]:
    """Every module ``path`` imports when it runs, absolute, outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    package = _module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from bsg_provider.client import api`` imports the module bsg_provider.client.api.
            found.update(f"{module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {name: {m for m in _runtime_imports(path) if m in MODULES} for name, path in MODULES.items()}
ALL_IMPORTS = {name: _runtime_imports(path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_the_top_holds_the_airflow_face_and_at_most_six_modules():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top
    subpackages = sorted(path.parent.name for path in PACKAGE.glob("*/__init__.py"))
    assert subpackages == sorted(
        ["client", "extraction", "hooks", "operators", "probe", "sensors", "simulator", "triggers"]
    )


@pytest.mark.parametrize("part", ["client", "extraction", "probe", "simulator"])
def test_each_subpackage_says_what_it_holds_and_may_import(part):
    doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text()))
    assert doc and "import" in doc, f"bsg_provider/{part}/__init__.py does not say what it may import"


def test_layers_point_down():
    wrong = []
    for module, imported in IMPORTS.items():
        part = _part(module)
        if part not in ALLOWED:
            continue
        for target in imported:
            other = _part(target)
            if other in ("", part, "errors") or target == "bsg_provider.errors":
                continue
            if other not in ALLOWED[part]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_core_and_the_simulator_import_no_airflow():
    wrong = [
        f"{module} imports {target}"
        for module, imported in ALL_IMPORTS.items()
        if _part(module) in NO_AIRFLOW and module not in NO_AIRFLOW[_part(module)]
        for target in imported
        if target == "airflow" or target.startswith("airflow.")
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_nothing_imports_the_simulator_but_the_simulator():
    wrong = [
        f"{module} imports {target}"
        for module, imported in IMPORTS.items()
        if _part(module) != "simulator"
        for target in imported
        if _part(target) == "simulator"
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circle():
    # Package __init__ modules are left out as nodes: importing a.b.c runs a and a.b first, which
    # is not a dependency of theirs on c.
    graph = {
        name: {t for t in targets if MODULES[t].name != "__init__.py"}
        for name, targets in IMPORTS.items()
        if MODULES[name].name != "__init__.py"
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (circle := walk(target)):
                return circle
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            circle = walk(name)
            assert circle is None, " -> ".join(circle)


def test_the_request_path_uses_no_httpcore_and_only_tenacitys_public_api():
    # tenacity's internals may change in any release: the hooks iterate Retrying/AsyncRetrying.
    wrong = [
        f"{module} imports {target}"
        for module, imported in ALL_IMPORTS.items()
        if _part(module) != "simulator"
        for target in imported
        if target == "httpcore"
        or target.startswith("httpcore.")
        or target in ("tenacity.DoAttempt", "tenacity.DoSleep")
    ]
    for module, path in MODULES.items():
        if _part(module) == "simulator":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            # A hand-built RetryCallState(...), or Retrying.iter/begin driven by hand.
            called = node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None
            if called == "RetryCallState":
                wrong.append(f"{module} builds a RetryCallState")
            if isinstance(node, ast.Attribute) and node.attr in ("iter", "begin", "prepare_for_next_attempt"):
                wrong.append(f"{module} calls .{node.attr} (tenacity's internals)")
    assert not wrong, "\n".join(sorted(wrong))
