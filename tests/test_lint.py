"""The product code stays clean under ruff (pyflakes, pycodestyle, import order) and mypy (types);
both read their settings from pyproject.toml ([tool.ruff], [tool.mypy])."""
from __future__ import annotations

import subprocess
import sys

PRODUCT = ("Config", "Core", "STT", "LLM", "TTS", "Orchestrator", "run_assistant.py")


def test_ruff_finds_nothing_in_the_product_code(repo_root):
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *PRODUCT], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_mypy_finds_nothing_in_the_product_code(repo_root):
    # the cache (.mypy_cache/, ignored by git) makes a run after a small change take seconds
    done = subprocess.run([sys.executable, "-m", "mypy", *PRODUCT], cwd=repo_root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_product_code_and_scripts_never_import_the_test_tree(repo_root):
    """`bench` and the scripts it loads must work from a checkout without tests/."""
    import ast

    offenders = []
    for folder in (*PRODUCT, "scripts"):
        for path in sorted((repo_root / folder).rglob("*.py")) if (repo_root / folder).is_dir() else [repo_root / folder]:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                offenders += [f"{path.relative_to(repo_root)}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert not offenders, offenders
