"""The package's folders are its layers: `lint-imports` (the contract in pyproject.toml)
passes on the tree and fails on an import that runs up a layer."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = shutil.which("lint-imports")
pytestmark = pytest.mark.skipif(LINT is None, reason="needs import-linter (the test extras)")


def _lint(folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run(
        [LINT, "--config", str(folder / "pyproject.toml"), "--no-cache"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_tree_keeps_its_layers(tmp_path):
    shutil.copytree(ROOT / "textgen", tmp_path / "textgen", ignore=shutil.ignore_patterns("web"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout
    # an import running up a layer (the lowest importing the CLI) breaks the contract
    errors = tmp_path / "textgen" / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport textgen.cli.main  # noqa: E402, F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "textgen.core is not allowed to import textgen.cli" in result.stdout
