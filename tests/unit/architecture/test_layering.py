"""The layering rule of docs/architecture.md, read from the source: the core imports no Dagster
and nothing from the shell, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src" / "tessera"
#: Above the core: the shell, and the tools that drive it (the `tessera` command registers the
#: shell's `run`; the benchmark runs the real Dagster job).
NOT_CORE = ("orchestration", "bench", "cli.py")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from tessera import orchestration` names the shell as much as `import` does.
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _forbidden(module: str) -> bool:
    top = module.split(".")[0]
    shell = module == "tessera.orchestration" or module.startswith("tessera.orchestration.")
    return top == "dagster" or top.startswith("dagster_") or shell


def core_files() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if p.relative_to(SRC).parts[0] not in NOT_CORE]


def test_the_core_imports_no_dagster_and_nothing_from_the_shell():
    files = core_files()
    assert len(files) > 50  # the scan sees the core
    bad = [
        f"{p.relative_to(SRC)}:{line} imports {module}"
        for p in files
        for line, module in _imports(p)
        if _forbidden(module)
    ]
    assert bad == []


def test_the_rule_catches_a_lazy_import(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text(
        "import dagsterish\n"
        "def f():\n    import dagster_duckdb\n    from tessera.orchestration.defs import x\n"
        "    from tessera import orchestration\n    from dagster import asset\n"
    )
    assert [m for _, m in _imports(sample) if _forbidden(m)] == [
        "dagster_duckdb",
        "tessera.orchestration.defs.x",
        "tessera.orchestration",
        "dagster.asset",
    ]
