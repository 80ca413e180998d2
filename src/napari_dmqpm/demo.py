"""The demo behind ``make demo``: ``python -m napari_dmqpm.demo --gui`` or ``--out DIR``.

``--gui`` opens napari with the plugin's sample data, the scale bar and every widget the
plugin contributes, docked. It needs napari with a Qt binding (``pip install ".[all]"`` from
a clone); without them it says so and exits with status 1.

``--out DIR`` runs without a display, as a sequence of steps a user can follow (and that
later issues extend, e.g. with segmentation):

1. simulate the three samples of *File → Open Sample → ssQPM cell segmentation with
   DM-QPMNet* (sparse field, confluent field, time-lapse), seeded;
2. write each as a canonical ssQPM stack and its ground truth as a label TIFF
   (:func:`napari_dmqpm.io.write_stack`, :func:`napari_dmqpm.io.write_labels`);
3. read every stack back through the napari reader of the plugin and check the layers;
4. segment every stack with the shipped DM-QPMNet (``dmqpm segment``'s core function), which
   writes ``<stem>_labels.tif`` and ``<stem>_cells.csv`` into ``segmentation/``, and score
   the labels against the simulator's ground truth (Dice, F1 at IoU 0.5). The cells of the
   ground truth and of the prediction are counted the same way, by :func:`count_cells`: per
   frame, summed over the frames of a time-lapse;
5. draw an overview figure (the four angle images, the phase, the ground truth and the
   predicted labels of each sample).

Every run writes into a new folder ``DIR/run-YYYYmmdd-HHMMSS``: nothing is ever written over.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DemoSample",
    "count_cells",
    "describe_cell_count",
    "main",
    "new_run_folder",
    "run_headless",
]

SAMPLE_KEYS = ("sparse", "confluent", "timelapse")

#: The Qt bindings napari runs on (through qtpy), any one will do.
QT_BINDINGS = ("PyQt6", "PySide6", "PyQt5", "PySide2")

#: How to get what ``--gui`` needs: napari (which brings magicgui, superqt) and a Qt binding.
GUI_INSTALL_HINT = (
    'pip install ".[all]" in a clone of napari-dmqpm (napari with PyQt6), '
    'or pip install "napari[pyqt6]"'
)


@dataclass(frozen=True)
class DemoSample:
    """One sample of the headless demo and the files written for it.

    Attributes
    ----------
    key : str
        Sample key (``"sparse"``, ``"confluent"``, ``"timelapse"``).
    simulated : SimulatedField or SimulatedTimelapse
        The simulated recording with its ground truth.
    stack_path, labels_path : Path
        The canonical stack and the label TIFF.
    layers : list of (ndarray, dict, str)
        What the napari reader made of ``stack_path``.
    predicted : ndarray or None
        The labels DM-QPMNet predicted (None when no model is installed).
    """

    key: str
    simulated: Any
    stack_path: Path
    labels_path: Path
    layers: list
    predicted: np.ndarray | None = None


def new_run_folder(out: str | Path, *, now: dt.datetime | None = None) -> Path:
    """Create and return a new, empty folder ``out/run-YYYYmmdd-HHMMSS[-k]``.

    Parameters
    ----------
    out : str or Path
        Parent folder (created if missing).
    now : datetime, optional
        Time stamp of the folder name (default: now).

    Returns
    -------
    Path
        A folder that did not exist before this call.
    """
    parent = Path(out)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now()).strftime("run-%Y%m%d-%H%M%S")
    for attempt in range(1000):
        folder = parent / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"could not create a new run folder in {parent}")


def count_cells(labels: np.ndarray) -> int:
    """Number of cells in a label image, counted per frame and summed over the frames.

    A time-lapse's cell seen in eight frames counts eight times, whether its label id repeats
    across frames (the simulator's tracks) or not (DM-QPMNet numbers each frame anew), so the
    ground truth and a prediction are counted alike.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (T, M, N)
        Instance labels, 0 for background.

    Returns
    -------
    int
        The number of distinct non-zero labels of each frame, summed.

    Examples
    --------
    >>> frame = np.array([[0, 1], [2, 2]])
    >>> count_cells(frame), count_cells(np.stack([frame, frame]))
    (2, 4)
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(
            f"labels must have shape (M, N) or (T, M, N); got labels.shape={labels.shape}"
        )
    frames = labels.reshape(-1, *labels.shape[-2:])
    return sum(int(np.count_nonzero(np.unique(frame))) for frame in frames)


def describe_cell_count(labels: np.ndarray) -> str:
    """``"12 cells"``, or ``"96 cells (per frame, summed over 8 frames)"`` for a time-lapse.

    Both counts of the demo (ground truth and prediction) are made by this function, so they
    are counted the same way (:func:`count_cells`).

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (T, M, N)
        Instance labels, 0 for background (see :func:`count_cells`).

    Returns
    -------
    str
        The count and, for a time-lapse, how it was counted.

    Examples
    --------
    >>> describe_cell_count(np.ones((3, 2, 2), dtype=int))
    '3 cells (per frame, summed over 3 frames)'
    """
    labels = np.asarray(labels)
    text = f"{count_cells(labels)} cells"
    if labels.ndim == 3 and labels.shape[0] > 1:
        text += f" (per frame, summed over {labels.shape[0]} frames)"
    return text


def _simulate_and_write(key: str, folder: Path) -> tuple[Any, Path, Path]:
    """Steps 1 and 2 for one sample: simulate it, write its stack and label TIFF."""
    from napari_dmqpm._napari._sample_data import simulate_sample
    from napari_dmqpm.io import write_labels, write_stack

    simulated = simulate_sample(key)
    acquisition = simulated.to_acquisition()
    stack_path = write_stack(folder / f"{key}.tif", acquisition)
    labels_path = write_labels(
        folder / f"{key}_labels.tif",
        simulated.labels,
        pixel_size_um=acquisition.pixel_size_um,
    )
    return simulated, Path(stack_path), Path(labels_path)


def _read_back(path: Path, simulated: Any) -> list:
    """Step 3: read a stack through the plugin's napari reader; check it matches."""
    from napari_dmqpm._napari._reader import get_reader

    reader = get_reader(str(path))
    if reader is None:
        raise RuntimeError(f"the napari reader refused {path}, which the demo just wrote")
    layers = reader(str(path))
    phase = layers[-1][0]
    if phase.shape != simulated.phase.shape or not np.allclose(phase, simulated.phase, atol=1e-5):
        raise RuntimeError(f"{path}: the phase read back differs from the one written")
    return layers


def _segment_and_score(stack_path: Path, simulated: Any, folder: Path) -> np.ndarray | None:
    """Step 4: segment a stack with the shipped model; print its scores; return the labels."""
    import tifffile

    from napari_dmqpm.inference import InferenceConfig, segment_file
    from napari_dmqpm.model.registry import ModelNotFoundError
    from napari_dmqpm.training.metrics import score_image

    folder.mkdir(exist_ok=True)
    try:
        result = segment_file(stack_path, out_dir=folder, config=InferenceConfig(device="auto"))
    except ModelNotFoundError as error:
        print(f"  segmentation skipped: {error}")
        return None
    predicted = tifffile.imread(result.labels_path)
    truth = simulated.labels
    shape = truth.shape[-2:]
    pairs = zip(predicted.reshape(-1, *shape), truth.reshape(-1, *shape), strict=True)
    scores = [score_image(pred, true) for pred, true in pairs]
    print(
        f"  {result.labels_path.name}, {result.table_path.name}: "
        f"{describe_cell_count(predicted)} by {result.model}; "
        f"vs ground truth Dice {np.mean([s.dice for s in scores]):.3f}, "
        f"F1@0.5 {np.mean([s.f1 for s in scores]):.3f}"
    )
    return predicted


def _write_overview(samples: Sequence[DemoSample], path: Path) -> Path | None:
    """Step 5: angle images, phase, truth and predicted labels of each sample, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from napari_dmqpm._napari._layers import robust_contrast_limits

    titles = ["I 0°", "I 45°", "I 90°", "I 135°", "phase (rad)", "ground truth", "DM-QPMNet"]
    figure, axes = plt.subplots(len(samples), 7, figsize=(21, 3.1 * len(samples)), squeeze=False)
    for row, sample in zip(axes, samples, strict=True):
        angles, phase, labels = _first_frame(sample.simulated)
        predicted = np.zeros_like(labels) if sample.predicted is None else sample.predicted
        images = [*angles, phase, labels, predicted.reshape(-1, *labels.shape)[0]]
        limits = [robust_contrast_limits(angles)] * 4 + [
            robust_contrast_limits(phase),
            (None, None),
            (None, None),
        ]
        for column, (axis, image, title) in enumerate(zip(row, images, titles, strict=True)):
            cmap = "gray" if column < 4 else ("magma" if column == 4 else "nipy_spectral")
            low, high = limits[column]
            shown = axis.imshow(image, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            axis.set_title(f"{sample.key}: {title}", fontsize=9)
            axis.set_axis_off()
            if column == 4:
                figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.02)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def _first_frame(simulated: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(angles (4, M, N), phase (M, N), labels (M, N))`` of the first frame."""
    if simulated.phase.ndim == 3:
        return simulated.angles[0], simulated.phase[0], simulated.labels[0]
    return simulated.angles, simulated.phase, simulated.labels


def run_headless(out: str | Path, *, keys: Sequence[str] = SAMPLE_KEYS) -> Path:
    """The headless demo: simulate, write, read back through the reader, draw an overview.

    Parameters
    ----------
    out : str or Path
        Parent folder; the run writes into a new sub-folder of it.
    keys : sequence of str, optional
        Sample keys to run.

    Returns
    -------
    Path
        The run folder.
    """
    folder = new_run_folder(out)
    print(f"napari-dmqpm demo (headless): writing into {folder}")
    samples = []
    for key in keys:
        simulated, stack_path, labels_path = _simulate_and_write(key, folder)  # steps 1, 2
        layers = _read_back(stack_path, simulated)  # step 3
        described = ", ".join(f"{meta['name']} {data.shape}" for data, meta, _ in layers)
        print(f"  {stack_path.name}: read back as {described}")
        print(f"  {labels_path.name}: ground truth, {describe_cell_count(simulated.labels)}")
        predicted = _segment_and_score(stack_path, simulated, folder / "segmentation")  # step 4
        samples.append(DemoSample(key, simulated, stack_path, labels_path, layers, predicted))
    overview = _write_overview(samples, folder / "overview.png")  # step 5
    if overview is None:
        print("  overview.png skipped: matplotlib is not installed (pip install matplotlib)")
    else:
        print(f"  {overview.name}: angle images, phase, truth and predicted labels per sample")
    print(f"done: open {folder} (or run `make demo` with a display for the napari window)")
    return folder


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m napari_dmqpm.demo",
        description="napari-dmqpm demo: napari with sample data (--gui) or a headless run (--out).",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--gui", action="store_true", help="open napari with the sample data")
    mode.add_argument("--out", type=Path, metavar="DIR", help="headless: write a run into DIR")
    parser.add_argument(
        "--sample",
        action="append",
        choices=SAMPLE_KEYS,
        help="sample(s) to show or run (repeatable; default: confluent with --gui, all with --out)",
    )
    return parser


def _missing_gui_packages() -> str | None:
    """What ``--gui`` needs and cannot find (napari, or a Qt binding), or None; imports nothing."""
    from importlib.util import find_spec

    if find_spec("napari") is None:
        return "napari"
    if not any(find_spec(binding) for binding in QT_BINDINGS):
        return f"a Qt binding for napari ({', '.join(QT_BINDINGS)})"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).
    """
    args = _build_parser().parse_args(argv)
    if args.gui:
        missing = _missing_gui_packages()
        if missing:
            print(
                f"python -m napari_dmqpm.demo --gui needs {missing}, which is not installed. "
                f"Install it: {GUI_INSTALL_HINT}. Without a GUI: python -m napari_dmqpm.demo "
                "--out DIR",
                file=sys.stderr,
            )
            return 1
        from napari_dmqpm._napari._demo_gui import run_demo_gui

        run_demo_gui(samples=args.sample or ("confluent",))
        return 0
    run_headless(args.out, keys=args.sample or SAMPLE_KEYS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
