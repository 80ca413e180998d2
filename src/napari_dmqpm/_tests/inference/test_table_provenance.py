"""The cells CSV says what ran the network and at which precision (issue 17)."""

from __future__ import annotations

import csv
import io

import numpy as np

from napari_dmqpm.inference.measure import (
    TABLE_COLUMNS,
    TEXT_COLUMNS,
    concat_tables,
    empty_table,
    measure_cells,
    read_table_csv,
    table_to_csv,
    write_table_csv,
)


def two_cells() -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((40, 40), np.int32)
    labels[5:15, 5:15] = 1
    labels[20:32, 22:34] = 2
    return labels, (labels > 0) * 1.5


def test_backend_and_precision_are_columns_of_every_row(tmp_path):
    labels, phase = two_cells()
    table = measure_cells(labels, phase, pixel_size_um=0.5, backend="openvino",
                          precision="bfloat16", cell_diameter_px=21.0)  # fmt: skip
    assert set(TEXT_COLUMNS) <= set(TABLE_COLUMNS) and list(table) == list(TABLE_COLUMNS)
    assert table["backend"].tolist() == ["openvino", "openvino"]
    assert table["precision"].tolist() == ["bfloat16", "bfloat16"]
    path = write_table_csv(tmp_path / "cells.csv", table)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["backend"], r["precision"]) for r in rows] == [("openvino", "bfloat16")] * 2
    # the numeric columns read as before, beside the text ones
    numbers = read_table_csv(path, ["label", "area_px", "cell_diameter_px"])
    assert numbers["area_px"].tolist() == [100.0, 144.0]
    assert numbers["cell_diameter_px"].tolist() == [21.0, 21.0]


def test_labels_not_from_a_segmentation_leave_them_empty():
    labels, phase = two_cells()
    table = measure_cells(labels, phase)
    text = table_to_csv(table)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["backend"] for r in rows] == ["", ""] and [r["precision"] for r in rows] == ["", ""]


def test_frames_without_cells_concatenate_with_frames_with_cells():
    labels, phase = two_cells()
    table = concat_tables([empty_table(), measure_cells(labels, phase, backend="torch",
                                                         precision="float32")])  # fmt: skip
    assert table["backend"].tolist() == ["torch", "torch"]
    assert table["label"].dtype == np.int64 and table["area_um2"].dtype == np.float64


def _segment_to_csv(tmp_path, helpers) -> list[dict[str, str]]:
    from napari_dmqpm.inference import InferenceConfig, segment_file
    from napari_dmqpm.io import write_stack
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    field = simulate_field(SimulationConfig(shape=(64, 64), density="dense"), rng=3)
    path = tmp_path / "frame.tif"
    if not path.exists():
        write_stack(path, field.to_acquisition())
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    config = InferenceConfig(tile_size=32, whole_frame_px=0, device="cpu")
    result = segment_file(path, out_dir=out, model=helpers.tiny_net(), config=config,
                          overwrite=True)  # fmt: skip
    with open(result.table_path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_segment_file_writes_what_ran_the_network(tmp_path, helpers, monkeypatch):
    from napari_dmqpm.inference import segment as segment_module

    rows = _segment_to_csv(tmp_path, helpers)
    assert rows and {(r["backend"], r["precision"]) for r in rows} == {("torch", "float32")}
    # the column follows the engine that ran, not a constant
    monkeypatch.setattr(segment_module, "describe", lambda model, backend: ("openvino", "bfloat16"))
    rows = _segment_to_csv(tmp_path, helpers)
    assert rows and {(r["backend"], r["precision"]) for r in rows} == {("openvino", "bfloat16")}
