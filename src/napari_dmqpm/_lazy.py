"""Lazy package namespaces: public names import their module (and torch) on first use."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import lazy_loader


def attach(
    package: str, where: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` of a lazy package.

    Through scientific-python's lazy_loader, as scikit-image uses it.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    where : mapping
        Public name -> the submodule that defines it (``".predict"`` or ``"predict"``).
    submodules : iterable of str
        Submodules reachable as attributes.
    """
    by_module: dict[str, list[str]] = {}
    for name, module in where.items():
        by_module.setdefault(module.lstrip("."), []).append(name)
    return lazy_loader.attach(package, submodules=set(submodules), submod_attrs=by_module)
