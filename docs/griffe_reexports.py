"""Griffe extension for the API reference: a package that re-exports a function from a submodule
of the same name documents the function, not the submodule.

``mathml/rl/__init__.py`` does ``from mathml.rl.value_iteration import value_iteration``; at run
time ``mathml.rl.value_iteration`` is then the function. Griffe keeps the submodule under that name
instead (mkdocstrings/griffe issue 124), so the package page would silently omit the function.
For each such name this extension puts an alias to the function in the package, after pointing
every alias that names the submodule (a re-export further up, ``mathml.sde`` re-exporting
``mathml.sde.samplers.ddim``) at the function, and every alias into the submodule at its object
directly (so none of them has to be resolved through the name that now means the function).

Loaded by mkdocs.yml (``extensions:`` of the Python handler); tests/docs checks that every name in
each package's ``__all__`` is documented.
"""

from __future__ import annotations

from typing import Any

import griffe


def _modules(module: griffe.Module):
    yield module
    for sub in module.modules.values():
        if not sub.is_alias:
            yield from _modules(sub)


def _members(module: griffe.Module):
    """Every member object or alias in ``module``, classes' members included."""
    stack: list[Any] = list(module.members.values())
    while stack:
        obj = stack.pop()
        yield obj
        if not obj.is_alias and not obj.is_module:
            stack.extend(obj.members.values())


class ReexportsShadowingModules(griffe.Extension):
    """Replace a submodule by the same-named object that its parent package imports from it."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        modules = list(_modules(pkg))
        for module in modules:
            for name, sub in list(module.members.items()):
                if sub.is_alias or not sub.is_module or module.imports.get(name) != f"{sub.path}.{name}":
                    continue
                target = sub.members.get(name)
                if target is None or target.is_module:
                    continue
                prefix = sub.path + "."
                for other in modules:
                    for member in _members(other):
                        if not member.is_alias:
                            continue
                        if member.target_path == sub.path:  # a re-export of the re-export: the object
                            member.target = target
                        elif member.target_path.startswith(prefix):  # something else in the submodule
                            try:
                                member.target = sub[member.target_path[len(prefix):]]
                            except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                                pass  # left to griffe's own resolution (and its warning)
                module.members[name] = griffe.Alias(name, target, parent=module)
