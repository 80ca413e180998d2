import csv
import os

import numpy as np
import pytest
import tifffile

from napari_dmqpm.inference import (
    Cancelled,
    InferenceConfig,
    PostprocessConfig,
    output_paths,
    segment_acquisition,
    segment_file,
)
from napari_dmqpm.inference import outputs as outputs_module
from napari_dmqpm.inference import segment as segment_module
from napari_dmqpm.io import Acquisition, DataWarning, write_stack
from napari_dmqpm.model.registry import load_model
from napari_dmqpm.simulation import SimulationConfig, simulate_field

# tiled, at 50 % overlap and batches of 4 (the tile and batch counts below assume them)
CONFIG = InferenceConfig(tile_size=32, overlap=0.5, whole_frame_px=0, batch_size=4, device="cpu")


@pytest.fixture(scope="module")
def field():
    return simulate_field(SimulationConfig(shape=(48, 64), density="dense"), rng=0)


def timelapse(field, n_frames=3):
    acquisition = field.to_acquisition()
    return acquisition.replace(
        phase=np.repeat(acquisition.phase, n_frames, axis=0),
        angles=np.repeat(acquisition.angles, n_frames, axis=0),
        modulation=None,
        is_timelapse=True,
    )


def test_frames_stream_one_by_one_with_progress_over_all_of_them(helpers, field):
    calls = []
    results = segment_acquisition(
        timelapse(field), helpers.tiny_net(), config=CONFIG,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    first = next(results)
    assert first.frame == 0 and first.labels.shape == (48, 64) and first.labels.dtype == np.uint32
    assert first.probabilities.shape == (48, 64)
    assert set(first.table) >= {"frame", "label", "area_px", "dry_mass_pg"}
    assert np.array_equal(np.unique(first.labels)[1:], first.table["label"])
    rest = list(results)
    assert [r.frame for r in rest] == [1, 2]
    total = calls[-1][1]
    assert calls[-1] == (total, total) and total == 3 * (1 + 6)  # 6 tiles + 1 step per frame
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_chosen_frames_and_thresholds(helpers, field):
    post = PostprocessConfig(foreground_threshold=0.999)
    results = list(
        segment_acquisition(
            timelapse(field), helpers.tiny_net(), config=CONFIG, postprocess=post, frames=[2]
        )
    )
    assert [r.frame for r in results] == [2]
    assert results[0].table["frame"].tolist() == [2] * len(results[0].table["label"])
    with pytest.raises(ValueError, match="frames must be indices"):
        segment_acquisition(timelapse(field), helpers.tiny_net(), frames=[3])


def test_a_dual_model_on_a_phase_map_is_refused_before_any_work(helpers, field):
    phase_map = Acquisition(phase=field.phase[None], kind="phase-map", source="cells.tif")
    with pytest.raises(ValueError, match="needs the four angle images.*cells.tif.*phase-only"):
        segment_acquisition(phase_map, helpers.tiny_net(inputs="both"), config=CONFIG)
    results = segment_acquisition(phase_map, helpers.tiny_net(inputs="phase"), config=CONFIG)
    assert next(results).labels.shape == (48, 64)


def test_cancel_stops_between_batches(helpers, field):
    polls = []

    def should_stop():
        polls.append(1)
        return len(polls) > 3  # 2 batches of tiles per frame: stop in the second frame

    results = segment_acquisition(
        timelapse(field), helpers.tiny_net(), config=CONFIG, should_stop=should_stop
    )
    assert next(results).frame == 0
    with pytest.raises(Cancelled):
        next(results)
    assert len(polls) == 4


def test_nan_pixels_are_repaired_with_a_warning(helpers, field):
    acquisition = field.to_acquisition()
    phase = acquisition.phase.copy()
    phase[0, 5, :7] = np.nan
    broken = acquisition.replace(phase=phase)
    with pytest.warns(DataWarning, match="7 NaN/Inf pixels in phase"):
        result = next(segment_acquisition(broken, helpers.tiny_net(), config=CONFIG))
    assert np.isfinite(result.probabilities.classes).all()
    assert np.isnan(phase[0, 5, :7]).all()  # the input is not modified


def test_labels_come_back_at_the_original_size_after_resampling(helpers, models_dir, field):
    helpers.save_tiny(models_dir / "tiny", inputs="both", cell_diameter_px=10.0)
    config = CONFIG.replace(diameter_px=20.0)
    result = next(segment_acquisition(field.to_acquisition(), "tiny", config=config))
    assert result.labels.shape == (48, 64) and result.probabilities.scale == 0.5


def test_postprocessing_travels_with_the_weights(helpers, models_dir, field):
    helpers.save_tiny(models_dir / "tiny", inputs="both", postprocessing={"seed_h": 0.3})
    assert segment_module.default_postprocess(load_model("tiny", device="cpu")).seed_h == 0.3
    helpers.save_tiny(models_dir / "bad", inputs="both", postprocessing={"sead_h": 0.3})
    with pytest.raises(ValueError, match="'postprocessing' of model 'bad'.*sead_h"):
        segment_acquisition(field.to_acquisition(), "bad", config=CONFIG)


@pytest.fixture
def stack_file(tmp_path, field):
    path = tmp_path / "input" / "cells.ome.tif"
    path.parent.mkdir()
    write_stack(path, field.to_acquisition())
    return path


def test_segment_file_writes_labels_and_table(helpers, stack_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = segment_file(stack_file, out_dir=out, model=helpers.tiny_net(), config=CONFIG)
    assert result.labels_path == out / "cells_labels.tif"
    assert result.table_path == out / "cells_cells.csv"
    labels = tifffile.imread(result.labels_path)
    assert labels.shape == (48, 64)
    with result.table_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == result.n_cells == len(np.unique(labels)) - 1
    assert sorted(os.listdir(out)) == ["cells_cells.csv", "cells_frames.csv", "cells_labels.tif"]


def test_segment_file_writes_a_time_lapse_as_tyx(helpers, field, tmp_path):
    path = tmp_path / "movie.tif"
    write_stack(path, timelapse(field, 2))
    result = segment_file(path, out_dir=tmp_path, model=helpers.tiny_net(), config=CONFIG)
    assert tifffile.imread(result.labels_path).shape == (2, 48, 64)
    assert result.n_frames == 2


def test_segment_file_refuses_to_overwrite_before_any_work(helpers, stack_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "cells_cells.csv").write_text("keep me")
    with pytest.raises(FileExistsError, match="cells_cells.csv"):
        segment_file(stack_file, out_dir=out, model=helpers.tiny_net(), config=CONFIG)
    assert sorted(os.listdir(out)) == ["cells_cells.csv"]
    segment_file(stack_file, out_dir=out, model=helpers.tiny_net(), config=CONFIG, overwrite=True)
    assert (out / "cells_cells.csv").read_text().startswith("frame,label,")


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_segment_file_leaves_nothing_when_interrupted(
    helpers, stack_file, tmp_path, monkeypatch, error
):
    out = tmp_path / "out"
    out.mkdir()

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(outputs_module, "table_to_csv", fail)
    with pytest.raises(type(error)):
        segment_file(stack_file, out_dir=out, model=helpers.tiny_net(), config=CONFIG)
    assert os.listdir(out) == []


def test_segment_file_leaves_nothing_when_placing_the_second_file_fails(
    helpers, stack_file, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    out.mkdir()
    real_place = outputs_module.place_file
    calls = []

    def place(temporary, target, overwrite):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_place(temporary, target, overwrite)

    monkeypatch.setattr(outputs_module, "place_file", place)
    with pytest.raises(KeyboardInterrupt):
        segment_file(stack_file, out_dir=out, model=helpers.tiny_net(), config=CONFIG)
    assert os.listdir(out) == []


def test_segment_file_needs_an_existing_output_folder(helpers, stack_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="output folder"):
        segment_file(stack_file, out_dir=tmp_path / "nope", model=helpers.tiny_net())


def test_segment_file_reports_an_unwritable_folder_before_any_work(
    helpers, stack_file, tmp_path, monkeypatch
):
    out = tmp_path / "locked"
    out.mkdir(mode=0o500)
    if os.access(out, os.W_OK):  # root ignores permissions: refuse the probe file instead

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(outputs_module.tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr(segment_module, "read_acquisition", pytest.fail)
    with pytest.raises(PermissionError, match="cannot write to the output folder"):
        segment_file(stack_file, out_dir=out, model=helpers.tiny_net())


def test_output_names_drop_the_tiff_suffixes():
    assert output_paths("a/b/x.ome.tiff", "o") == (
        output_paths("x.tif", "o")[0],
        output_paths("x.png", "o")[1],
        output_paths("x", "o")[2],
    )
    assert output_paths("run.1.tif", "o")[0].name == "run.1_labels.tif"


@pytest.mark.parametrize("value", [0.0, 1.0, -0.4])
def test_a_featureless_frame_at_any_phase_gives_no_cells(value):
    """The shipped phase-only model: a constant 1 rad frame gave 30 'cells' before."""
    acquisition = Acquisition(
        phase=np.full((1, 192, 192), value, np.float32), kind="phase-map", pixel_size_um=0.627
    )
    config = InferenceConfig(device="cpu")
    result = next(segment_acquisition(acquisition, "phase-only", config=config))
    assert result.labels.max() == 0 and len(result.table["label"]) == 0


def test_strips_of_a_large_frame_share_the_frames_background_level(monkeypatch):
    """Each strip subtracts the level measured once on the whole frame, not its own."""
    field = simulate_field(SimulationConfig(shape=(160, 96), density="medium"), rng=2)
    acquisition = Acquisition(phase=field.phase[None] + 0.4, kind="phase-map")
    levels = []
    real = segment_module.predict_probabilities

    def spy(*args, phase_level=None, **kwargs):
        levels.append(phase_level)
        return real(*args, phase_level=phase_level, **kwargs)

    monkeypatch.setattr(segment_module, "predict_probabilities", spy)
    monkeypatch.setattr(segment_module, "STRIP_PIXELS", 48 * 96)  # 160 rows: 4 strips
    config = InferenceConfig(tile_size=64, device="cpu", diameter_px=None)
    strips = segment_acquisition(acquisition, "phase-only", config=config, keep_probabilities=False)
    result = next(strips)
    assert len(levels) > 1 and len(set(levels)) == 1
    assert levels[0] == pytest.approx(0.4, abs=0.03)
    plain = acquisition.replace(phase=field.phase[None])
    unshifted = next(
        segment_acquisition(plain, "phase-only", config=config, keep_probabilities=False)
    )
    from napari_dmqpm.training.metrics import score_image

    assert result.labels.max() > 2
    assert score_image(result.labels, unshifted.labels).f1 == pytest.approx(1.0)
