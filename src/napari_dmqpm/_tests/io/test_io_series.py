"""Many pages and many series: the header is inspected cheaply, and what is not read is said
(issue 18, item 4)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import tifffile

from napari_dmqpm.io import DataWarning, describe_file, inspect_file, read_acquisition
from napari_dmqpm.io import _series as series_module


def _page_by_page(path, n_pages, shape=(8, 8)):
    """A tifffile "shaped" TIFF written one page at a time: one series per page."""
    with tifffile.TiffWriter(path) as writer:
        for index in range(n_pages):
            writer.write(np.full(shape, index % 251, np.uint8))
    return path


@pytest.fixture
def no_series_enumeration(monkeypatch):
    """tifffile's TiffFile.series (quadratic in the number of series) must not be used."""

    def refuse(self):
        raise AssertionError("TiffFile.series enumerated")

    monkeypatch.setattr(tifffile.TiffFile, "series", property(refuse))


def test_a_file_of_many_one_page_series_is_inspected_without_enumerating_them(
    tmp_path, no_series_enumeration
):
    from napari_dmqpm._napari._reader import get_reader, read_paths

    path = _page_by_page(tmp_path / "pages.tif", 1200)
    info = inspect_file(path)
    assert (info.shape, info.kind) == ((8, 8), "raw-mosaic")
    note = "reads series 0 (1 of 1200 pages); the other 1199 pages ignored"
    assert info.ignored == note
    assert f"  ignored:     {note}" in describe_file(path)
    assert get_reader(str(path)) is read_paths
    with pytest.warns(DataWarning, match=re.escape(f"pages.tif: {note}")):
        acquisition = read_acquisition(path, lazy=True)
    assert acquisition.metadata["ignored"] == note
    np.asarray(acquisition.phase[0])  # the lazy reader finds series 0 the same way


@pytest.mark.parametrize("shape", [(16, 16), (3, 16, 16)])
def test_series_0_built_alone_is_tifffiles_series_0(tmp_path, shape):
    path = tmp_path / "three.tif"
    rng = np.random.default_rng(0)
    with tifffile.TiffWriter(path) as writer:
        for _ in range(3):
            writer.write(rng.random(shape, dtype=np.float32), photometric="minisblack")
    with tifffile.TiffFile(path) as mine, tifffile.TiffFile(path) as theirs:
        built, expected = series_module._shaped_first(mine, len(mine.pages)), theirs.series[0]
        assert (built.shape, built.axes, built.dtype) == (expected.shape, expected.axes,
                                                          expected.dtype)  # fmt: skip
        np.testing.assert_array_equal(built.asarray(), expected.asarray())


def test_other_series_are_named_when_read(tmp_path):
    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as writer:
        writer.write(np.zeros((32, 32), np.float32))
        writer.write(np.zeros((8, 8), np.uint8))
    note = "reads series 0 (1 of 2 pages); the other 1 series, 1 page ignored"
    assert inspect_file(path).ignored == note
    with pytest.warns(DataWarning, match=re.escape(note)):
        read_acquisition(path)
    one = tmp_path / "one.tif"
    tifffile.imwrite(one, np.zeros((32, 32), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_acquisition(one).metadata.get("ignored") is None
