"""Segmentation scores in numpy: foreground Dice and IoU, instance F1 at an IoU threshold.

Used by the training loop's validation and by ``dmqpm evaluate`` (``evaluate_folders``).
Instances are matched one-to-one by the Hungarian algorithm on their IoU matrix (built from
sparse overlaps, so it is cheap for thousands of cells); a pair counts as a true positive when
its IoU is at least the threshold. At a threshold of 0.5 or more the match is unique, so
this equals the greedy match used by most papers. A split cell gives one true positive (the
largest fragment, if it covers more than half) and false positives for the other fragments;
a merge gives one true positive at most and false negatives for the other cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class ImageScores:
    """Scores of one predicted label image against its ground truth.

    Attributes
    ----------
    dice, iou : float
        Foreground Dice and IoU (``labels > 0``); 1 when both are empty.
    f1, precision, recall : float
        Instance scores at ``iou_threshold``: ``F1 = 2TP / (2TP + FP + FN)``; 1 when both
        images have no cells.
    mean_matched_iou : float
        Mean IoU of the matched pairs (0 when nothing matches, 1 when both are empty).
    n_true, n_pred, tp, fp, fn : int
        Cell counts and the match counts.
    iou_threshold : float
        The threshold used.
    """

    dice: float
    iou: float
    f1: float
    precision: float
    recall: float
    mean_matched_iou: float
    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    iou_threshold: float = 0.5


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(
            f"pred and truth must have the same shape; got pred.shape={pred.shape}, "
            f"truth.shape={truth.shape}"
        )
    return pred, truth


def foreground_dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient of the foregrounds ``pred > 0`` and ``truth > 0`` (1 if both are empty).

    Parameters
    ----------
    pred : ndarray of shape (M, N)
        Predicted labels (or any map whose foreground is ``> 0``).
    truth : ndarray of shape (M, N)
        True labels.

    Examples
    --------
    >>> foreground_dice(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
    0.6666666666666666
    """
    pred, truth = _check_pair(pred, truth)
    a, b = pred > 0, truth > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


def foreground_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of the foregrounds (1 if both are empty).

    Parameters
    ----------
    pred : ndarray of shape (M, N)
        Predicted labels (or any map whose foreground is ``> 0``).
    truth : ndarray of shape (M, N)
        True labels.

    Examples
    --------
    >>> foreground_iou(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
    0.5
    """
    pred, truth = _check_pair(pred, truth)
    a, b = pred > 0, truth > 0
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def iou_pairs(
    pred: np.ndarray, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every overlapping (truth cell, predicted cell) pair, as sparse triplets.

    Memory grows with the number of overlapping pairs, not with ``n_true * n_pred``.

    Parameters
    ----------
    pred, truth : ndarray of the same shape, integer
        Instance labels, 0 is background.

    Returns
    -------
    rows, cols : ndarray of int
        Indices into ``truth_ids`` and ``pred_ids`` of each overlapping pair.
    iou : ndarray of float64
        The pair's IoU (> 0).
    truth_ids, pred_ids : ndarray of int
        The label values of the cells (background excluded).
    """
    pred, truth = _check_pair(pred, truth)
    truth_ids, truth_index = np.unique(truth.ravel(), return_inverse=True)
    pred_ids, pred_index = np.unique(pred.ravel(), return_inverse=True)
    n_truth, n_pred = truth_ids.size, pred_ids.size
    codes = truth_index.astype(np.int64) * n_pred + pred_index
    pairs, overlap = np.unique(codes, return_counts=True)
    rows, cols = np.divmod(pairs, n_pred)
    truth_area = np.bincount(truth_index, minlength=n_truth)
    pred_area = np.bincount(pred_index, minlength=n_pred)
    keep = (truth_ids[rows] != 0) & (pred_ids[cols] != 0)
    rows, cols, overlap = rows[keep], cols[keep], overlap[keep]
    t_fg, p_fg = truth_ids != 0, pred_ids != 0
    iou = overlap / (truth_area[rows] + pred_area[cols] - overlap)
    t_pos, p_pos = np.cumsum(t_fg) - 1, np.cumsum(p_fg) - 1
    return t_pos[rows], p_pos[cols], iou.astype(np.float64), truth_ids[t_fg], pred_ids[p_fg]


def iou_matrix(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every (truth cell, predicted cell) pair, as a dense matrix (small images only).

    Parameters
    ----------
    pred, truth : ndarray of the same shape, integer
        Instance labels, 0 is background.

    Returns
    -------
    iou : ndarray of shape (n_true, n_pred), float64
        Zero for pairs that do not overlap.
    truth_ids, pred_ids : ndarray of int
        The label values of the rows and the columns.
    """
    rows, cols, values, truth_ids, pred_ids = iou_pairs(pred, truth)
    iou = np.zeros((truth_ids.size, pred_ids.size), dtype=np.float64)
    iou[rows, cols] = values
    return iou, truth_ids, pred_ids


def _assign(rows: np.ndarray, cols: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The weights of a maximum-weight one-to-one matching of sparse (row, col) pairs.

    Each connected group of pairs is solved on its own dense matrix (a cell overlaps only its
    neighbours), so the cost follows the groups, not the whole image.
    """
    if rows.size == 0:
        return np.zeros(0)
    _, row_index = np.unique(rows, return_inverse=True)
    _, col_index = np.unique(cols, return_inverse=True)
    n_rows = int(row_index.max()) + 1
    graph = coo_matrix(
        (np.ones(rows.size), (row_index, n_rows + col_index)),
        shape=(n_rows + int(col_index.max()) + 1,) * 2,
    )
    _, component = connected_components(graph, directed=False)
    group = component[row_index]
    matched = []
    for members in np.split(
        np.argsort(group, kind="stable"), np.flatnonzero(np.diff(np.sort(group))) + 1
    ):
        if members.size == 1:
            matched.append(weight[members])
            continue
        r_ids, r = np.unique(row_index[members], return_inverse=True)
        c_ids, c = np.unique(col_index[members], return_inverse=True)
        dense = np.zeros((r_ids.size, c_ids.size))
        dense[r, c] = weight[members]
        picked_rows, picked_cols = linear_sum_assignment(dense, maximize=True)
        matched.append(dense[picked_rows, picked_cols])
    values = np.concatenate(matched)
    return values[values > 0]


def match_instances(
    pred: np.ndarray, truth: np.ndarray, *, iou_threshold: float = 0.5
) -> tuple[int, int, int, np.ndarray]:
    """One-to-one matching of predicted to true cells at an IoU threshold.

    Parameters
    ----------
    pred, truth : ndarray of the same shape, integer
        Instance labels, 0 is background.
    iou_threshold : float
        Minimum IoU of a true positive, in (0, 1].

    Returns
    -------
    tp, fp, fn : int
        True positives, false positives (unmatched predictions), false negatives.
    matched_iou : ndarray of shape (tp,), float64
        The IoU of each matched pair.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1]; got {iou_threshold!r}")
    rows, cols, iou, truth_ids, pred_ids = iou_pairs(pred, truth)
    eligible = iou >= iou_threshold
    matched = _assign(rows[eligible], cols[eligible], iou[eligible])
    tp = int(matched.size)
    return tp, int(pred_ids.size) - tp, int(truth_ids.size) - tp, matched


def score_image(pred: np.ndarray, truth: np.ndarray, *, iou_threshold: float = 0.5) -> ImageScores:
    """All scores of one predicted label image (M, N) against the truth (M, N).

    Parameters
    ----------
    pred : ndarray of shape (M, N)
        Predicted labels (or any map whose foreground is ``> 0``).
    truth : ndarray of shape (M, N)
        True labels.
    iou_threshold : float
        IoU at or above which a predicted cell matches a true one.

    Examples
    --------
    >>> truth = np.zeros((8, 8), dtype=int); truth[1:4, 1:4] = 1; truth[5:8, 5:8] = 2
    >>> scores = score_image(truth, truth)
    >>> scores.f1, scores.dice, scores.tp
    (1.0, 1.0, 2)
    """
    pred, truth = _check_pair(pred, truth)
    tp, fp, fn, matched = match_instances(pred, truth, iou_threshold=iou_threshold)
    n_true, n_pred = tp + fn, tp + fp
    empty = n_true == 0 and n_pred == 0
    return ImageScores(
        dice=foreground_dice(pred, truth),
        iou=foreground_iou(pred, truth),
        f1=1.0 if empty else 2.0 * tp / (2 * tp + fp + fn),
        precision=tp / n_pred if n_pred else (1.0 if n_true == 0 else 0.0),
        recall=1.0 if n_true == 0 else tp / n_true,
        mean_matched_iou=1.0 if empty else (float(matched.mean()) if tp else 0.0),
        n_true=n_true,
        n_pred=n_pred,
        tp=tp,
        fp=fp,
        fn=fn,
        iou_threshold=float(iou_threshold),
    )


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value).

    Parameters
    ----------
    values : iterable of float
        The values, at least one.

    Examples
    --------
    >>> mean_sd([1.0, 2.0, 3.0])
    (2.0, 1.0)
    """
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        raise ValueError("mean_sd needs at least one value; got an empty sequence")
    sd = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return float(array.mean()), sd


#: Scores aggregated as mean ± sd in a ``Report``.
SUMMARY_KEYS: tuple[str, ...] = ("dice", "iou", "f1", "mean_matched_iou", "precision", "recall")


@dataclass(frozen=True)
class Report:
    """Scores of a set of images, per image and aggregated.

    Attributes
    ----------
    names : tuple of str
        One name per scored image (``stem`` or ``stem[t]`` for a frame of a time-lapse).
    images : tuple of ImageScores
        The scores, in the order of ``names``.
    iou_threshold : float
        The instance-matching threshold.
    unmatched : tuple of str
        Prediction files that had no ground truth (not scored).
    """

    names: tuple[str, ...]
    images: tuple[ImageScores, ...]
    iou_threshold: float = 0.5
    unmatched: tuple[str, ...] = ()

    def summary(self) -> dict[str, tuple[float, float]]:
        """``{score: (mean, sd)}`` over images for every key of ``SUMMARY_KEYS``."""
        return {key: mean_sd(getattr(s, key) for s in self.images) for key in SUMMARY_KEYS}

    @property
    def pooled_f1(self) -> float:
        """F1 from the summed TP, FP and FN of all images (each cell weighs the same)."""
        tp = sum(s.tp for s in self.images)
        errors = sum(s.fp + s.fn for s in self.images)
        return 1.0 if tp + errors == 0 else 2.0 * tp / (2 * tp + errors)

    def to_dict(self) -> dict:
        """JSON-native dictionary: per-image scores, the summary and the pooled F1."""
        return {
            "iou_threshold": self.iou_threshold,
            "images": {n: vars(s).copy() for n, s in zip(self.names, self.images, strict=True)},
            "summary": {k: {"mean": m, "sd": sd} for k, (m, sd) in self.summary().items()},
            "pooled_f1": self.pooled_f1,
            "unmatched": list(self.unmatched),
        }


def evaluate_labels(pairs, *, iou_threshold: float = 0.5) -> Report:
    """Score ``(name, pred, truth)`` triples of label images of shape (M, N).

    Parameters
    ----------
    pairs : iterable of (str, ndarray, ndarray)
        ``(name, pred, truth)`` of each image, label images of shape (M, N).
    iou_threshold : float
        IoU at or above which a predicted cell matches a true one.

    Examples
    --------
    >>> truth = np.zeros((8, 8), dtype=int); truth[2:6, 2:6] = 1
    >>> report = evaluate_labels([("a", truth, truth), ("b", np.zeros_like(truth), truth)])
    >>> report.summary()["f1"]
    (0.5, 0.7071067811865476)
    """
    names, scores = [], []
    for name, pred, truth in pairs:
        names.append(str(name))
        scores.append(score_image(pred, truth, iou_threshold=iou_threshold))
    if not scores:
        raise ValueError("evaluate_labels needs at least one (name, pred, truth) triple; got none")
    return Report(tuple(names), tuple(scores), float(iou_threshold))


_SUFFIXES = (".tif", ".tiff")


def _label_files(folder: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(folder.iterdir()):
        stem = path.name[: -len(path.suffix)] if path.suffix.lower() in _SUFFIXES else ""
        if stem.endswith("_labels") and path.is_file():
            found[stem[: -len("_labels")]] = path
    return found


def _read_labels(path: Path) -> np.ndarray:
    from struct import error as struct_error

    import tifffile

    try:
        array = np.asarray(tifffile.imread(path))
    except (OSError, ValueError, KeyError, IndexError, TypeError, struct_error) as error:
        raise ValueError(
            f"{path}: cannot read it as a labels TIFF ({type(error).__name__}: {error})"
        ) from None
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (2, 3):
        raise ValueError(f"{path}: labels must have shape (M, N) or (T, M, N); got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.array_equal(array, np.round(array)):
            raise ValueError(f"{path}: labels must be integers; got dtype {array.dtype}")
        array = array.astype(np.int64)
    return array


def _frames(name: str, pred: np.ndarray, truth: np.ndarray, paths: tuple[Path, Path]):
    if pred.shape != truth.shape:
        raise ValueError(
            f"{paths[0]} has shape {pred.shape} but its ground truth {paths[1]} has shape "
            f"{truth.shape}; they must match"
        )
    if truth.ndim == 2:
        yield name, pred, truth
        return
    for index in range(truth.shape[0]):
        yield f"{name}[{index}]", pred[index], truth[index]


def evaluate_folders(pred_dir, truth_dir, *, iou_threshold: float = 0.5) -> Report:
    """Score every ``<stem>_labels.tif`` of ``truth_dir`` against the same name in ``pred_dir``.

    Parameters
    ----------
    pred_dir, truth_dir : str or Path
        Folders of instance-label TIFFs named ``<stem>_labels.tif`` (what ``dmqpm segment``
        writes); time-lapses ``(T, M, N)`` are scored frame by frame.
    iou_threshold : float
        Instance-matching threshold (default 0.5).

    Returns
    -------
    Report
        Predictions without ground truth are listed in ``Report.unmatched``, not scored.

    Raises
    ------
    FileNotFoundError
        A folder is missing, ``truth_dir`` holds no label files, or predictions are missing
        for some ground-truth files (all of them are named).
    ValueError
        A prediction and its ground truth differ in shape, or a file is not a label image.
    """
    pred_dir, truth_dir = Path(pred_dir), Path(truth_dir)
    for name, folder in (("pred_dir", pred_dir), ("truth_dir", truth_dir)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{name} is not a folder: {str(folder)!r}")
    truths, preds = _label_files(truth_dir), _label_files(pred_dir)
    if not truths:
        raise FileNotFoundError(f"no <stem>_labels.tif files in truth_dir={str(truth_dir)!r}")
    missing = sorted(set(truths) - set(preds))
    if missing:
        shown = ", ".join(f"{stem}_labels.tif" for stem in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise FileNotFoundError(
            f"{len(missing)} ground-truth file(s) have no prediction in "
            f"pred_dir={str(pred_dir)!r}: {shown}{more}"
        )
    triples = []
    for stem, truth_path in truths.items():
        paths = (preds[stem], truth_path)
        triples.extend(_frames(stem, _read_labels(paths[0]), _read_labels(truth_path), paths))
    report = evaluate_labels(triples, iou_threshold=iou_threshold)
    extra = tuple(preds[stem].name for stem in sorted(set(preds) - set(truths)))
    return Report(report.names, report.images, report.iou_threshold, extra)


def format_report(report: Report, *, per_image: bool = True) -> str:
    """Markdown table: one row per image (optional) and a mean ± sd row, then the pooled F1.

    Parameters
    ----------
    report : Report
        The scores of :func:`evaluate_labels`.
    per_image : bool
        Add one row per image before the mean row.
    """
    thr = f"{report.iou_threshold:g}"
    head = (
        f"| image | Dice | IoU | F1@{thr} | mean matched IoU | cells (true / pred) | TP | FP | FN |"
    )
    lines = [head, "|" + "---|" * 9]
    if per_image:
        for name, s in zip(report.names, report.images, strict=True):
            lines.append(
                f"| {name} | {s.dice:.3f} | {s.iou:.3f} | {s.f1:.3f} | {s.mean_matched_iou:.3f} "
                f"| {s.n_true} / {s.n_pred} | {s.tp} | {s.fp} | {s.fn} |"
            )
    summary = report.summary()
    cells = [
        f"{summary[k][0]:.3f} ± {summary[k][1]:.3f}"
        for k in ("dice", "iou", "f1", "mean_matched_iou")
    ]
    totals = [
        sum(getattr(s, k) for s in report.images) for k in ("n_true", "n_pred", "tp", "fp", "fn")
    ]
    lines.append(
        f"| **mean ± sd** (n={len(report.images)}) | "
        + " | ".join(cells)
        + f" | {totals[0]} / {totals[1]} | {totals[2]} | {totals[3]} | {totals[4]} |"
    )
    lines.append("")
    lines.append(f"Pooled F1@{thr} over all cells: {report.pooled_f1:.3f}.")
    if report.unmatched:
        lines.append(f"Not scored (no ground truth): {', '.join(report.unmatched)}.")
    return "\n".join(lines)
