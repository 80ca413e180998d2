"""Cells over time: link per-frame instance labels into tracks with divisions and growth.

:func:`track_labels` links the cells of a labels stack with the LAP tracker of `laptrack`
(position and dry mass; divisions; gaps) and returns :class:`Tracks`: the labels relabelled
by track, napari's Tracks data and lineage graph, and a per-track table with the growth rate
(pg/h) and doubling time (h) from robust fits. :func:`link_by_overlap` is the nearest-overlap
baseline. :func:`merge_tracks`, :func:`split_track`, :func:`mark_division` and
:func:`unmark_division` correct a result (:mod:`.edit`). Plain numpy/scipy (and laptrack):
no torch, no Qt.

Importing this package imports nothing heavy: each name is imported from its module on first
use (PEP 562), so docking the growth widget does not wait for laptrack and scipy.stats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari_dmqpm._lazy import attach

if TYPE_CHECKING:
    from .edit import mark_division, merge_tracks, split_track, unmark_division
    from .growth import TRACK_COLUMNS, fit_growth
    from .link import track_labels
    from .overlap import link_by_overlap
    from .tracks import Tracks

_WHERE = {
    "TRACK_COLUMNS": ".growth",
    "fit_growth": ".growth",
    "mark_division": ".edit",
    "merge_tracks": ".edit",
    "split_track": ".edit",
    "unmark_division": ".edit",
    "track_labels": ".link",
    "link_by_overlap": ".overlap",
    "Tracks": ".tracks",
}
__all__ = [
    "TRACK_COLUMNS",
    "Tracks",
    "fit_growth",
    "link_by_overlap",
    "mark_division",
    "merge_tracks",
    "split_track",
    "track_labels",
    "unmark_division",
]
__getattr__, __dir__, _ = attach(__name__, _WHERE)
