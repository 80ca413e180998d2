"""Property tests: whatever bytes a file holds, the reader raises FormatError or returns data.

Each mutated file is read three ways: eagerly, lazily (frame 0 computed) and through the napari
reader (``get_reader`` never raises; its reader function raises FormatError or returns layers).
Slow, and seeded: hypothesis runs the same examples every time (``derandomize``).
"""

import warnings
from io import BytesIO

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from napari_dmqpm._napari._reader import get_reader
from napari_dmqpm.io import Acquisition, DataWarning, FormatError, read_acquisition
from napari_dmqpm.phase import synthesize_angles

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # a fixed seed: the same mutated files on every run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
PREFIXES = [b"", b"II*\x00", b"MM\x00*", b"II+\x00", b"\x89PNG\r\n\x1a\n"]


def valid_files():
    """A few small valid files of every kind, as bytes."""
    rows, cols = np.mgrid[:16, :16]
    angles = synthesize_angles(np.sin(rows / 4.0) + 0.3 * cols)
    stack = np.concatenate([angles, np.zeros((1, 16, 16), np.float32)])
    files = {}
    for name, data, options in [
        ("ssqpm.tif", stack, {"imagej": True, "metadata": {"axes": "CYX"}}),
        ("angles_lzw.tif", angles.astype(np.uint16), {"compression": "lzw"}),
        ("phase_zstd.tif", angles[0], {"compression": "zstd"}),
        ("ome.tif", stack, {"ome": True, "metadata": {"axes": "CYX"}}),
    ]:
        buffer = BytesIO()
        tifffile.imwrite(buffer, data, photometric="minisblack", **options)
        files[name] = buffer.getvalue()
    buffer = BytesIO()
    Image.fromarray(angles[0].astype(np.uint8)).save(buffer, format="PNG")
    files["raw.png"] = buffer.getvalue()
    return files


VALID = valid_files()


def _eager(path):
    return read_acquisition(path, lazy=False)


def _lazy(path):
    acquisition = read_acquisition(path, lazy=True)
    np.asarray(acquisition.phase[0])  # decoding happens here for lazy arrays
    return acquisition


def _napari(path):
    reader = get_reader(str(path))  # never raises, whatever the bytes
    return None if reader is None else reader(str(path))


def read_quietly(path):
    """Read eagerly, lazily and through the napari reader, each on its own, ignoring warnings
    about repaired data or arithmetic on garbage values; the eager Acquisition or None."""
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for read in (_eager, _lazy, _napari):
            try:
                results.append(read(path))
            except FormatError as error:
                assert path.name in str(error)
                results.append(None)
    eager, lazy, layers = results
    assert layers is None or isinstance(layers, list)
    assert lazy is None or isinstance(lazy, Acquisition)
    return eager


@pytest.mark.slow
@SETTINGS
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(min_size=0, max_size=600))
def test_random_bytes_give_only_format_errors(tmp_path, prefix, body):
    path = tmp_path / "random.tif"
    path.write_bytes(prefix + body)
    result = read_quietly(path)
    assert result is None or isinstance(result, Acquisition)


@pytest.mark.slow
@SETTINGS
@given(name=st.sampled_from(sorted(VALID)), fraction=st.floats(0.0, 1.0))
def test_truncated_files_give_only_format_errors(tmp_path, name, fraction):
    data = VALID[name]
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * fraction)])
    result = read_quietly(path)
    assert result is None or isinstance(result, Acquisition)


@pytest.mark.slow
@SETTINGS
@given(
    name=st.sampled_from(sorted(VALID)),
    position=st.integers(0, 10**6),
    value=st.integers(0, 255),
)
def test_flipped_bytes_give_only_format_errors(tmp_path, name, position, value):
    data = bytearray(VALID[name])
    data[position % len(data)] = value
    path = tmp_path / name
    path.write_bytes(bytes(data))
    result = read_quietly(path)
    assert result is None or isinstance(result, Acquisition)


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_valid_files_read(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(VALID[name])
    assert isinstance(read_acquisition(path), Acquisition)
