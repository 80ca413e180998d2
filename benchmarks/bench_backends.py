"""Inference backends side by side on the CPU: torch, ONNX Runtime, OpenVINO fp32 and bf16.

For each shipped ``dmqpm-default`` and ``dmqpm-fast``, on one simulated dense 1024×1224 frame
(the IMX250MZR super-pixel frame), in one run with the contenders interleaved (each repeat runs
every contender once, in turn, after one warm-up round):

- the network part: :func:`napari_dmqpm.inference.predict_probabilities` at the model's scale
  (no diameter estimate; the frame is one padded tile), process CPU time with one thread;
- the whole path: :func:`napari_dmqpm.inference.segment_acquisition` with the defaults (the
  diameter estimate, whose ``phase-only`` network runs on the same backend, post-processing,
  measurements), process CPU time with one thread;
- agreement with torch: the most likely class per pixel (network part) and the instance labels
  (whole path), and the outcome of the backend's reference check (``backends.check``), which
  decides whether ``backend="auto"`` uses it;
- the issue 17 targets at 2 threads (wall seconds, interleaved): the whole path with torch and
  with what ``backend="auto"`` picks after its check;
- the model a CPU user gets (issue 17 item 3): the whole path per frame of each model that
  takes the angle images beside its accuracy in docs/results.md (held-out simulated fields
  and the real Q-PHASE maps), and the choice that rule makes (:func:`cpu_choice`).

Each contender is forced for every network of the path (bf16 included, which the check may
refuse). Prints a markdown section (collected by ``benchmarks/run_all.py``).

Usage: ``python benchmarks/bench_backends.py [--repeats 2] [--quick]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tifffile
import torch

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import napari_dmqpm.inference.predict as predict_module
from benchmarks.templates import render
from napari_dmqpm.inference import (
    InferenceConfig,
    predict_probabilities,
    segment_acquisition,
    segment_file,
)
from napari_dmqpm.inference.backends import Engine, SessionNetwork, engine_for, is_installed
from napari_dmqpm.inference.backends.check import CheckResult, compare
from napari_dmqpm.inference.backends.export import ensure_export, export_key, input_names
from napari_dmqpm.inference.backends.runtimes import cpu_supports, open_session
from napari_dmqpm.inference.diameter import estimate_diameter
from napari_dmqpm.inference.measure import measure_cells
from napari_dmqpm.inference.postprocess import probabilities_to_labels
from napari_dmqpm.inference.segment import default_postprocess
from napari_dmqpm.io.mosaic import mosaic_offsets
from napari_dmqpm.model.registry import ModelNotFoundError, load_model
from napari_dmqpm.phase import retrieve_phase
from napari_dmqpm.simulation import SimulationConfig, simulate_field

MODELS = ("dmqpm-default", "dmqpm-fast")
SHAPE = (1024, 1224)
REPEATS = 2
#: Issue 17's whole-path targets at 2 threads, seconds per 1024×1224 frame.
TARGETS = {"dmqpm-default": 3.0, "dmqpm-fast": 0.5}
#: The CPU default is the fastest model whose F1@0.5 (the instance score per-cell numbers
#: rest on) is within F1_MARGIN, and whose foreground Dice is within DICE_MARGIN, of the best
#: model's on both the simulated and the real images of docs/results.md.
F1_MARGIN, DICE_MARGIN = 0.01, 0.02
RESULTS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "results.md"
_SUMMARY = re.compile(
    r"^- shipped `(?P<name>[\w.-]+)` .*?synthetic test set Dice (?P<sim_dice>\d+\.\d+) ± "
    r"\d+\.\d+, F1@0.5 (?P<sim_f1>\d+\.\d+).*?real Q-PHASE Dice (?P<real_dice>\d+\.\d+) ± "
    r"\d+\.\d+, F1@0.5 (?P<real_f1>\d+\.\d+)",
    re.MULTILINE,
)


def results_scores(text: str) -> dict[str, dict[str, float]]:
    """Dice and F1 of each shipped model on both sets, from docs/results.md's summary."""
    return {
        m["name"]: {k: float(v) for k, v in m.groupdict().items() if k != "name"}
        for m in _SUMMARY.finditer(text)
    }


def cpu_choice(seconds: dict[str, float], scores: dict[str, dict[str, float]]) -> str | None:
    """The fastest model whose scores are within the margins of the best on both sets.

    Examples
    --------
    >>> scores = {"a": dict(sim_f1=0.975, sim_dice=0.991, real_f1=0.779, real_dice=0.895),
    ...           "b": dict(sim_f1=0.980, sim_dice=0.992, real_f1=0.780, real_dice=0.885)}
    >>> cpu_choice({"a": 14.0, "b": 4.0}, scores), cpu_choice({"a": 4.0, "b": 14.0}, scores)
    ('b', 'a')
    """
    names = [n for n in seconds if n in scores]
    if not names:
        return None
    best = {k: max(scores[n][k] for n in names) for k in scores[names[0]]}
    margin = {k: F1_MARGIN if k.endswith("f1") else DICE_MARGIN for k in best}
    fit = [n for n in names if all(scores[n][k] >= best[k] - margin[k] - 1e-9 for k in best)]
    return min(fit, key=seconds.get) if fit else None


def contenders() -> list[tuple[str, str]]:
    """(backend, precision) pairs that can run here, torch first."""
    found = [("torch", "float32")]
    if is_installed("onnxruntime"):
        found.append(("onnxruntime", "float32"))
    if is_installed("openvino"):
        found.append(("openvino", "float32"))
        if cpu_supports("bfloat16"):
            found.append(("openvino", "bfloat16"))
    return found


_FORCED: dict[tuple, Engine] = {}


def forced_engine(model, network, contender: tuple[str, str]) -> Engine:
    """An engine running ``contender`` whatever its check says (memoized)."""
    backend, precision = contender
    if backend == "torch":
        return Engine("torch", "float32", network)
    key = (id(network), contender, torch.get_num_threads())
    if key not in _FORCED:
        export = export_key(model)
        ensure_export(network, export)
        session = open_session(backend, export.onnx_path, precision=precision)
        _FORCED[key] = Engine(
            backend, precision, SessionNetwork(session, input_names(network), network)
        )
    return _FORCED[key]


@contextlib.contextmanager
def forcing(contender: tuple[str, str]):
    """Every network of the path runs on ``contender`` while inside."""
    original = predict_module.engine_for
    predict_module.engine_for = lambda model, network, device, backend: forced_engine(
        model, network, contender
    )
    try:
        yield
    finally:
        predict_module.engine_for = original


def timed(function) -> tuple[float, float, object]:
    """(process CPU seconds, wall seconds, result) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    return time.process_time() - cpu, time.perf_counter() - wall, result


def label_agreement(want: np.ndarray, got: np.ndarray) -> str:
    """Pixels in the same cell as in ``want`` (``got``'s labels renamed to their most
    overlapping ``want`` label, so one cell more or less does not renumber the rest), and the
    cell counts."""
    pairs, counts = np.unique(np.stack([got.ravel(), want.ravel()]), axis=1, return_counts=True)
    best: dict[int, tuple[int, int]] = {}
    for (label, match), count in zip(pairs.T.tolist(), counts.tolist(), strict=True):
        if label and count > best.get(label, (0, 0))[1]:
            best[label] = (match, count)
    lookup = np.zeros(int(got.max()) + 1, dtype=want.dtype)
    for label, (match, _) in best.items():
        lookup[label] = match
    cells = [len(np.unique(x[x > 0])) for x in (want, got)]
    return f"{np.mean(lookup[got] == want):.5%} ({cells[1]} vs {cells[0]} cells)"


def one_thread_rows(name, model, acquisition, args) -> list[str]:
    """The table rows of one model at one thread, contenders interleaved."""
    fixed = InferenceConfig(device="cpu", diameter_px=None)
    trained = model.info.cell_diameter_px
    given = fixed if trained is None else fixed.replace(diameter_px=float(trained))
    whole = InferenceConfig(device="cpu")
    angles = acquisition.angles[0]
    phase = acquisition.phase[0]
    runs = {c: {"network": [], "given": [], "whole": []} for c in contenders()}
    outputs = {}
    for repeat in range(args.repeats + 1):  # round 0 is the warm-up
        for contender in runs:
            with forcing(contender):
                net = timed(lambda: predict_probabilities(
                    model, angles=angles, phase=phase, config=fixed))  # fmt: skip
                known = timed(lambda: list(segment_acquisition(acquisition, model, config=given)))
                path = timed(lambda: list(segment_acquisition(acquisition, model, config=whole)))
            if repeat:
                for part, result in (("network", net), ("given", known), ("whole", path)):
                    runs[contender][part].append(result[0])
            outputs[contender] = (net[2].classes.argmax(0), path[2][0].labels)
    checks = reference_checks(model, runs)
    reference = runs[("torch", "float32")]
    rows = []
    for contender, times in runs.items():
        cells = []
        for part in ("network", "given", "whole"):
            seconds = statistics.median(times[part])
            cells.append(f"{seconds:.2f} ({statistics.median(reference[part]) / seconds:.2f}×)")
        classes = np.mean(outputs[contender][0] == outputs[("torch", "float32")][0])
        rows.append(
            f"| `{name}` | {contender[0]} | {contender[1]} | {' | '.join(cells)} | "
            f"{classes:.5%} | "
            f"{label_agreement(outputs[('torch', 'float32')][1], outputs[contender][1])} | "
            f"{checks[contender]} |"
        )
        ONE_THREAD[(name, contender)] = statistics.median(times["whole"])
    return rows


#: Whole-path process seconds at one thread, per (model, contender), for the targets table.
ONE_THREAD: dict[tuple[str, tuple[str, str]], float] = {}


def reference_checks(model, runs) -> dict[tuple[str, str], str]:
    """The reference check's verdict for each contender (as the backend layer runs it)."""
    verdicts = {}
    for contender in runs:
        if contender[0] == "torch":
            verdicts[contender] = "(reference)"
            continue
        engine = forced_engine(model, model.network, contender)
        result: CheckResult = compare(
            model.network, engine.network, postprocess=default_postprocess(model)
        )
        verdicts[contender] = (
            f"{'passed' if result.passed else '**refused**'} "
            f"({result.class_agreement:.4%}, {result.label_agreement:.4%})"
        )
    return verdicts


def camera_mosaic(acquisition) -> np.ndarray:
    """The first frame's four angle images as the IMX250MZR's raw 12-bit mosaic (2M × 2N)."""
    angles = np.asarray(acquisition.angles[0])
    raw = np.zeros((2 * angles.shape[-2], 2 * angles.shape[-1]), dtype=np.uint16)
    for image, (row, col) in zip(angles, mosaic_offsets(), strict=True):
        raw[row::2, col::2] = np.clip(np.rint(image), 0, 4095)
    return raw


def two_thread_rows(name, model, acquisition, args) -> tuple[list[str], str]:
    """Whole path at 2 threads, wall seconds: torch against what ``auto`` picks.

    Also the camera frame, as a user opens one: ``segment_file`` on the frame's raw mosaic
    (a TIFF: reading, demosaicking, phase retrieval, the path, writing the three outputs).
    """
    torch.set_num_threads(2)
    try:
        configs = {
            "torch": InferenceConfig(device="cpu", backend="torch"),
            "auto": InferenceConfig(device="cpu"),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a refused export says so in the table instead
            picked = engine_for(model, model.network, torch.device("cpu"), "auto")
        walls: dict[str, list[float]] = {k: [] for k in (*configs, "camera")}
        cpus: dict[str, list[float]] = {k: [] for k in configs}
        with tempfile.TemporaryDirectory() as folder:
            raw = Path(folder) / "camera_frame.tif"
            tifffile.imwrite(raw, camera_mosaic(acquisition))
            for repeat in range(args.repeats + 1):
                for label, config in configs.items():
                    cpu_s, wall_s, _ = timed(
                        lambda c=config: list(segment_acquisition(acquisition, model, config=c))
                    )
                    if repeat:
                        walls[label].append(wall_s)
                        cpus[label].append(cpu_s)
                out = Path(folder) / f"out{repeat}"
                out.mkdir()
                _, wall_s, _ = timed(lambda o=out: segment_file(raw, out_dir=o, model=model))
                if repeat:
                    walls["camera"].append(wall_s)
    finally:
        torch.set_num_threads(1)
    wall = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    bound = ONE_THREAD.get((name, (picked.backend, picked.precision)), float("nan")) / 2
    target = TARGETS[name]
    verdict = "met" if wall["auto"] <= target else "**missed**"
    if bound > target:
        verdict += " (the bound too)"
    camera = "met" if wall["camera"] <= target else "**missed**"
    row = (
        f"| `{name}` | {picked.backend} {picked.precision} | {wall['torch']:.2f} | "
        f"{wall['auto']:.2f} | {cpu['torch']:.2f} | {cpu['auto']:.2f} | {bound:.2f} | "
        f"≤ {target} s: {verdict} | {wall['camera']:.2f} | {camera} |"
    )
    return [row], verdict


#: The stages of :func:`stage_rows`, in the order the whole path runs them.
STAGES = ("phase retrieval", "diameter estimate", "network", "post-processing", "measurements")


def stage_seconds(model, acquisition) -> dict[str, float]:
    """Wall seconds of each stage of the camera frame's path, run one after the other.

    The stages as ``segment_file`` runs them on a raw frame with the defaults (``auto``
    backend): the phase retrieved from the angles, the size estimate, the network at the
    estimated scale, post-processing and measurements; reading, demosaicking and writing are
    left out (bench_read_raw times reading).

    Parameters
    ----------
    model : LoadedModel
        The model.
    acquisition : Acquisition
        The simulated frame (its first frame).
    """
    config = InferenceConfig(device="cpu")
    angles = np.asarray(acquisition.angles[0])
    seconds: dict[str, float] = {}
    _, seconds["phase retrieval"], retrieved = timed(lambda: retrieve_phase(angles))
    phase = retrieved.phase
    _, seconds["diameter estimate"], size = timed(
        lambda: estimate_diameter(model, angles=angles, phase=phase, config=config)
    )
    at = config.replace(diameter_px=size.diameter_px)
    _, seconds["network"], maps = timed(
        lambda: predict_probabilities(model, angles=angles, phase=phase, config=at)
    )
    postprocess = default_postprocess(model)
    _, seconds["post-processing"], labels = timed(
        lambda: probabilities_to_labels(maps, config=postprocess)
    )
    _, seconds["measurements"], _ = timed(
        lambda: measure_cells(labels, phase, pixel_size_um=acquisition.pixel_size_um)
    )
    return seconds


def stage_rows(name, model, acquisition, args) -> list[str]:
    """Where the 2-thread time of the camera frame goes: median wall seconds per stage."""
    torch.set_num_threads(2)
    try:
        runs: dict[str, list[float]] = {stage: [] for stage in STAGES}
        for repeat in range(args.repeats + 1):
            seconds = stage_seconds(model, acquisition)
            if repeat:
                for stage in STAGES:
                    runs[stage].append(seconds[stage])
    finally:
        torch.set_num_threads(1)
    medians = [statistics.median(runs[stage]) for stage in STAGES]
    total = sum(medians)
    cells = " | ".join(f"{value:.2f} ({value / total:.0%})" for value in medians)
    return [f"| `{name}` | {cells} | {total:.2f} |"]


def choice_inputs(loaded) -> tuple[dict[str, float], dict[str, dict[str, float]], str]:
    """What :func:`choice_lines` reports: the whole-path seconds per frame of each model on
    what ``backend="auto"`` picks, the scores of docs/results.md, the CLI's angle-image model."""
    from napari_dmqpm.model.registry import default_model_for

    scores = results_scores(RESULTS_PAGE.read_text(encoding="utf-8"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        picked = {
            n: engine_for(m, m.network, torch.device("cpu"), "auto") for n, m in loaded.items()
        }
    seconds = {n: ONE_THREAD.get((n, (e.backend, e.precision))) for n, e in picked.items()}
    seconds = {n: s for n, s in seconds.items() if s is not None}
    return seconds, scores, default_model_for("ssqpm-stack")


def choice_lines(
    seconds: Mapping[str, float], scores: Mapping[str, dict[str, float]], current: str
) -> list[str]:
    """The model a CPU user gets: seconds per frame here against accuracy in docs/results.md.

    Parameters
    ----------
    seconds : mapping of str to float
        Whole-path seconds per frame at one thread of each model (:func:`choice_inputs`).
    scores : mapping of str to dict
        Each model's scores from docs/results.md (:func:`results_scores`).
    current : str
        The model the CLI and the widget pick for angle images.

    Returns
    -------
    list of str
        The subsection's lines, starting with a blank one.
    """
    lines = [
        "",
        "### The model a CPU user gets",
        "",
        *render("backends/choice.md", f1_margin=F1_MARGIN, dice_margin=DICE_MARGIN),
        "",
        "| model | whole path, s per frame (1 thread) | simulated Dice / F1@0.5 "
        "| real Dice / F1@0.5 |",
        "|---|---:|---|---|",
    ]
    for name, value in seconds.items():
        score = scores.get(name)
        cells = ["–", "–"] if score is None else [
            f"{score['sim_dice']:.3f} / {score['sim_f1']:.3f}",
            f"{score['real_dice']:.3f} / {score['real_f1']:.3f}",
        ]  # fmt: skip
        lines.append(f"| `{name}` | {value:.2f} | {' | '.join(cells)} |")
    choice = cpu_choice(dict(seconds), dict(scores))
    if choice is None:
        verdict = render("backends/no_choice.md")[0]
    else:
        same = "the same" if choice == current else "**not the same**"
        verdict = render("backends/picked.md", choice=choice, current=current, same=same)[0]
    return [*lines, "", *render("backends/verdict.md", verdict=verdict)]


def report(
    *,
    shape: tuple[int, int],
    runtimes: str,
    repeats: int,
    skipped: Mapping[str, str],
    one_thread: Sequence[str],
    two_thread: Sequence[str],
    choice: Sequence[str],
    load: tuple[Sequence[float], Sequence[float]],
    stages: Sequence[str] = (),
) -> str:
    """The markdown section from the measurements.

    Parameters
    ----------
    shape : tuple of int
        The simulated frame's (rows, columns).
    runtimes : str
        The installed runtimes and their versions ("" when none).
    repeats : int
        Timed rounds after the warm-up.
    skipped : mapping of str to str
        The models not found, with the error's text.
    one_thread : sequence of str
        The one-thread table's rows (:func:`one_thread_rows`), every model.
    two_thread : sequence of str
        The 2-thread targets table's rows (:func:`two_thread_rows`), every model.
    choice : sequence of str
        The lines of :func:`choice_lines`.
    load : tuple of two sequences of float
        The load average (1, 5, 15 min) at the start and at the end.
    stages : sequence of str
        The rows of :func:`stage_rows`, every model (no table when empty).

    Returns
    -------
    str
        The section, ending with a newline.
    """
    lines = ["## Inference backends on the CPU (bench_backends)", ""]
    for name, error in skipped.items():
        lines += [*render("backends/skipped.md", name=name, error=error), ""]
    lines += [
        *render(
            "backends/intro.md",
            rows=shape[0],
            columns=shape[1],
            runtimes=runtimes or "no runtime installed",
            repeats=repeats,
        ),
        "",
        "| model | backend | precision | network (s, × torch) | whole path, diameter given "
        "| whole path | class agreement | label agreement | check |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
        *one_thread,
        "",
        *render("backends/notes.md"),
        "",
        *render("backends/targets.md", repeats=repeats),
        "",
        "| model | auto picked | torch wall (s) | auto wall (s) | torch CPU (s) | auto CPU (s) "
        "| bound (s) | target | camera frame, auto wall (s) | target, camera frame |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---|",
        *two_thread,
        *(
            [
                "",
                *render("backends/stages.md", repeats=repeats),
                "",
                "| model | " + " | ".join(STAGES) + " | sum (s) |",
                "|---|" + "---:|" * (len(STAGES) + 1),
                *stages,
            ]
            if stages
            else []
        ),
        *choice,
        "",
        *render(
            "backends/load.md",
            start=", ".join(f"{value:.2f}" for value in load[0]),
            end=", ".join(f"{value:.2f}" for value in load[1]),
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed rounds after warm-up")
    parser.add_argument("--quick", action="store_true", help="1 round, 256×320, dmqpm-fast only")
    args = parser.parse_args()
    shape, models = SHAPE, MODELS
    if args.quick:
        args.repeats, shape, models = 1, (256, 320), ("dmqpm-fast",)
    torch.set_num_threads(1)
    load = os.getloadavg()
    loaded, skipped = {}, {}
    for name in models:
        try:
            loaded[name] = load_model(name, device="cpu")
        except ModelNotFoundError as error:
            skipped[name] = str(error)
    acquisition = simulate_field(
        SimulationConfig(shape=shape, density="dense"), rng=1
    ).to_acquisition()
    runtimes = ", ".join(
        f"{p} {__import__('importlib.metadata').metadata.version(p)}"
        for p in ("onnxruntime", "openvino")
        if is_installed(p)
    )
    one_thread = [
        row
        for name, model in loaded.items()
        for row in one_thread_rows(name, model, acquisition, args)
    ]
    two_thread = [
        row
        for name, model in loaded.items()
        for row in two_thread_rows(name, model, acquisition, args)[0]
    ]
    stages = [
        row for name, model in loaded.items() for row in stage_rows(name, model, acquisition, args)
    ]
    choice = choice_lines(*choice_inputs(loaded))
    text = report(
        shape=shape,
        runtimes=runtimes,
        repeats=args.repeats,
        skipped=skipped,
        one_thread=one_thread,
        two_thread=two_thread,
        choice=choice,
        load=(load, os.getloadavg()),
        stages=stages,
    )
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
