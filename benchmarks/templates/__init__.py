"""The prose of the generated pages, as ``string.Template`` files beside this module.

A template holds a page's fixed text with ``$name`` fields; the scripts compute the numbers,
format them, and fill the fields with :func:`render`. The template's lines are the page's
lines: a paragraph is one line, as the pages are written.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

FOLDER = Path(__file__).resolve().parent


def render(template: str, /, **fields: object) -> list[str]:
    """The lines of ``template`` (a path under this folder), its fields filled.

    Parameters
    ----------
    template : str
        The template's path relative to ``benchmarks/templates``, e.g. ``"results/header.md"``.
    **fields : object
        The value of each ``$field``, written with ``str``; every field must be given
        (``string.Template.substitute`` raises ``KeyError`` for a missing one).

    Returns
    -------
    list of str
        The filled template, split into lines (without line ends).
    """
    return Template((FOLDER / template).read_text("utf-8")).substitute(fields).splitlines()
