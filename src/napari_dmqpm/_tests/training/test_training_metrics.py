"""Metrics on hand-made cases, aggregation, and evaluate_folders / format_report."""

import numpy as np
import pytest
import tifffile

from napari_dmqpm.training.metrics import (
    evaluate_folders,
    evaluate_labels,
    foreground_dice,
    foreground_iou,
    format_report,
    iou_matrix,
    match_instances,
    mean_sd,
    score_image,
)


def _truth() -> np.ndarray:
    labels = np.zeros((40, 40), dtype=np.int32)
    labels[2:12, 2:12] = 1
    labels[20:30, 5:15] = 2
    labels[22:32, 25:35] = 3
    return labels


def test_perfect_prediction_scores_one_and_relabelling_does_not_matter():
    truth = _truth()
    pred = np.where(truth > 0, truth + 100, 0)
    scores = score_image(pred, truth)
    assert (scores.dice, scores.iou, scores.f1, scores.mean_matched_iou) == (1.0, 1.0, 1.0, 1.0)
    assert (scores.tp, scores.fp, scores.fn) == (3, 0, 0)


def test_shifted_object_has_the_expected_iou():
    truth = np.zeros((20, 20), dtype=np.int32)
    truth[5:15, 5:15] = 1
    pred = np.roll(truth, 2, axis=1)  # overlap 10x8 = 80, union 120
    assert foreground_iou(pred, truth) == pytest.approx(80 / 120)
    assert foreground_dice(pred, truth) == pytest.approx(160 / 200)
    tp, fp, fn, matched = match_instances(pred, truth)
    assert (tp, fp, fn) == (1, 0, 0) and matched[0] == pytest.approx(2 / 3)
    # shifted by 5: IoU 50/150 < 0.5, one FP and one FN
    scores = score_image(np.roll(truth, 5, axis=1), truth)
    assert (scores.tp, scores.fp, scores.fn, scores.f1) == (0, 1, 1, 0.0)


def test_split_and_merge_are_counted():
    truth = _truth()
    split = truth.copy()
    split[2:12, 2:5] = 7  # cell 1 loses 30 %: main part IoU 0.7 stays matched, fragment is FP
    scores = score_image(split, truth)
    assert (scores.tp, scores.fp, scores.fn) == (3, 1, 0)
    assert scores.f1 == pytest.approx(6 / 7)
    halves = truth.copy()
    halves[2:12, 7:12] = 8  # a split in two halves: IoU 0.5 each -> one match at >= 0.5
    assert score_image(halves, truth, iou_threshold=0.51).tp == 2
    merged = truth.copy()
    merged[merged == 3] = 2  # cells 2 and 3 predicted as one: IoU 0.5 with each, not > 0.5 ...
    merged[30:32, 15:25] = 2  # ... bridged: both IoUs drop below 0.5
    scores = score_image(merged, truth)
    assert (scores.tp, scores.fp, scores.fn) == (1, 1, 2)


def test_empty_images_and_iou_matrix():
    empty = np.zeros((8, 8), dtype=np.int32)
    assert score_image(empty, empty).f1 == 1.0
    truth = _truth()
    none = np.zeros_like(truth)
    assert score_image(none, truth).f1 == 0.0 and score_image(none, truth).fn == 3
    iou, truth_ids, pred_ids = iou_matrix(truth, truth)
    assert np.allclose(iou, np.eye(3)) and list(truth_ids) == [1, 2, 3]
    with pytest.raises(ValueError, match="same shape"):
        score_image(empty, truth)


def test_mean_sd_and_report_summary():
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_sd([0.5]) == (0.5, 0.0)
    truth = _truth()
    report = evaluate_labels([("a", truth, truth), ("b", np.zeros_like(truth), truth)])
    mean, sd = report.summary()["f1"]
    assert mean == pytest.approx(0.5) and sd == pytest.approx(np.std([1, 0], ddof=1))
    assert report.pooled_f1 == pytest.approx(2 * 3 / (2 * 3 + 3))
    assert set(report.to_dict()["images"]) == {"a", "b"}


def test_evaluate_folders_matches_by_stem_and_formats(tmp_path):
    truth_dir, pred_dir = tmp_path / "truth", tmp_path / "pred"
    truth_dir.mkdir()
    pred_dir.mkdir()
    truth = _truth().astype(np.uint16)
    tifffile.imwrite(truth_dir / "img1_labels.tif", truth)
    tifffile.imwrite(truth_dir / "img2_labels.tif", np.stack([truth, truth]))  # a time-lapse
    tifffile.imwrite(pred_dir / "img1_labels.tif", truth)
    tifffile.imwrite(pred_dir / "img2_labels.tif", np.stack([truth, np.zeros_like(truth)]))
    tifffile.imwrite(pred_dir / "extra_labels.tif", truth)
    report = evaluate_folders(pred_dir, truth_dir)
    assert report.names == ("img1", "img2[0]", "img2[1]")
    assert [s.f1 for s in report.images] == [1.0, 1.0, 0.0]
    assert report.unmatched == ("extra_labels.tif",)
    text = format_report(report)
    assert "| img2[1] | 0.000 |" in text and "mean ± sd" in text and "extra_labels.tif" in text
    assert text.splitlines()[0].startswith("| image | Dice | IoU | F1@0.5")


def test_evaluate_folders_errors_are_clear(tmp_path):
    truth_dir, pred_dir = tmp_path / "truth", tmp_path / "pred"
    truth_dir.mkdir()
    pred_dir.mkdir()
    with pytest.raises(FileNotFoundError, match="no <stem>_labels.tif"):
        evaluate_folders(pred_dir, truth_dir)
    with pytest.raises(FileNotFoundError, match="pred_dir is not a folder"):
        evaluate_folders(tmp_path / "nope", truth_dir)
    tifffile.imwrite(truth_dir / "a_labels.tif", _truth())
    tifffile.imwrite(truth_dir / "b_labels.tif", _truth())
    tifffile.imwrite(pred_dir / "a_labels.tif", _truth()[:20])
    with pytest.raises(FileNotFoundError, match="b_labels.tif"):
        evaluate_folders(pred_dir, truth_dir)
    tifffile.imwrite(pred_dir / "b_labels.tif", _truth())
    with pytest.raises(ValueError, match="shape"):
        evaluate_folders(pred_dir, truth_dir)


def _dense_reference(pred, truth, threshold):
    """The former matching: Hungarian on the whole dense IoU matrix."""
    from scipy.optimize import linear_sum_assignment

    iou, _, _ = iou_matrix(pred, truth)
    if iou.size == 0:
        return np.zeros(0)
    eligible = np.where(iou >= threshold, iou, 0.0)
    rows, cols = linear_sum_assignment(eligible, maximize=True)
    matched = eligible[rows, cols]
    return np.sort(matched[matched > 0])


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5, 0.75])
def test_sparse_matching_equals_the_dense_hungarian(threshold):
    """Random overlapping blobs: the same matches and IoUs as one global assignment."""
    from skimage.segmentation import watershed

    rng = np.random.default_rng(4)
    for _ in range(5):
        shape = (60, 60)
        truth = watershed(rng.random(shape), markers=25, mask=rng.random(shape) < 0.85)
        pred = watershed(rng.random(shape), markers=rng.integers(10, 40))
        pred[rng.random(shape) < 0.1] = 0
        tp, fp, fn, matched = match_instances(pred, truth, iou_threshold=threshold)
        expected = _dense_reference(pred, truth, threshold)
        assert tp == expected.size
        assert np.allclose(np.sort(matched), expected)
        assert tp + fn == len(np.unique(truth)) - (0 in truth)
        assert tp + fp == len(np.unique(pred)) - (0 in pred)


def test_matching_ten_thousand_cells_needs_no_dense_iou_matrix():
    """10,000 cells: a dense float64 IoU matrix alone would take 800 MB."""
    import tracemalloc

    truth = (np.arange(1000)[:, None] // 10 * 100 + np.arange(1000)[None, :] // 10 + 1).astype(
        np.int32
    )
    pred = np.roll(truth, 2, axis=1)
    tracemalloc.start()
    tp, fp, fn, matched = match_instances(pred, truth)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (tp, fp, fn) == (10_000, 0, 0) and np.allclose(matched, 80 / 120)
    assert peak < 200 * 2**20
