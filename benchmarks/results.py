"""Regenerate docs/results.md: accuracy of the shipped models and the classical baselines.

One command scores every shipped model (``weights/<name>/``, as users run them: the default
automatic cell size) and the classical methods on the same data:

1. a held-out synthetic test set, simulated with seeds of their own namespace
   (``numpy.random.default_rng((9_000_000, density_index, i))``; training streams are seeded
   ``[seed, epoch, worker]``, ``[seed, 1_000_003]`` and ``[seed, 7_919]``), at the densities
   sparse, medium, dense and confluent;
2. the real Q-PHASE maps of ``../shared/data/real/vicar_qphase_iit`` with their manual labels:
   the phase-only models on the real phase, DM-QPMNet on angle images synthesized from the real
   phase by the simulator's forward model (then retrieved like any ssQPM frame);
3. every magnification: the scale sweep of ``benchmarks/bench_scale.py`` (its records are
   cached in ``.bench_cache/scale/``; computed here when absent, about 80 min of CPU);
4. the classical Otsu + watershed baseline (``benchmarks/baselines.py``), tuned on simulated
   fields only, and Vicar et al.'s improved iterative thresholding (``benchmarks/iit.py``,
   both published parameter sets);

then writes the targets with met / missed and measured reasons, and the training budgets read
from the checkpoints.

Usage::

    python benchmarks/results.py [--models NAME=DIR ...] [--ablation DIR] [--quick]
                                 [--out docs/results.md] [--json results.json] [--no-discover]
                                 [--shipped NAME ...] [--no-scale]

The ablation of the paper's Table 2 needs checkpoints that are not in the repository: train
them with ``benchmarks/train_ablation.py --out DIR`` (8 rows of 25-52 min each on one CPU
thread, docs/results_ablation.md) and score them with ``--ablation DIR --out
docs/results_ablation.md``: each run goes to the row its ``config.json`` describes, the first
found per row wins, ``--models`` overrides (fine-tuned checkpoints are skipped). ``--shipped``
keeps only the shipped models named (with ``--no-discover``: those and the ``--models`` given,
e.g. for docs/results_fast.md).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import baselines, iit, results_report
from benchmarks.results_report import (
    DENSITIES,
    PIXEL_RANGE_UM,
    REAL_SEED,
    ROWS,
    SHIPPED_PREFIX,
    TEST_SEED,
    TUNE_SEED,
)

ROOT = Path(__file__).resolve().parents[1]
REAL_DIR = ROOT.parent / "shared" / "data" / "real" / "vicar_qphase_iit"
REAL_PIXEL_UM, REAL_WAVELENGTH_UM = 0.627, 0.65
SYNTHETIC_SHAPE = (384, 384)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Case:
    """One scored image: what the models see and the true labels.

    ``phase`` (M, N) radians; ``angles`` (4, M, N) counts or None; ``angle_phase`` the phase
    retrieved from ``angles`` when it differs from ``phase`` (real maps with synthesized
    angles); ``labels`` (M, N) instance labels.
    """

    name: str
    group: str
    phase: np.ndarray
    labels: np.ndarray
    angles: np.ndarray | None = None
    angle_phase: np.ndarray | None = None
    pixel_size_um: float | None = None


#: Widths of nnU-Net's default 2D network (``model.nnunet_default_2d_config``).
NNUNET_FEATURES = [min(32 * 2**i, 512) for i in range(8)]


def row_key(model: Mapping) -> str:
    """The ablation row of a ``ModelConfig`` dict (``checkpoint["model"]``)."""
    inputs, fusion = model.get("inputs", "both"), model.get("fusion", "mha")
    if list(model.get("features", ())) == NNUNET_FEATURES:
        return "nnunet-default"  # nnU-Net's default network (train_ablation.py), not a row
    if list(model.get("strides", (1,)))[:1] == [2]:
        return "strided-stem"  # dmqpm-fast's architecture (train_ablation.py), not a row
    if inputs in ("phase", "angles"):
        return f"{inputs}-only"
    if fusion == "early":
        return "early-fusion"
    return f"{fusion}-{model.get('fusion_stage', 2)}"


def discover_models(roots: Sequence[Path]) -> dict[str, Path]:
    """``{row key: folder}`` of the ablation checkpoints (first per row wins).

    ``roots``: the ``<row>/best`` folders of a ``benchmarks/train_ablation.py`` run, or
    folders of checkpoints.
    """
    from napari_dmqpm.model import read_checkpoint_config

    found: dict[str, Path] = {}
    for root in roots:
        folders = [root] if (root / "config.json").is_file() else sorted(root.glob("*/"))
        for folder in folders:
            try:
                content = read_checkpoint_config(folder)
            except (OSError, ValueError):
                continue
            if (content.get("training") or {}).get("base_checkpoint"):
                continue  # fine-tuned: not a model of the ablation
            if not run_finished(folder, content):
                continue  # still training: not yet at the budget of the other rows
            found.setdefault(row_key(content["model"]), folder)
    return found


def run_finished(folder: Path, content: Mapping) -> bool:
    """Whether the run of a ``<run>/best`` checkpoint reached its planned epochs (read from
    ``<run>/last/history.json``); a checkpoint outside a run folder counts as finished."""
    history = folder.parent / "last" / "history.json"
    if folder.name != "best" or not history.is_file():
        return True
    epochs = ((content.get("training") or {}).get("config") or {}).get("epochs")
    done = max((h.get("epoch", 0) for h in json.loads(history.read_text("utf-8"))), default=0)
    return epochs is None or done >= epochs


def discover_shipped(root: Path = ROOT / "weights") -> dict[str, Path]:
    """``{name: folder}`` of the weights that ship with the package (``weights/<name>/``)."""
    return {p.name: p for p in sorted(root.glob("*/")) if (p / "config.json").is_file()}


def load_models(
    models: Mapping[str, Path | str], shipped: Mapping[str, Path | str] | None = None
) -> dict[str, dict]:
    """Load each checkpoint; ``{key: info}`` with the network, sha256 and training budget.

    ``models`` that are rows of Table 2 are keyed by the row their config describes
    (:func:`row_key`); the others (nnU-Net's default, the strided stem) by the name given, so
    one network trained with two budgets can sit side by side. ``shipped`` models are keyed
    ``"shipped:<name>"``. ``info["row"]`` is the row key either way, and ``info["same_as"]``
    names an ablation row with the very same weights (sha256).
    """
    from napari_dmqpm.model.registry import load_model

    loaded: dict[str, dict] = {}
    named = [(name, folder, False) for name, folder in models.items()]
    named += [(name, folder, True) for name, folder in (shipped or {}).items()]
    for name, folder, is_shipped in named:
        model = load_model(folder, device="cpu")
        row = row_key(model.checkpoint["model"])
        if is_shipped:
            key = f"{SHIPPED_PREFIX}{name}"
        else:
            key = row if row in dict(ROWS) else str(name)
        if key in loaded:
            raise ValueError(f"two models for the row {key!r}: {loaded[key]['name']} and {name}")
        sha = model.info.sha256
        twin = [k for k, i in loaded.items() if i["sha256"] == sha and not i.get("shipped")]
        loaded[key] = {
            "name": str(name),
            "row": row,
            "shipped": is_shipped,
            "same_as": twin[0] if is_shipped and twin else None,
            "path": os.path.relpath(folder, ROOT) if Path(folder).exists() else str(folder),
            "model": model,
            "sha256": sha,
            "n_parameters": model.network.n_parameters,
            "inputs": model.network.config.inputs,
            "training": training_budget(model.checkpoint),
        }
    return loaded


def training_budget(checkpoint: Mapping) -> dict:
    """What the checkpoint says about its training: time, iterations, data, validation."""
    training = checkpoint.get("training") or {}
    config = training.get("config") or {}
    best = [h for h in training.get("history", []) if h.get("epoch") == training.get("best_epoch")]
    return {
        "minutes": (training.get("elapsed_s") or 0.0) / 60.0,
        "iterations": training.get("iterations"),
        "epoch": training.get("epoch"),
        "best_epoch": training.get("best_epoch"),
        "budget_minutes": config.get("minutes"),
        "planned_iterations": (config.get("epochs") or 0)
        * (config.get("iterations_per_epoch") or 0)
        or None,
        "batch_size": config.get("batch_size"),
        "patch_size": config.get("patch_size"),
        "seed": config.get("seed"),
        "device": training.get("device"),
        "threads": training.get("torch_threads"),
        "cpu_count": training.get("cpu_count"),
        "simulator": bool(config.get("simulator")),
        "folders": config.get("folders") or [],
        "val_dice": training.get("best_val_dice"),
        "val_f1": best[-1].get("val_f1") if best else None,
        "cell_diameter_px": training.get("cell_diameter_px"),
    }


def synthetic_cases(n_per_density: int, shape=SYNTHETIC_SHAPE, *, namespace=TEST_SEED):
    """Simulated fields, ``n_per_density`` per density, field i of density d seeded
    ``default_rng((namespace, d, i))``; pixel size drawn in :data:`PIXEL_RANGE_UM`."""
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    cases = []
    for d, density in enumerate(DENSITIES):
        for i in range(n_per_density):
            rng = np.random.default_rng((namespace, d, i))
            pixel = float(rng.uniform(*PIXEL_RANGE_UM))
            config = SimulationConfig(shape=tuple(shape), density=density, pixel_size_um=pixel)
            field = simulate_field(config, rng=rng)
            cases.append(
                Case(
                    f"{density}-{i}",
                    density,
                    field.phase,
                    field.labels,
                    field.angles,
                    pixel_size_um=pixel,
                )
            )
    return cases


def synthesize_ssqpm(phase: np.ndarray, *, pixel_size_um: float, wavelength_um: float, rng=None):
    """Angle images of a given object phase through the simulator's optics and detector.

    The simulator's own imaging steps (:func:`napari_dmqpm.simulation.image_phase`: optics,
    detector, phase retrieval), with the simulator's default parameters at this pixel size
    and wavelength, and an optics and a noise stream drawn from ``rng``.

    Parameters
    ----------
    phase : ndarray of shape (M, N)
        Object phase, radians.
    pixel_size_um, wavelength_um : float
        Pixel size and wavelength, µm.
    rng : int or numpy.random.Generator, optional
        Seed or random source.

    Returns
    -------
    angles : ndarray of shape (4, M, N), float32
        Detector counts at 0, 45, 90, 135 degrees.
    retrieved : ndarray of shape (M, N), float32
        Phase retrieved from ``angles``, radians.
    """
    from napari_dmqpm.simulation import SimulationConfig, image_phase

    phase = np.asarray(phase, dtype=np.float32)
    config = SimulationConfig(
        shape=phase.shape, pixel_size_um=pixel_size_um, wavelength_um=wavelength_um
    )
    seeds = np.random.default_rng(rng).integers(0, 2**63, size=2)
    optics_rng, noise_rng = (np.random.default_rng(int(seed)) for seed in seeds)
    angles, retrieval = image_phase(phase, config, optics_rng=optics_rng, noise_rng=noise_rng)
    return angles, retrieval.phase


def real_pairs(folder: Path) -> list[tuple[str, Path, Path]]:
    """``(name, phase map, labels)`` of the Q-PHASE set (qpi15 and the 14 dense images)."""
    pairs = [("qpi15", folder / "raw/data/qpi15.tif", folder / "labels/vicar_iit_qpi15_labels.tif")]
    for image in sorted((folder / "raw" / "data_dense").glob("img_*.tif")):
        number = image.stem.split("_")[1]
        pairs.append((image.stem, image, folder / f"labels/vicar_iit_dense_{number}_labels.tif"))
    return [p for p in pairs if p[1].is_file() and p[2].is_file()]


def real_cases(folder: Path, *, limit: int | None = None) -> list[Case]:
    """The real maps in radians (pg/µm² x 1.74) with angles synthesized from them."""
    import tifffile

    from napari_dmqpm.io import read_acquisition

    cases = []
    for index, (name, image, labels) in enumerate(real_pairs(folder)[:limit]):
        acquisition = read_acquisition(
            image,
            phase_unit="pg_per_um2",
            wavelength_um=REAL_WAVELENGTH_UM,
            pixel_size_um=REAL_PIXEL_UM,
        )
        phase = acquisition.phase[0]
        angles, retrieved = synthesize_ssqpm(
            phase,
            pixel_size_um=REAL_PIXEL_UM,
            wavelength_um=REAL_WAVELENGTH_UM,
            rng=np.random.default_rng((REAL_SEED, index)),
        )
        truth = np.asarray(tifffile.imread(labels)).astype(np.int64)
        cases.append(Case(name, "real", phase, truth, angles, retrieved, REAL_PIXEL_UM))
    return cases


def case_inputs(model, case: Case) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(angles, phase)`` of a case as the model takes them (None for what it does not).

    A dual model gets the phase retrieved from the synthesized angles where there is one.
    """
    inputs = model.network.config.inputs
    angles = case.angles if inputs in ("both", "angles") else None
    phase = None
    if inputs in ("both", "phase"):
        use_retrieved = inputs == "both" and case.angle_phase is not None
        phase = case.angle_phase if use_retrieved else case.phase
    return angles, phase


def predict_labels(model, case: Case, *, inference) -> np.ndarray:
    """Instance labels of one case with a loaded model and its stored post-processing."""
    from napari_dmqpm.inference import (
        default_postprocess,
        predict_probabilities,
        probabilities_to_labels,
    )

    angles, phase = case_inputs(model, case)
    probabilities = predict_probabilities(
        model, angles=angles, phase=phase, config=inference, pixel_size_um=case.pixel_size_um
    )
    return probabilities_to_labels(probabilities, config=default_postprocess(model))


def instance_errors(pred: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """Error decomposition: merges, splits, missed and spurious cells.

    A merge is a predicted cell holding at least half of each of two or more true cells
    (``merged_cells`` counts those true cells); a split is a true cell holding at least half
    of each of two or more predicted cells (``split_fragments`` counts those); a true cell is
    missed, and a predicted cell spurious, when more than half of it lies on the other's
    background.
    """
    truth_ids, t_index = np.unique(np.asarray(truth).ravel(), return_inverse=True)
    pred_ids, p_index = np.unique(np.asarray(pred).ravel(), return_inverse=True)
    pairs, overlap = np.unique(
        t_index.astype(np.int64) * pred_ids.size + p_index, return_counts=True
    )
    rows, cols = np.divmod(pairs, pred_ids.size)
    t_area, p_area = np.bincount(t_index), np.bincount(p_index)
    t_cell, p_cell = truth_ids[rows] != 0, pred_ids[cols] != 0
    both = t_cell & p_cell
    per_pred = np.bincount(cols[both & (overlap * 2 >= t_area[rows])], minlength=pred_ids.size)
    per_true = np.bincount(rows[both & (overlap * 2 >= p_area[cols])], minlength=truth_ids.size)
    on_bg_t = t_cell & ~p_cell & (overlap * 2 > t_area[rows])
    on_bg_p = p_cell & ~t_cell & (overlap * 2 > p_area[cols])
    return {
        "merges": int((per_pred >= 2).sum()),
        "merged_cells": int(per_pred[per_pred >= 2].sum()),
        "splits": int((per_true >= 2).sum()),
        "split_fragments": int(per_true[per_true >= 2].sum()),
        "missed": int(on_bg_t.sum()),
        "spurious": int(on_bg_p.sum()),
    }


def drop_border_cells(labels: np.ndarray) -> np.ndarray:
    """A copy of ``labels`` (M, N) without the cells that touch the image border."""
    labels = np.asarray(labels)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    out = labels.copy()
    out[np.isin(out, np.unique(edge[edge > 0]))] = 0
    return out


def score_record(case: Case, pred: np.ndarray, truth: np.ndarray | None = None) -> dict:
    """Scores and error counts of one prediction, as a JSON-native dict."""
    from scipy import ndimage

    from napari_dmqpm.training.metrics import foreground_dice, score_image

    truth = case.labels if truth is None else truth
    scores = vars(score_image(pred, truth)).copy()
    pixels = {"fg_pred": int(np.count_nonzero(pred)), "fg_true": int(np.count_nonzero(truth))}
    scores["dice_grown_1px"] = foreground_dice(ndimage.binary_dilation(pred > 0), truth)
    return {
        "name": case.name,
        "group": case.group,
        **scores,
        **pixels,
        **instance_errors(pred, truth),
    }


def evaluate_method(segment, cases: Sequence[Case], *, border: bool = False) -> dict:
    """Score ``segment(case) -> labels`` on every case; with ``border``, also without
    the cells touching the border (removed from prediction and truth alike)."""
    records, border_records, started = [], [], time.perf_counter()
    for case in cases:
        pred = segment(case)
        records.append(score_record(case, pred))
        if border:
            truth = drop_border_cells(case.labels)
            border_records.append(score_record(case, drop_border_cells(pred), truth))
    seconds = time.perf_counter() - started
    return {"records": records, "border_records": border_records, "seconds": seconds}


def time_tile(run: Callable[[], object], *, repeats: int, warmup: int) -> dict:
    """Median process-CPU and wall milliseconds of ``run()`` after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        run()
        cpu.append(1e3 * (time.process_time() - c0))
        wall.append(1e3 * (time.perf_counter() - w0))
    return {"cpu_ms": float(np.median(cpu)), "wall_ms": float(np.median(wall)), "n": repeats}


def time_models(
    loaded: Mapping[str, dict],
    baseline_config,
    *,
    tile: int,
    repeats: int,
    warmup: int,
    threads: int,
) -> dict[str, dict]:
    """Forward time of each network (random inputs) and of the baseline on one tile."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    timings, generator = {}, torch.Generator().manual_seed(0)
    try:
        for key, info in loaded.items():
            network = info["model"].network
            angles = 4000 * torch.rand(1, 4, tile, tile, generator=generator)
            phase = 3 * torch.rand(1, 1, tile, tile, generator=generator)
            angles = None if network.config.inputs == "phase" else angles
            phase = None if network.config.inputs == "angles" else phase
            with torch.inference_mode():
                run = functools.partial(network, angles, phase)
                timings[key] = time_tile(run, repeats=repeats, warmup=warmup)
    finally:
        torch.set_num_threads(previous)
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    dense = simulate_field(SimulationConfig(shape=(tile, tile)), rng=(TUNE_SEED, 99))
    run = functools.partial(baselines.segment_otsu_watershed, dense.phase, config=baseline_config)
    timings["otsu"] = time_tile(run, repeats=repeats, warmup=warmup)
    return timings


def tune_baseline(n_per_density: int, shape, grids: Mapping | None) -> dict:
    """Tune the Otsu + watershed baseline on its own simulated fields (never on test data)."""
    cases = synthetic_cases(n_per_density, shape, namespace=TUNE_SEED)
    grids = grids or {}
    config, trials = baselines.tune_otsu_watershed(
        [(c.phase, c.labels) for c in cases],
        foreground_grid=grids.get("foreground"),
        seed_grid=grids.get("seed"),
    )
    return {"config": config, "trials": trials, "n_fields": len(cases), "shape": list(shape)}


def run_benchmark(
    models: Mapping[str, Path | str],
    *,
    shipped: Mapping[str, Path | str] | None = None,
    fields_per_density: int = 6,
    field_shape: tuple[int, int] = SYNTHETIC_SHAPE,
    real_dir: Path | None = REAL_DIR,
    real_limit: int | None = None,
    tuning_fields_per_density: int = 2,
    baseline_grids: Mapping | None = None,
    tile_size: int = 512,
    timing_repeats: int = 5,
    timing_warmup: int = 2,
    timing_threads: int = 1,
    scale_cache: Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Evaluate every model and the baseline; the numbers behind docs/results.md.

    ``models`` are the ablation rows (``{name: folder}``), ``shipped`` the weights users get
    (the targets are theirs). ``scale_cache``: the folder of ``benchmarks/bench_scale.py``'s
    records, whose shipped models and baselines are scored at every magnification (records
    missing there are computed); None leaves the scale sweep out. Returns a dict with
    ``meta``, ``models``, ``baseline``, ``synthetic``, ``real``, ``scale`` and ``timing``
    (see :func:`results_report.render_markdown`); JSON-native except the loaded models under
    ``models[key]["model"]``.
    """
    from napari_dmqpm.inference import InferenceConfig

    say = progress or (lambda message: None)
    started = time.perf_counter()
    loaded = load_models(models, shipped)
    found = ", ".join(f"{key}={info['path']}" for key, info in loaded.items())
    say(f"models: {found or 'none'}")
    baseline = tune_baseline(tuning_fields_per_density, field_shape, baseline_grids)
    say(f"baseline tuned on {baseline['n_fields']} fields: {baseline['config']}")
    # torch, the reference engine: the same numbers whatever runtimes are installed (the
    # ONNX Runtime / OpenVINO exports give the same labels, docs/performance.md)
    inference = InferenceConfig(device="cpu", tile_size=tile_size, tta=False, backend="torch")
    methods = make_methods(loaded, baseline["config"], inference)
    synthetic = {"n_per_density": fields_per_density, "shape": list(field_shape), "methods": {}}
    cases = synthetic_cases(fields_per_density, field_shape)
    synthetic["pixel_sizes_um"] = [c.pixel_size_um for c in cases]
    for key, segment in methods.items():
        synthetic["methods"][key] = evaluate_method(segment, cases)
        say(f"synthetic {key}: {synthetic['methods'][key]['seconds']:.0f} s")
    copy_twins(loaded, synthetic["methods"])
    real = evaluate_real(loaded, baseline["config"], inference, real_dir, real_limit, say)
    timing = time_models(
        loaded,
        baseline["config"],
        tile=tile_size,
        repeats=timing_repeats,
        warmup=timing_warmup,
        threads=timing_threads,
    )
    scale = None if scale_cache is None else scale_sweep(real_dir, scale_cache, say)
    meta = results_report.meta(time.perf_counter() - started, timing_threads, inference)
    return {
        "meta": meta,
        "models": loaded,
        "baseline": baseline,
        "synthetic": synthetic,
        "real": real,
        "scale": scale,
        "timing": timing,
    }


def scale_sweep(real_dir: Path | None, cache: Path, say: Progress) -> dict:
    """The scale sweep's summary (``bench_scale.summarize``) of every shipped model and
    baseline, from the records cached in ``cache`` (the missing ones computed first)."""
    from benchmarks import bench_scale

    cases = bench_scale.sweep_cases(Path(real_dir) if real_dir else Path("absent"))
    records = {}
    for method in (*bench_scale.SHIPPED, *bench_scale.BASELINES):
        path = Path(cache) / f"{method}.json"
        records[method] = bench_scale.run_method(method, cases, cache=path, say=say)
    cpu_s = sum(r["cpu_s"] for by_case in records.values() for r in by_case.values())
    return {
        "summary": bench_scale.summarize(records),
        "records": bench_scale.records_by_commit(records),
        "cpu_minutes": cpu_s / 60.0,
    }


def make_methods(loaded: Mapping[str, dict], baseline_config, inference) -> dict:
    """``{key: segment(case) -> labels}`` for every loaded model (a shipped model with the
    weights of an ablation row is scored once, see :func:`copy_twins`), the Otsu baseline and
    the two IIT presets."""
    methods = {}
    for key, info in loaded.items():
        if not info.get("same_as"):
            methods[key] = functools.partial(_segment, info["model"], inference=inference)
    methods["otsu"] = lambda case: baselines.segment_otsu_watershed(
        case.phase, config=baseline_config
    )
    for preset, config in iit.IIT_PRESETS.items():  # the published classical QPM method
        methods[f"iit-{preset}"] = functools.partial(_segment_iit, config=config)
    return methods


def copy_twins(loaded: Mapping[str, dict], methods: dict) -> None:
    """Give each shipped model that shares an ablation row's weights that row's scores."""
    for key, info in loaded.items():
        if info.get("same_as") in methods:
            methods[key] = methods[info["same_as"]]


def _segment(model, case: Case, *, inference) -> np.ndarray:
    return predict_labels(model, case, inference=inference)


def _segment_iit(case: Case, *, config) -> np.ndarray:
    return iit.segment_iit(case.phase, config=config, pixel_size_um=case.pixel_size_um)


def evaluate_real(
    loaded: Mapping[str, dict], baseline_config, inference, real_dir, limit, say
) -> dict:
    """The real Q-PHASE section: every model as users run it, the shipped ones also with the
    cells' diameter given (``<key>@diameter``), and the baseline; all cells and without
    border cells."""
    if real_dir is None or not Path(real_dir).is_dir():
        return {"available": False, "reason": f"the real data folder {real_dir} is absent"}
    cases = real_cases(Path(real_dir), limit=limit)
    if not cases:
        return {"available": False, "reason": f"no phase map with labels in {real_dir}"}
    diameter = results_report.median_diameter([c.labels for c in cases])
    methods = make_methods(loaded, baseline_config, inference)
    given = inference.replace(diameter_px=round(diameter, 1))
    shipped = results_report.shipped_keys({"models": loaded})
    for key, info in loaded.items():
        if key not in shipped or info["model"].info.cell_diameter_px is None:
            continue  # the checkpoint states no trained diameter to resample to
        methods[f"{key}@diameter"] = functools.partial(_segment, info["model"], inference=given)
    out = {
        "available": True,
        "folder": os.path.relpath(real_dir, ROOT),
        "names": [c.name for c in cases],
        "shape": list(cases[0].phase.shape),
        "diameter_px": given.diameter_px,
        "methods": {},
    }
    for key, segment in methods.items():
        out["methods"][key] = evaluate_method(segment, cases, border=True)
        say(f"real {key}: {out['methods'][key]['seconds']:.0f} s")
    copy_twins(loaded, out["methods"])
    return out


def parse_models(items: Sequence[str]) -> dict[str, Path]:
    """``NAME=DIR`` options to ``{name: folder}``."""
    models = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise SystemExit(f"--models takes NAME=DIR; got {item!r}")
        models[name] = Path(folder)
    return models


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: evaluate, write the markdown (and optionally the JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[], metavar="NAME=DIR")
    parser.add_argument("--no-discover", action="store_true", help="only the --models given")
    parser.add_argument(
        "--shipped", nargs="+", metavar="NAME", help="only these shipped models (weights/NAME)"
    )
    parser.add_argument(
        "--ablation", type=Path, help="the --out folder of benchmarks/train_ablation.py"
    )
    parser.add_argument(
        "--no-scale", action="store_true", help="leave out the scale sweep (bench_scale.py)"
    )
    parser.add_argument("--quick", action="store_true", help="2 fields per density")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    from napari_dmqpm.model import read_checkpoint_config

    given = parse_models(args.models)
    rows = {row_key(read_checkpoint_config(p)["model"]) for p in given.values()}
    roots = sorted(p / "best" for p in args.ablation.glob("*/")) if args.ablation else []
    found = {} if args.no_discover else discover_models(roots)
    shipped = {} if args.no_discover and not args.shipped else discover_shipped()
    if args.shipped:
        unknown = sorted(set(args.shipped) - set(shipped))
        if unknown:
            raise SystemExit(f"--shipped: no weights/{unknown[0]}/ (found: {sorted(shipped)})")
        shipped = {name: shipped[name] for name in args.shipped}
    names = {
        path.parent.name if path.name == "best" else path.name: path
        for key, path in found.items()
        if key not in rows
    }
    models = names | given
    quick = {"fields_per_density": 2, "timing_repeats": 3} if args.quick else {}
    from benchmarks import bench_scale

    results = run_benchmark(
        models,
        shipped=shipped,
        scale_cache=None if args.no_scale or args.quick else bench_scale.CACHE_DIR,
        progress=lambda m: print(m, flush=True),
        **quick,
    )
    words = [Path(w).name if os.path.isabs(w) else w for w in (argv or sys.argv[1:])]
    command = "python benchmarks/results.py" + (" " + " ".join(words)).rstrip()  # no host paths
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(results_report.render_markdown(results, command=command), "utf-8")
    if args.json:
        args.json.write_text(json.dumps(results_report.to_json(results), indent=1), "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
