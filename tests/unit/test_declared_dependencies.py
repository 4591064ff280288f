"""Every package runtime code imports is declared in pyproject.toml (issue 11): a package that
is there only because another one needs it today may go with that package's next release."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ("avatar_core", "bot", "processors", "records", "token_server", "voices")
# The optional engine's packages count as declared where its group lists them, and avatar
# preparation's where its extra does.
GROUPS = ("sadtalker",)


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imported() -> dict[str, set[str]]:
    """Top-level module -> the runtime files that import it (lazy imports included)."""
    found: dict[str, set[str]] = {}
    for package in RUNTIME:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom)
                         and node.level == 0 and node.module else [])
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def test_runtime_imports_are_declared_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {_name(r) for r in project["project"]["dependencies"]}
    declared |= {_name(r) for g in GROUPS for r in project["dependency-groups"][g]}
    declared |= {_name(r) for extra in project["project"]["optional-dependencies"].values()
                 for r in extra}
    distributions = importlib.metadata.packages_distributions()
    undeclared = {
        module: sorted(files)
        for module, files in _imported().items()
        if module not in sys.stdlib_module_names and module not in RUNTIME
        and not {_name(d) for d in distributions.get(module, [module])} & declared
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
