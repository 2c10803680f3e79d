"""The shape of the code: imports run one way between the layers of pyutils (ARCHITECTURE.md),
the Makefile's dataset rules are the ones the records generate, and checking an image dataset
loads nothing of the video stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from pyutils.catalog.makefile import makefile
from tests.conftest import REPO

# Lower layers first; a package may import its own modules and those of lower layers only.
LAYERS = {
    "core": 0,
    "fetch": 1,
    "video": 1,
    "adaclip": 1,
    "llamafactory": 2,
    "catalog": 3,
    "devtools": 4,
}


def imported_packages(path: Path) -> set[str]:
    """Every pyutils subpackage `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "pyutils" and len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1])
    return found


def test_every_module_is_in_a_layer() -> None:
    modules = [p for p in (REPO / "pyutils").rglob("*.py") if p.parent != REPO / "pyutils"]
    assert modules and all(p.parent.name in LAYERS for p in modules)


def test_imports_run_downward_and_nothing_imports_devtools() -> None:
    wrong = []
    for path in sorted((REPO / "pyutils").rglob("*.py")):
        package = path.parent.name
        if package not in LAYERS:
            continue
        for imported in imported_packages(path) - {package}:
            if LAYERS[imported] >= LAYERS[package]:
                wrong.append(f"{path.relative_to(REPO)} imports pyutils.{imported}")
    assert wrong == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "core" / "x.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from pyutils.catalog.datasets import DATASETS\n")
    assert imported_packages(module) == {"catalog"}


def test_datasets_mk_is_what_the_records_generate() -> None:
    """After a record changes, `make rules` rewrites datasets.mk; this fails until then."""
    assert (REPO / "datasets.mk").read_text() == makefile()


def test_checking_an_image_dataset_loads_no_video_code(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pyutils.catalog.check import check\n"
        f"check(['caltech101'], Path({str(tmp_path)!r}))\n"
        "print(sorted(m for m in sys.modules if m == 'av' or m.startswith(('pyutils.video',"
        " 'pyutils.fetch', 'joblib', 'distributed'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "['pyutils.video', 'pyutils.video.manifest']"
