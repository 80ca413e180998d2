"""CTC export: track lines L B E P, 16-bit masks, gaps split into parent-linked tracks."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_dmqpm.io.ctc import ctc_tracks, write_ctc


def _lineage_labels():
    """Track 1 divides into 2 and 3 at frame 2; track 4 is missing in frame 1."""
    labels = np.zeros((4, 16, 16), np.int32)
    labels[:2, 2:6, 2:6] = 1
    labels[2:, 2:6, 2:4] = 2
    labels[2:, 2:6, 4:6] = 3
    labels[[0, 2, 3], 10:14, 10:14] = 4
    return labels


def test_track_lines_hold_label_begin_end_parent_and_split_gaps():
    labels, tracks = ctc_tracks(_lineage_labels(), {2: [1], 3: [1]})
    assert tracks.tolist() == [[1, 0, 1, 0], [2, 2, 3, 1], [3, 2, 3, 1], [4, 0, 0, 0], [5, 2, 3, 4]]
    assert labels.dtype == np.uint16
    assert labels[2, 12, 12] == 5 and labels[0, 12, 12] == 4 and labels[3, 3, 3] == 2


def test_write_ctc_writes_results_and_ground_truth_layouts_and_never_overwrites(tmp_path):
    written = write_ctc(tmp_path / "res", _lineage_labels(), {2: 1, 3: 1})
    assert [p.name for p in written] == ["res_track.txt"] + [f"mask{t:03d}.tif" for t in range(4)]
    assert (tmp_path / "res" / "res_track.txt").read_text().splitlines()[1] == "2 2 3 1"
    mask = tifffile.imread(tmp_path / "res" / "mask002.tif")
    assert mask.dtype == np.uint16 and set(np.unique(mask)) == {0, 2, 3, 5}
    gt = write_ctc(tmp_path / "gt", _lineage_labels(), ground_truth=True)
    assert gt[0] == tmp_path / "gt" / "TRA" / "man_track.txt"
    assert gt[1].name == "man_track000.tif"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_ctc(tmp_path / "res", _lineage_labels())
    write_ctc(tmp_path / "res", _lineage_labels(), overwrite=True)


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match=r"shape \(T, M, N\)"):
        ctc_tracks(np.zeros((4, 4), np.int32))
    with pytest.raises(ValueError, match="one parent"):
        ctc_tracks(_lineage_labels(), {2: [1, 4]})
