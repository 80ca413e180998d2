"""Cells over time: link per-frame instance labels into tracks with divisions and growth.

:func:`track_labels` links the cells of a labels stack with the LAP tracker of `laptrack`
(position and dry mass; divisions; gaps) and returns :class:`Tracks`: the labels relabelled
by track, napari's Tracks data and lineage graph, and a per-track table with the growth rate
(pg/h) and doubling time (h) from robust fits. :func:`link_by_overlap` is the nearest-overlap
baseline. Plain numpy/scipy (and laptrack): no torch, no Qt.
"""

from napari_dmqpm.tracking.growth import TRACK_COLUMNS, fit_growth
from napari_dmqpm.tracking.link import track_labels
from napari_dmqpm.tracking.overlap import link_by_overlap
from napari_dmqpm.tracking.tracks import Tracks

__all__ = ["TRACK_COLUMNS", "Tracks", "fit_growth", "link_by_overlap", "track_labels"]
