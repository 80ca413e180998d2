"""The docs name napari's menus as napari shows them: every *Menu → ... → Item* path exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[4]
DOCS = ["README.md", "docs/user_guide.md", "docs/formats.md"]
TOP_MENUS = ("File", "View", "Layers", "Plugins", "Window", "Help")
#: An italic menu path, e.g. ``*Plugins → <plugin> → Segment cells (<plugin>)*``, maybe wrapped.
MENU_PATH = re.compile(rf"\*((?:{'|'.join(TOP_MENUS)}) → [^*]+)\*")


def documented_menu_paths() -> dict[tuple[str, ...], str]:
    """Every menu path the docs name, as its items, mapped to the file that names it."""
    paths = {}
    for name in DOCS:
        text = (REPO_ROOT / name).read_text(encoding="utf-8")
        for match in MENU_PATH.finditer(text):
            path = " ".join(match.group(1).split()).replace("…", "...")
            paths[tuple(item.strip() for item in path.split(" → "))] = name
    return paths


def shown_menu_paths(menu_bar) -> set[tuple[str, ...]]:
    """Every path of the menu bar (each menu's own path included), as napari shows them."""
    found: set[tuple[str, ...]] = set()

    def walk(menu, prefix):
        menu.aboutToShow.emit()  # napari fills some menus (plugins, samples) when they open
        for action in menu.actions():
            if action.isSeparator():
                continue
            path = (*prefix, action.text().replace("&&", "\0").replace("&", "").replace("\0", "&"))
            found.add(path)
            if action.menu() is not None:
                walk(action.menu(), path)

    for action in menu_bar.actions():
        title = action.text().replace("&", "")
        found.add((title,))
        walk(action.menu(), (title,))
    return found


needs_checkout = pytest.mark.skipif(
    not (REPO_ROOT / "README.md").is_file(), reason="needs the source checkout (the docs)"
)


@needs_checkout
def test_the_docs_name_the_plugin_menus():
    paths = documented_menu_paths()
    assert ("Plugins", "ssQPM cell segmentation with DM-QPMNet") in {path[:2] for path in paths}
    assert ("File", "Open Sample", "ssQPM cell segmentation with DM-QPMNet") in paths
    assert any(path[:2] == ("Layers", "Segment") for path in paths)


@needs_checkout
@pytest.mark.gui
def test_every_menu_path_in_the_docs_is_one_napari_shows(make_napari_viewer):
    shown = shown_menu_paths(make_napari_viewer().window._qt_window.menuBar())
    assert ("Plugins", "ssQPM cell segmentation with DM-QPMNet") in shown  # the walk works
    missing = [
        f"{name}: {' → '.join(path)}"
        for path, name in documented_menu_paths().items()
        if path not in shown
    ]
    assert not missing, f"menu paths the docs name but napari does not show: {missing}"
