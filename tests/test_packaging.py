"""Packaging: the installed project claims only its own top-level names (mathml, mathml_recipes,
mathml_scripts), never generic ones such as `recipes` or `scripts`, and lists every package folder."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OWN_NAMES = {"mathml_recipes", "mathml_scripts"}


def test_every_package_folder_is_installed():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "mathml").rglob("__init__.py")}
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert OWN_NAMES <= listed


def test_folders_install_under_their_own_names_and_entry_points_use_them():
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"mathml_recipes": "recipes", "mathml_scripts": "scripts"}
    for name, target in PYPROJECT["project"]["scripts"].items():
        assert target.startswith("mathml_scripts."), (name, target)


def test_generic_names_are_not_importable_outside_the_checkout(tmp_path):
    """From another folder (so the checkout is not on sys.path), the installed names import and the
    generic folder names do not."""
    code = (
        "import importlib.util as u, mathml_recipes.vae, mathml_scripts.train\n"
        "print(u.find_spec('recipes') is None, u.find_spec('scripts') is None)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["True", "True"], r.stdout
