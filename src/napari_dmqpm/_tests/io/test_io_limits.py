"""Decompression bombs and headers that claim too much are refused before decoding, with a
FormatError naming the file and the declared size (issue 18, item 2)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile

from napari_dmqpm.io import FormatError, read_acquisition
from napari_dmqpm.io import limits as limits_module


def _claiming(path, shape, *, dtype=np.uint8, compression="zlib"):
    """A small compressed TIFF of zeros whose header is patched to declare ``shape``."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((64, 64), dtype), compression=compression,
                     photometric="minisblack", metadata=None)  # fmt: skip
    data = bytearray(buffer.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        tags = tif.pages[0].tags
        for name, value in (("ImageLength", shape[0]), ("ImageWidth", shape[1]),
                            ("RowsPerStrip", shape[0])):  # fmt: skip
            offset = tags[name].valueoffset
            data[offset : offset + 4] = int(value).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("lazy", [False, True])
def test_a_few_bytes_claiming_13_gib_are_a_bomb_not_a_truncated_file(tmp_path, lazy):
    path = _claiming(tmp_path / "bomb.tif", (120_000, 120_000))
    assert path.stat().st_size < 300
    with pytest.raises(FormatError) as caught:
        read_acquisition(path, kind="raw-mosaic", lazy=lazy)
    message = str(caught.value)
    assert message.startswith(f"{path}: the header claims 13.4 GiB of pixels")
    assert "(shape (120000, 120000), uint8) in a file of" in message
    assert "more than deflate can expand (at most 1032:1)" in message
    assert "truncated" not in message


def test_an_uncompressed_header_claiming_13_gib_in_a_small_file_is_not_called_truncated(tmp_path):
    path = _claiming(tmp_path / "liar.tif", (120_000, 120_000), compression=None)
    with pytest.raises(FormatError) as caught:
        read_acquisition(path, kind="raw-mosaic")
    message = str(caught.value)
    assert message.startswith(f"{path}: the header claims 13.4 GiB of pixels (shape (120000,")
    assert "a corrupt header or a decompression bomb, not a truncated file" in message


def test_the_declared_size_is_compared_with_the_memory_available(tmp_path, monkeypatch):
    path = tmp_path / "mosaic.tif"
    tifffile.imwrite(path, np.zeros((1000, 1000), np.uint16), compression="zlib")
    monkeypatch.setattr(limits_module, "available_memory", lambda: 10 * 2**20)
    decoded = []
    monkeypatch.setattr(tifffile.TiffFile, "asarray", lambda *a, **k: decoded.append(1))
    with pytest.raises(FormatError) as caught:
        read_acquisition(path, lazy=False)
    message = str(caught.value)
    assert f"{path}: the header claims 1.9 MiB of pixels (shape (1000, 1000), uint16)" in message
    assert "reading it needs about 13.4 MiB, more than the memory available (10.0 MiB)" in message
    assert not decoded


def test_a_configurable_limit_lowers_the_budget(tmp_path, monkeypatch):
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.float32))
    monkeypatch.setenv(limits_module.LIMIT_ENV, "0.00002")
    with pytest.raises(FormatError, match=r"p\.tif: the header claims 16\.0 KiB.*"
                       r"more than the limit NAPARI_DMQPM_MAX_GIB=0\.00002 GiB"):  # fmt: skip
        read_acquisition(path, lazy=False)
    monkeypatch.setenv(limits_module.LIMIT_ENV, "1")
    assert read_acquisition(path).phase.shape == (1, 64, 64)
    monkeypatch.setenv(limits_module.LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match="NAPARI_DMQPM_MAX_GIB must be a positive number"):
        read_acquisition(path)


def test_a_lazy_frame_too_large_for_the_memory_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "lapse.tif"
    tifffile.imwrite(path, np.zeros((3, 256, 256), np.float32), photometric="minisblack")
    monkeypatch.setattr(limits_module, "available_memory", lambda: 200 * 2**10)
    with pytest.raises(FormatError, match=r"lapse\.tif: one frame takes 256\.0 KiB of pixels"):
        read_acquisition(path, lazy=True)


def test_a_single_frame_too_large_to_read_whole_is_read_in_strips(tmp_path, monkeypatch):
    path = tmp_path / "big_phase.tif"
    phase = np.random.default_rng(0).random((256, 256), dtype=np.float32)
    tifffile.imwrite(path, phase)
    monkeypatch.setattr(limits_module, "available_memory", lambda: 600 * 2**10)
    with pytest.raises(FormatError, match=r"reading it needs about 1\.0 MiB"):
        read_acquisition(path, lazy=False)
    acquisition = read_acquisition(path)  # lazy=None: lazily, as the whole would not fit
    assert acquisition.is_lazy
    np.testing.assert_array_equal(np.asarray(acquisition.phase[0, 100:110]), phase[100:110])


@pytest.mark.parametrize("lazy", [False, True])
def test_a_frame_whose_phase_retrieval_does_not_fit_is_refused_before_decoding(
    tmp_path, monkeypatch, lazy
):
    # 8 MiB of mosaic fit the eager budget (stored + float32 copies, 56 MiB), but unwrapping
    # the 1024 x 1024 demosaiced frame needs about 144 MiB: refused, not a crash in the unwrapper
    path = tmp_path / "mosaic.tif"
    tifffile.imwrite(path, np.zeros((2048, 2048), np.uint16), photometric="minisblack")
    monkeypatch.setattr(limits_module, "available_memory", lambda: 100 * 2**20)
    decoded = []
    monkeypatch.setattr(tifffile.TiffFile, "asarray", lambda *a, **k: decoded.append(1))
    with pytest.raises(FormatError) as caught:
        read_acquisition(path, kind="raw-mosaic", lazy=lazy)
    assert str(caught.value) == (
        f"{path}: retrieving the phase of one frame works on 4.0 MiB of pixels (shape (1024, "
        "1024), float32); reading it needs about 144.0 MiB, more than the memory available "
        "(100.0 MiB); not decoded"
    )
    assert not decoded
    monkeypatch.undo()  # with the memory of this machine, it reads
    assert read_acquisition(path, kind="raw-mosaic", lazy=lazy).frame_shape == (1024, 1024)
