"""The API reference (docs/api/, built by `make docs`) covers every package of the library and
documents every name each package exports, as the object Python gives at run time."""

import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest

griffe = pytest.importorskip("griffe")

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent.name for p in (ROOT / "mathml").glob("*/__init__.py") if not p.parent.name.startswith("_"))


def _pages():
    """{identifier: page} for every `::: identifier` line under docs/api/."""
    found = {}
    for page in (ROOT / "docs" / "api").glob("*.md"):
        for ident in re.findall(r"^::: *(\S+)", page.read_text(), flags=re.M):
            found[ident] = page
    return found


def test_every_package_has_a_page_in_the_nav():
    pages, nav = _pages(), (ROOT / "mkdocs.yml").read_text()
    for pkg in PACKAGES:
        assert f"mathml.{pkg}" in pages, f"docs/api has no page with `::: mathml.{pkg}` (see docs/writing-docs.md)"
        assert f"api/{pages[f'mathml.{pkg}'].name}" in nav, f"{pages[f'mathml.{pkg}'].name} is not in mkdocs.yml's nav"


@pytest.fixture(scope="module")
def documented():
    """The griffe tree the docs build reads, with the docs' own extension."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from griffe_reexports import ReexportsShadowingModules
    finally:
        sys.path.pop(0)
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)], extensions=griffe.load_extensions(ReexportsShadowingModules))
    loader.load("mathml")
    loader.resolve_aliases(implicit=False, external=None)
    return loader.modules_collection


@pytest.mark.parametrize("ident", sorted(_pages()))
def test_every_exported_name_is_documented_as_the_runtime_object(ident, documented):
    module = importlib.import_module(ident)
    exported = getattr(module, "__all__", None)
    assert exported, f"{ident} lists no public names in __all__"
    node = documented[ident]
    for name in exported:
        assert name in node.members, f"{ident}.{name} is in __all__ but not in the docs tree"
        obj = node.members[name].final_target if node.members[name].is_alias else node.members[name]
        # Griffe keeps a submodule where the package re-exports a same-named function
        # (mathml.rl.value_iteration); the docs' extension must undo that, as Python does.
        assert obj.is_module == inspect.ismodule(getattr(module, name)), (
            f"{ident}.{name}: the docs show a {obj.kind.value}, Python gives {type(getattr(module, name)).__name__}")


SNIPPETS = [
    pytest.param(block, id=f"{page.relative_to(ROOT / 'docs')}#{i}")
    for page in sorted((ROOT / "docs").rglob("*.md"))
    for i, block in enumerate(re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.M | re.S))
]


@pytest.mark.parametrize("block", SNIPPETS)
def test_python_examples_in_the_docs_run(block):
    namespace = {}
    exec(compile(block, "<docs>", "exec"), namespace)  # an example that no longer runs fails here
    if "terms" in namespace:  # the VAE example: the ELBO's per-sample terms and the NLL's standard error
        terms, x = namespace["terms"], namespace["x"]
        assert set(terms) == {"loss", "elbo", "reconstruction", "kl"}
        assert all(v.shape == (x.shape[0],) for v in terms.values())
        assert bool((namespace["se"] > 0).all()) and bool((namespace["log_px"] <= 0).all())  # Bernoulli: p(x) <= 1
