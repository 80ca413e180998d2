"""Bounded memory: labels and rows written frame by frame, strips for huge frames."""

import os

import numpy as np
import pytest
import tifffile
import torch

from napari_dmqpm.inference import (
    InferenceConfig,
    PostprocessConfig,
    concat_tables,
    measure_cells,
    output_paths,
    segment_acquisition,
    segment_file,
    write_table_csv,
)
from napari_dmqpm.inference import measure as measure_module
from napari_dmqpm.inference import segment as segment_module
from napari_dmqpm.inference.outputs import stream_outputs
from napari_dmqpm.inference.postprocess import labels_from_maps, labels_in_strips, seed_score
from napari_dmqpm.io import read_acquisition, write_labels, write_stack
from napari_dmqpm.io.write import LabelsStream
from napari_dmqpm.simulation import SimulationConfig, simulate_field

# tiled, at 50 % overlap and batches of 4 (the tile and batch counts below assume them)
CONFIG = InferenceConfig(tile_size=32, overlap=0.5, whole_frame_px=0, batch_size=4, device="cpu")


@pytest.fixture(scope="module")
def field():
    return simulate_field(SimulationConfig(shape=(48, 64), density="dense"), rng=3)


def same_partition(a, b):
    """True when a and b split the pixels into the same cells (label numbers may differ)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return (
        pairs.shape[1] == np.unique(a).size == np.unique(b).size
        and not ((pairs[0] == 0) ^ (pairs[1] == 0)).any()
    )


def frames_of(n_frames, rng, maximum=300):
    return [rng.integers(0, maximum, size=(6, 10)) for _ in range(n_frames)]


@pytest.mark.parametrize(("n_frames", "big_frame"), [(3, None), (1, None), (4, 2), (4, 0)])
def test_the_labels_stream_writes_the_bytes_of_write_labels(tmp_path, n_frames, big_frame):
    rng = np.random.default_rng(n_frames)
    frames = frames_of(n_frames, rng)
    if big_frame is not None:
        frames[big_frame][3, 4] = 70_000  # the file turns uint32 when this frame comes
    stack = np.stack(frames) if n_frames > 1 else frames[0]
    expected = write_labels(tmp_path / "expected.tif", stack, pixel_size_um=0.4)
    order = [1, 3, 0, 2] if n_frames == 4 else range(n_frames)  # any order
    with LabelsStream(tmp_path / "streamed.tif", shape=stack.shape, pixel_size_um=0.4) as out:
        for index in order:
            out.write(index, frames[index])
    assert out.dtype == (np.uint16 if big_frame is None else np.uint32)
    assert (tmp_path / "streamed.tif").read_bytes() == expected.read_bytes()
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "streamed.tif"), stack)


def test_the_labels_stream_checks_its_frames(tmp_path):
    with LabelsStream(tmp_path / "a.tif", shape=(2, 6, 10)) as out:
        with pytest.raises(ValueError, match=r"index must be in \[0, 2\); got index=2"):
            out.write(2, np.zeros((6, 10), int))
        with pytest.raises(ValueError, match=r"labels must have shape \(6, 10\)"):
            out.write(0, np.zeros((6, 11), int))
    with pytest.raises(FileExistsError, match="a.tif exists"):
        LabelsStream(tmp_path / "a.tif", shape=(6, 10))


def test_streamed_outputs_equal_the_written_ones_and_place_both(tmp_path):
    rng = np.random.default_rng(0)
    frames = frames_of(3, rng)
    phase = rng.normal(size=(6, 10))
    tables = [measure_cells(f, phase, frame=t) for t, f in enumerate(frames)]
    targets = output_paths("x.tif", tmp_path)
    with stream_outputs(targets, shape=(3, 6, 10), pixel_size_um=None, overwrite=False) as out:
        for t, (frame, table) in enumerate(zip(frames, tables, strict=True)):
            out.add(t, frame, table)
    assert out.n_rows == sum(len(t["label"]) for t in tables)
    expected_tif = write_labels(tmp_path / "e.tif", np.stack(frames))
    expected_csv = write_table_csv(tmp_path / "e.csv", concat_tables(tables))
    assert targets[0].read_bytes() == expected_tif.read_bytes()
    assert targets[1].read_bytes() == expected_csv.read_bytes()
    assert sorted(os.listdir(tmp_path)) == [
        "e.csv",
        "e.tif",
        "x_cells.csv",
        "x_frames.csv",
        "x_labels.tif",
    ]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_an_error_mid_stream_leaves_no_file_and_no_temporary(tmp_path, error):
    (tmp_path / "x_cells.csv").write_text("keep me")
    targets = output_paths("x.tif", tmp_path)
    frames = frames_of(3, np.random.default_rng(1))
    with (
        pytest.raises(type(error)),
        stream_outputs(targets, shape=(3, 6, 10), pixel_size_um=0.5, overwrite=True) as out,
    ):
        out.add(0, frames[0], measure_cells(frames[0], np.zeros((6, 10))))
        raise error
    assert os.listdir(tmp_path) == ["x_cells.csv"]
    assert (tmp_path / "x_cells.csv").read_text() == "keep me"


@pytest.fixture
def movie_file(tmp_path, field):
    acquisition = field.to_acquisition()
    rng = np.random.default_rng(7)
    angles = np.concatenate([acquisition.angles * (1 + 0.05 * t) for t in range(4)])
    phase = np.concatenate([acquisition.phase + rng.normal(0, 0.05, acquisition.phase.shape)
                            for _ in range(4)])  # fmt: skip
    movie = acquisition.replace(
        angles=angles, phase=phase.astype(np.float32), modulation=None, is_timelapse=True
    )
    return write_stack(tmp_path / "movie.tif", movie)


def test_segment_file_streams_the_same_outputs_as_the_eager_path(helpers, movie_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = segment_file(movie_file, out_dir=out, model=helpers.tiny_net(), config=CONFIG)
    eager = read_acquisition(movie_file, lazy=False)
    frames = list(segment_acquisition(eager, helpers.tiny_net(), config=CONFIG))
    stack = np.stack([f.labels for f in frames])
    assert eager.pixel_size_um is not None
    labels = write_labels(tmp_path / "eager.tif", stack, pixel_size_um=eager.pixel_size_um)
    table = write_table_csv(tmp_path / "eager.csv", concat_tables([f.table for f in frames]))
    assert result.labels_path.read_bytes() == labels.read_bytes()
    assert result.table_path.read_bytes() == table.read_bytes()
    assert result.n_frames == 4 and result.n_cells == sum(len(f.table["label"]) for f in frames)
    assert tifffile.imread(result.labels_path).shape == (4, 48, 64)


def test_segment_file_reads_lazily_and_an_interrupt_mid_stream_leaves_nothing(
    helpers, movie_file, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    out.mkdir()
    opened = []
    real_read = segment_module.read_acquisition
    monkeypatch.setattr(
        segment_module, "read_acquisition", lambda *a, **k: opened.append(k) or real_read(*a, **k)
    )
    measured = []
    real_measure = segment_module.measure_cells

    def measure(*args, **kwargs):
        measured.append(kwargs["frame"])
        if len(measured) == 3:
            raise KeyboardInterrupt
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(segment_module, "measure_cells", measure)
    with pytest.raises(KeyboardInterrupt):
        segment_file(movie_file, out_dir=out, model=helpers.tiny_net(), config=CONFIG)
    assert opened == [{"lazy": True}] and measured == [0, 1, 2]
    assert os.listdir(out) == []


def test_post_processing_in_strips_equals_the_whole_frame(helpers):
    field = simulate_field(SimulationConfig(shape=(160, 96), density="dense"), rng=11)
    probabilities = helpers.probabilities_from_labels(field.labels, distance=True, boundary=0.6)
    config = PostprocessConfig()
    score = seed_score(probabilities, config=config)
    foreground = probabilities.foreground > config.foreground_threshold
    whole = labels_from_maps(score, foreground, config=config)
    strips = labels_in_strips(score, foreground, config=config, strip_rows=40, halo_rows=48)
    assert whole.max() > 10 and same_partition(strips, whole)
    assert np.array_equal(np.unique(strips), np.arange(strips.max() + 1))
    with pytest.raises(ValueError, match="strip_rows must be >= 1"):
        labels_in_strips(score, foreground, strip_rows=0, halo_rows=4)


def test_huge_frames_are_segmented_in_strips_like_the_whole_frame(helpers, monkeypatch):
    field = simulate_field(SimulationConfig(shape=(192, 128), density="dense"), rng=2)
    acquisition = field.to_acquisition()
    network = helpers.PixelNet(distance=True)  # per-pixel: tiling cannot change its output
    with torch.no_grad():  # cells where the phase exceeds 0.5 rad, seeds on its maxima
        network.conv.weight[:, 0, 0, 0] = torch.tensor([-4.0, 1.0, 0.0, 1.0])
        network.conv.bias[:] = torch.tensor([2.0, -1.0, -10.0, -1.5])
    monkeypatch.setattr(segment_module, "resolve_model", lambda model, **_: model)
    whole = next(segment_acquisition(acquisition, network, config=CONFIG))
    monkeypatch.setattr(segment_module, "STRIP_PIXELS", 48 * 128)  # 4 strips of 48 rows
    calls = []
    stripped = segment_acquisition(
        acquisition, network, config=CONFIG, keep_probabilities=False,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    result = next(stripped)
    assert result.probabilities is None
    assert same_partition(result.labels, whole.labels) and whole.labels.max() > 3
    np.testing.assert_allclose(result.table["dry_mass_pg"].sum(), whole.table["dry_mass_pg"].sum())
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[-1] == (99, 99)  # 21 + 28 + 28 + 21 tiles + 1


def test_measurements_in_bands_equal_the_whole_frame(monkeypatch):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 40, size=(50, 30))
    phase = rng.normal(size=(50, 30)).astype(np.float32)
    whole = measure_cells(labels, phase, pixel_size_um=0.5, wavelength_um=0.6)
    monkeypatch.setattr(measure_module, "MEASURE_CHUNK_PIXELS", 7 * 30)
    banded = measure_cells(labels, phase, pixel_size_um=0.5, wavelength_um=0.6)
    for name, column in whole.items():
        if name in measure_module.TEXT_COLUMNS:  # backend and precision (empty here)
            assert banded[name].tolist() == column.tolist()
            continue
        np.testing.assert_allclose(banded[name], column, rtol=1e-12, err_msg=name)
    assert banded["area_px"].tolist() == whole["area_px"].tolist()
