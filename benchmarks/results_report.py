"""Markdown for docs/results.md from the numbers of ``benchmarks/results.py``.

Pure formatting and aggregation: every number shown is computed by ``results.run_benchmark``;
the sentences about met or missed targets are generated from the same numbers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from benchmarks.run_all import commit_description, machine_description

DENSITIES = ("sparse", "medium", "dense", "confluent")
TEST_SEED, REAL_SEED, TUNE_SEED = 9_000_000, 9_100_000, 9_200_000
PIXEL_RANGE_UM = (0.45, 0.9)  # as the training simulator draws them
#: Ablation rows in the order of the paper's Table 2 (key, label).
ROWS = (
    ("mha-2", "DM-QPMNet (MHA at stage 2)"),
    ("concat-2", "concat at stage 2"),
    ("mha-1", "MHA at stage 1"),
    ("mha-3", "MHA at stage 3"),
    ("bidirectional-mha-2", "bidirectional MHA at stage 2"),
    ("early-fusion", "5-channel early fusion"),
    ("angles-only", "angles only"),
    ("phase-only", "phase only"),
    ("otsu", "Otsu + watershed (classical)"),
)
#: The published classical QPM method (benchmarks/iit.py), real maps only.
IIT_LABELS = {
    "iit-dense": "improved iterative thresholding, Vicar et al., dense preset (classical QPM)",
    "iit-sparse": "improved iterative thresholding, Vicar et al., sparse preset (classical QPM)",
}
SHIPPED_PREFIX = "shipped:"  # key prefix of the shipped models (the targets are theirs)


def shipped_keys(numbers: Mapping) -> list[str]:
    """Keys of the shipped models, DM-QPMNet first; without any, the ablation rows
    ``mha-2`` and ``phase-only`` stand for them."""
    models = numbers["models"]
    keys = [k for k, m in models.items() if m.get("shipped")]
    keys = keys or [k for k in ("mha-2", "phase-only") if k in models]
    return sorted(keys, key=lambda k: models[k].get("row", k) == "phase-only")


def phase_only_key(numbers: Mapping) -> str | None:
    """The shipped phase-only model: the real-data targets are its."""
    keys = [k for k in shipped_keys(numbers) if numbers["models"][k].get("row", k) == "phase-only"]
    return keys[0] if keys else None


def row_label(key: str) -> str:
    """Human label of a row key; keys outside :data:`ROWS` get a generic one."""
    labels = dict(ROWS)
    if key in labels:
        return labels[key]
    if key.startswith(SHIPPED_PREFIX):
        return f"shipped `{key.removeprefix(SHIPPED_PREFIX)}`"
    if key in IIT_LABELS:
        return IIT_LABELS[key]
    if key == "nnunet-default":
        return "nnU-Net default 2D, 32-512 (not a row of Table 2)"
    if key == "nnunet-wall":
        return "nnU-Net default 2D, 32-512, dmqpm-fast's 50-minute budget (not a row of Table 2)"
    if key == "strided-stem":
        return "strided stem with MHA at H/4, not a row of Table 2"
    fusion, _, stage = key.rpartition("-")
    return f"{fusion} at stage {stage}" if fusion and stage.isdigit() else f"`{key}`"


SCORES = ("dice", "iou", "f1", "mean_matched_iou")
COUNTS = (
    "n_true",
    "n_pred",
    "tp",
    "fp",
    "fn",
    "merges",
    "merged_cells",
    "splits",
    "split_fragments",
    "missed",
    "spurious",
    "fg_pred",
    "fg_true",
)
#: The paper's Table 2 as the brief quotes it (their data, not ours): row -> (Dice, IoU).
PAPER = {
    "mha-2": ("0.888 ± 0.026", "0.799"),
    "early-fusion": ("0.879", "-"),
    "mha-1": ("0.871", "-"),
    "mha-3": ("0.877", "-"),
    "phase-only": ("~0.47", "-"),
}
TARGETS = {"synthetic": {"dice": 0.95, "f1": 0.92}, "real": {"dice": 0.90, "f1": 0.80}}
#: What a method sees of a real map, by the model's ``ModelConfig.inputs`` (and the baseline).
METHOD_INPUT = {
    "phase": "real phase",
    "angles": "angles synthesized from the real phase",
    "both": "angles synthesized from the real phase + phase retrieved from them",
    "otsu": "real phase",
    "iit-dense": "real phase",
    "iit-sparse": "real phase",
}


def meta(seconds: float, threads: int, inference=None) -> dict:
    """Machine, commit, date, run time, torch threads and tiling (an ``InferenceConfig``)."""
    import torch

    from napari_dmqpm.inference import InferenceConfig

    tiling = inference or InferenceConfig()
    return {
        "machine": machine_description(),
        "commit": commit_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": seconds,
        "inference_threads": torch.get_num_threads(),
        "timing_threads": threads,
        "tiling": {k: getattr(tiling, k) for k in ("tile_size", "overlap", "whole_frame_px")},
        "sizing": {k: getattr(tiling, k) for k in ("diameter_px", "use_pixel_size")},
        "backend": tiling.backend,
    }


def median_diameter(label_images: Sequence[np.ndarray]) -> float:
    """Median equivalent-area diameter (px) of the cells of several label images."""
    areas = np.concatenate([np.bincount(np.asarray(x).ravel())[1:] for x in label_images])
    areas = areas[areas > 0]
    return float(np.median(2.0 * np.sqrt(areas / np.pi))) if areas.size else float("nan")


def summarize(records: Sequence[Mapping]) -> dict:
    """Mean ± sd of the scores and the summed counts of a set of per-image records."""
    from napari_dmqpm.training.metrics import mean_sd

    out = {key: mean_sd(r[key] for r in records) for key in (*SCORES, "dice_grown_1px")}
    out.update({key: sum(int(r[key]) for r in records) for key in COUNTS})
    out["n"] = len(records)
    return out


def to_json(numbers: Mapping) -> dict:
    """The numbers without the loaded networks, JSON-native."""
    out = dict(numbers)
    out["models"] = {
        k: {n: v for n, v in m.items() if n != "model"} for k, m in numbers["models"].items()
    }
    baseline = dict(numbers["baseline"])
    baseline["config"] = dataclasses.asdict(baseline["config"])
    out["baseline"] = baseline
    return out


def _pm(value: tuple[float, float]) -> str:
    return f"{value[0]:.3f} ± {value[1]:.3f}"


def _label(numbers: Mapping, key: str) -> str:
    base, _, variant = key.partition("@")
    model = numbers["models"].get(base) or {}
    name = model.get("name")
    if model.get("shipped"):
        label = f"shipped `{name}` ({row_label(model['row'])})"
    else:
        label = row_label(base) + (f" (`{name}`)" if name and name != base else "")
    if variant == "diameter":
        label += f", `diameter_px={numbers['real']['diameter_px']}` given"
    return label


def _planned_budget(training: Mapping) -> str:
    """The budget that ends a run: its minutes when it has a time limit, else its iterations."""
    minutes = training.get("budget_minutes")
    return f"{minutes:g} min" if minutes else f"{training['planned_iterations']} iterations"


def _score_cells(s: Mapping) -> str:
    return (
        f"{_pm(s['dice'])} | {_pm(s['iou'])} | {s['f1'][0]:.3f} | {s['mean_matched_iou'][0]:.3f} "
        f"| {s['n_true']} / {s['n_pred']} | {s['tp']} / {s['fp']} / {s['fn']} "
        f"| {s['merges']} ({s['merged_cells']}) | {s['splits']} ({s['split_fragments']}) |"
    )


SCORE_HEAD = (
    "| Dice | IoU | F1@0.5 | mean matched IoU | cells true / pred | TP / FP / FN "
    "| merges (true cells) | splits (fragments) |"
)


def header(numbers: Mapping, command: str) -> list[str]:
    """Title, provenance, and what is real and what is simulated."""
    m = numbers["meta"]
    # numbers written before the tiling was recorded ran with these (the defaults then)
    tiling = m.get("tiling") or {"tile_size": 512, "overlap": 0.5, "whole_frame_px": 1_600_000}
    sizing = m.get("sizing") or {"diameter_px": None, "use_pixel_size": False}
    if sizing["diameter_px"] == "auto":
        resampling = (
            "each image resampled so that its cells have the diameter the model was trained at, "
            'by the automatic estimate (`diameter_px="auto"`, the default; '
            "docs/inference.md), starting from the pixel size of the image"
        )
    elif sizing["diameter_px"] is None and not sizing["use_pixel_size"]:
        resampling = "no resampling"
    else:
        resampling = f"`diameter_px={sizing['diameter_px']}`"
    return [
        "# Results",
        "",
        f"Generated by `{command}` in {m['seconds'] / 60:.1f} min; do not edit by hand.",
        "",
        f"- Machine: {m['machine']}",
        f"- Commit: {m['commit']}",
        f"- Date: {m['date']}",
        f"- Inference: CPU, {m.get('backend', 'torch')} backend, torch with "
        f"{m['inference_threads']} thread(s), each image up to "
        f"{tiling['whole_frame_px'] / 1e6:.1f} MP as one tile padded to the divisor (larger ones "
        f"in {tiling['tile_size']} px tiles with {tiling['overlap']:.0%} overlap and Gaussian "
        f"blending), no TTA, {resampling}, each checkpoint's stored post-processing "
        "(`napari_dmqpm.inference`).",
        "- Scores (`napari_dmqpm.training.metrics`): foreground Dice and IoU, F1 at IoU 0.5 "
        "(one-to-one matching), mean IoU of the matched cells; mean ± sample sd over images. "
        "Merges: predicted cells that hold at least half of each of two or more true cells; "
        "splits: true cells that hold at least half of each of two or more predicted cells.",
        "",
        "**What is real and what is simulated.**",
        "",
        "- The synthetic test set is simulated by `napari_dmqpm.simulation`, the simulator the "
        "models were trained on, with seeds never used in training. It measures how well a "
        "model learned the simulator, not real cells.",
        "- The Q-PHASE images are real measurements with manual labels (Vicar et al.), never "
        "used for training or tuning. They are phase maps from a holographic microscope: no "
        "real polarization images exist for them. The phase-only model and the baseline see "
        "the real phase; DM-QPMNet sees angle images *simulated* from the real phase, so its "
        "real-data row is half simulated.",
        "- The paper's numbers are quoted from the paper, on the paper's data; we do not have "
        "that data, and they are not comparable with ours.",
        "",
    ]


def summary_section(numbers: Mapping) -> list[str]:
    """The headline numbers: shipped models and the baseline, synthetic and real."""
    lines = ["## Summary", ""]
    real = numbers["real"]
    for key in (*shipped_keys(numbers), "otsu"):
        method = numbers["synthetic"]["methods"].get(key)
        if method is None:
            lines.append(f"- {row_label(key)}: no checkpoint found.")
            continue
        s = summarize(method["records"])
        worst = min(
            (summarize([r for r in method["records"] if r["group"] == d])["f1"][0], d)
            for d in DENSITIES
        )
        text = (
            f"- {_label(numbers, key)}: synthetic test set Dice {_pm(s['dice'])}, F1@0.5 "
            f"{s['f1'][0]:.3f} (lowest density: {worst[1]}, {worst[0]:.3f})"
        )
        if real.get("available") and key in real["methods"]:
            t = summarize(real["methods"][key]["records"])
            text += f"; real Q-PHASE Dice {_pm(t['dice'])}, F1@0.5 {t['f1'][0]:.3f}"
            if _row(numbers, key) != "phase-only" and key != "otsu":
                text += " (angles simulated from the real phase)"
        lines.append(text + ".")
    for key in IIT_LABELS:
        parts = []
        if key in numbers["synthetic"]["methods"]:
            s = summarize(numbers["synthetic"]["methods"][key]["records"])
            parts.append(f"synthetic test set Dice {_pm(s['dice'])}, F1@0.5 {s['f1'][0]:.3f}")
        if real.get("available") and key in real["methods"]:
            t = summarize(real["methods"][key]["records"])
            parts.append(f"real Q-PHASE Dice {_pm(t['dice'])}, F1@0.5 {t['f1'][0]:.3f}")
        if parts:
            lines.append(
                f"- {row_label(key)}: {'; '.join(parts)} (the authors' parameters, not tuned here)."
            )
    rows = target_rows(numbers)
    met = sum(r["value"] >= r["target"] for r in rows)
    lines.append(f"- Targets of the first release: {met} of {len(rows)} met (section 6).")
    scale = scale_target_rows(numbers)
    if scale:
        met = sum(r["met"] for r in scale)
        lines.append(
            f"- Targets at every magnification (automatic size): {met} of {len(scale)} met "
            "(section 3)."
        )
    return [*lines, ""]


def _real_input(numbers: Mapping, key: str) -> str:
    """What the method of ``key`` sees of a real map (from its model's inputs)."""
    base = key.partition("@")[0]
    model = numbers["models"].get(base)
    return METHOD_INPUT.get(model.get("inputs", "-") if model else base, "-")


def _row(numbers: Mapping, key: str) -> str:
    """The ablation row of a method key (shipped models: the row their config describes)."""
    base = key.partition("@")[0]
    return (numbers["models"].get(base) or {}).get("row", base)


def models_section(numbers: Mapping) -> list[str]:
    """The checkpoints evaluated, with their folders and hashes."""
    lines = ["## Models evaluated", ""]
    if not numbers["models"]:
        return [*lines, "No checkpoint was found; only the classical baseline is scored.", ""]
    lines += ["| row | name | folder | parameters | sha256 |", "|---|---|---|---|---|"]
    for key, m in numbers["models"].items():
        sha = (m["sha256"] or "-")[:12]
        lines.append(
            f"| {_label(numbers, key)} | `{m['name']}` | `{m['path']}` "
            f"| {m['n_parameters']:,} | `{sha}…` |"
        )
    return [*lines, ""]


def _training_seeds(numbers: Mapping) -> str:
    seeds = sorted({m["training"]["seed"] for m in numbers["models"].values()}, key=str)
    if not seeds:
        return "no checkpoint"
    clash = [s for s in seeds if s in (TEST_SEED, REAL_SEED, TUNE_SEED)]
    text = f"the checkpoints were trained with seed {', '.join(map(str, seeds))}"
    return text + (f"; **warning: seed {clash} is one of ours**" if clash else "")


def synthetic_section(numbers: Mapping) -> list[str]:
    """Section 1: per model and density."""
    syn = numbers["synthetic"]
    sizes = syn["pixel_sizes_um"]
    lines = [
        "## 1. Held-out synthetic test set",
        "",
        f"{syn['n_per_density']} fields of {syn['shape'][0]} x {syn['shape'][1]} px per density "
        f"({', '.join(DENSITIES)}; cover fractions 0.06, 0.15, 0.3, 0.85), simulator "
        "defaults. Field i of density d (0 = sparse) uses "
        f"`numpy.random.default_rng(({TEST_SEED:_}, d, i))`, a seed namespace the "
        f"training never uses ({_training_seeds(numbers)}); the pixel size is drawn from it in "
        f"{PIXEL_RANGE_UM[0]}-{PIXEL_RANGE_UM[1]} µm as in training "
        f"(here {min(sizes):.2f}-{max(sizes):.2f} µm). The networks get the four angle images "
        "and/or the phase retrieved from them; the baseline gets the phase.",
        "",
        "| model | density " + SCORE_HEAD,
        "|---|---" + "|---" * 8 + "|",
    ]
    for key, method in syn["methods"].items():
        for density in DENSITIES:
            records = [r for r in method["records"] if r["group"] == density]
            if records:
                lines.append(
                    f"| {_label(numbers, key)} | {density} | " + _score_cells(summarize(records))
                )
    return [*lines, ""]


def real_section(numbers: Mapping) -> list[str]:
    """Section 2: the real Q-PHASE maps."""
    real = numbers["real"]
    lines = ["## 2. Real Q-PHASE phase maps", ""]
    if not real["available"]:
        return [*lines, f"Skipped: {real['reason']}.", ""]
    lines += [
        f"{len(real['names'])} real maps of {real['shape'][0]} x {real['shape'][1]} px "
        f"(`{real['folder']}`: qpi15 and img_001-014, live PC-3/PNT1A cells, Telight "
        "Q-PHASE, 0.627 µm/px) with their manual instance labels. The files hold dry-mass "
        "density in pg/µm² (see `../shared/data/README.md`); they are read with "
        '`read_acquisition(path, phase_unit="pg_per_um2", wavelength_um=0.65, '
        "pixel_size_um=0.627)`, i.e. phase = 2π·0.18/0.65 × value = 1.74 × value radians. "
        f"Median cell diameter in the labels: {real['diameter_px']:.1f} px (equivalent area).",
        "",
        "DM-QPMNet's angle images come from `results.synthesize_ssqpm`, an adapter over the "
        "simulator's public pieces (the simulator has no entry point for an external phase "
        "map): real phase + `optics.reference_wavefront` (tilt, curvature, residual "
        "aberration), `optics.illumination` (fall-off, edge scattering), "
        "`optics.expected_intensities` (fringe visibility 0.8), `detector.detect` (shot and "
        "read noise, 12 bits), then `phase.retrieve_phase`; simulator defaults, seed "
        f"`default_rng(({REAL_SEED:_}, image index))`. The real phase keeps its own "
        "noise, to which the camera noise is added.",
        "",
        "Label caveats (data README): bright regions in the top rows of img_006 and "
        "img_012-014 are not annotated, and cells touching the border are sometimes not "
        "annotated. The second table removes every cell touching the border from both the "
        "prediction and the truth.",
        "",
        "Rows with `diameter_px` given: the same model and image, with the median cell "
        f"diameter of the real labels ({real['diameter_px']} px) passed to the inference, "
        "which resamples each image so that cells have the diameter the model was trained at "
        f"({_trained_diameter(numbers)}) and the labels back. That one number comes from the "
        "labels, so these rows show what a user who states the cell size gets, not a blind "
        "score; the targets use the rows without it (the default a user gets).",
        "",
    ]
    for title, field in (
        ("All cells", "records"),
        ("Excluding cells touching the border (prediction and truth)", "border_records"),
    ):
        lines += [
            f"**{title}.**",
            "",
            "| model | input " + SCORE_HEAD,
            "|---|---" + "|---" * 8 + "|",
        ]
        for key, method in real["methods"].items():
            lines.append(
                f"| {_label(numbers, key)} | {_real_input(numbers, key)} | "
                + _score_cells(summarize(method[field]))
            )
        lines.append("")
    return lines + per_image_table(numbers)


def _trained_diameter(numbers: Mapping) -> str:
    values = []
    for key in shipped_keys(numbers):
        model = numbers["models"].get(key)
        if model and model["training"]["cell_diameter_px"]:
            values.append(f"{_label(numbers, key)} {model['training']['cell_diameter_px']:.1f} px")
    return ", ".join(values) or "unknown"


def _short(key: str) -> str:
    base, _, variant = key.partition("@")
    short = {"mha-2": "DM-QPMNet", "phase-only": "phase only", "otsu": "Otsu"}.get(base, base)
    short = short.removeprefix(SHIPPED_PREFIX)
    return short + (", diameter given" if variant else "")


def per_image_table(numbers: Mapping) -> list[str]:
    """Dice, F1 and cell counts of every real image for every method."""
    methods = numbers["real"]["methods"]
    keys = list(methods)
    head = " | ".join(f"{_short(k)}: Dice / F1 / cells" for k in keys)
    lines = [
        "Per image (true cells / predicted cells):",
        "",
        f"| image | {head} |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for index, name in enumerate(numbers["real"]["names"]):
        cells = []
        for key in keys:
            r = methods[key]["records"][index]
            cells.append(f"{r['dice']:.3f} / {r['f1']:.3f} / {r['n_true']} / {r['n_pred']}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


SCALE_MODELS = ("dmqpm-default", "dmqpm-fast", "phase-only")  # bench_scale.SHIPPED
SCALE_BASELINES = ("otsu", "iit-dense", "iit-sparse")


def _scale_summary(numbers: Mapping) -> dict | None:
    scale = numbers.get("scale")
    return scale["summary"] if scale else None


def scale_target_rows(numbers: Mapping) -> list[dict]:
    """The targets at every magnification (``bench_scale.target_rows``); [] without a sweep."""
    summary = _scale_summary(numbers)
    if not summary:
        return []
    from benchmarks import bench_scale

    return bench_scale.target_rows(summary, [m for m in SCALE_MODELS if m in summary])


def scale_section(numbers: Mapping) -> list[str]:
    """Section 3: every shipped model (automatic size and oracle), Otsu and IIT at every
    magnification, from the records of ``benchmarks/bench_scale.py``."""
    summary = _scale_summary(numbers)
    lines = ["## 3. Across magnifications (scale sweep)", ""]
    if not summary:
        return [*lines, "Not run here (`--no-scale`): see docs/results_scale.md.", ""]
    from benchmarks import bench_scale

    models = [m for m in SCALE_MODELS if m in summary]
    classics = [m for m in SCALE_BASELINES if m in summary]
    scale = numbers["scale"]
    lines += [
        "Every shipped model as users run it (`auto`: the automatic cell size) and with the "
        "true median cell diameter given (`oracle`), beside Otsu + watershed and IIT, on "
        "images whose cells are 12-110 px across: simulated dense fields (`D<diameter>`, "
        "seeds `default_rng((9_300_000, D, i))`, 2 per diameter) and the 15 real maps "
        "resampled (`x<factor>`). Scored by `benchmarks/bench_scale.py`, which also gives the "
        "rows without resampling and the diameter errors (docs/results_scale.md); records "
        f"computed in {scale['cpu_minutes']:.0f} min of CPU: {scale['records']}.",
        "",
    ]
    for key, what in (("f1", "F1 at IoU 0.5"), ("dice", "Foreground Dice")):
        head = ["images", "true diameter, px"]
        head += [f"`{m}` {mode}" for m in models for mode in ("auto", "oracle")]
        head += list(classics)
        lines += [f"{what}, mean over images:", ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for prefix in ("D", "x"):
            for group in bench_scale.groups_in_order(summary, prefix):
                true_d = bench_scale.true_diameter(summary, models, group)
                cells = [
                    bench_scale.cell(summary, m, mode, group, key)
                    for m in models
                    for mode in ("auto", "oracle")
                ]
                cells += [bench_scale.cell(summary, c, "none", group, key) for c in classics]
                lines.append(f"| {group} | {true_d:.1f} | " + " | ".join(cells) + " |")
        lines.append("")
    return [*lines, *bench_scale.targets_section(summary, models, heading="### ")]


def baseline_section(numbers: Mapping) -> list[str]:
    """Section 3: the classical baseline and how it was tuned."""
    b = numbers["baseline"]
    config = dataclasses.asdict(b["config"])
    best = sorted(b["trials"], key=lambda t: -t[1])
    fg = max((t for t in b["trials"] if "threshold_factor" in t[0]), key=lambda t: t[1])
    seed = max((t for t in b["trials"] if "seed_h_px" in t[0]), key=lambda t: t[1])
    return [
        "## 4. Classical baselines: Otsu + watershed, and IIT",
        "",
        "`benchmarks/baselines.py` (scikit-image): Gaussian smoothing, Otsu threshold times a "
        "factor, holes filled, h-maxima of the smoothed distance transform as seeds, "
        "watershed on the negated distance. Tuned on simulated fields only: "
        f"{b['n_fields']} fields of {b['shape'][0]} x {b['shape'][1]} px, seeds "
        f"`default_rng(({TUNE_SEED:_}, d, i))` (disjoint from the test set), first "
        f"the foreground parameters by Dice (best {fg[1]:.3f}), then the seed parameters by "
        f"F1@0.5 (best {seed[1]:.3f}); {len(best)} combinations tried. Chosen: "
        + ", ".join(f"`{k}={v}`" for k, v in config.items())
        + ". It is scored in the same tables as the networks.",
        "",
        "`benchmarks/iit.py`: Vicar et al.'s improved iterative thresholding for QPM "
        "(Laplacian-of-Gaussian sharpening, a descending threshold sweep that splits a region "
        "when it breaks into parts with enough dry mass, distance-transform watershed), "
        "written from the paper's description, with the two published parameter sets "
        "(dense and sparse fields); nothing tuned here.",
        "",
    ]


def ablation_section(numbers: Mapping) -> list[str]:
    """Section 4: Table 2 on our data (synthetic and real), and the paper's numbers apart."""
    syn, timing, real = numbers["synthetic"], numbers["timing"], numbers["real"]
    threads = numbers["meta"]["timing_threads"]
    models = numbers["models"]
    extra = [
        k for k in syn["methods"] if k not in dict(ROWS) and k not in models and k not in IIT_LABELS
    ]
    extra += [k for k, m in models.items() if not m.get("shipped") and k not in dict(ROWS)]
    table2 = [k for k, _ in ROWS if k != "otsu"]
    none_given = not any(k in syn["methods"] for k in table2)
    if none_given and not extra:
        return [
            "## 5. Ablation (the paper's Table 2 on our data)",
            "",
            "docs/results_ablation.md: the fusion variants, early fusion and the single-input "
            "networks, each trained with one equal budget. Their checkpoints are not in the "
            "repository; `benchmarks/train_ablation.py --out DIR` trains them (8 rows of "
            "25-52 min each on one CPU thread) and `python benchmarks/results.py --ablation "
            "DIR --out docs/results_ablation.md` scores them.",
            "",
        ]
    keys = [k for k, _ in ROWS if not (none_given and k in table2)] + extra
    lines = [
        "## 5. Ablation (the paper's Table 2 on our data)",
        "",
        *(
            ["No row of Table 2 was in this run; the table holds the other networks.", ""]
            if none_given
            else []
        ),
        f"Every row on the same data: all {4 * syn['n_per_density']} fields of the held-out "
        "synthetic test set (section 1), all densities together, and the real Q-PHASE maps "
        "(section 2; the dual and angle rows see angles synthesized from the real phase). "
        "Time: forward pass of one "
        f"512 x 512 tile (batch 1, random inputs, torch {threads} thread(s)), median process "
        "CPU time of the repeats after warm-up (wall time in brackets); for the baseline, "
        "the whole segmentation of a 512 x 512 dense field. Training: wall minutes until the "
        "best checkpoint and iterations (batch x patches), from the checkpoint (section 7).",
        "",
        "| model | Dice | IoU | F1@0.5 | real Dice | real F1@0.5 | parameters "
        "| CPU ms per 512² tile | training |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in keys:
        if key not in syn["methods"]:
            lines.append(f"| {row_label(key)} | not trained yet | | | | | | | |")
            continue
        s, t = summarize(syn["methods"][key]["records"]), timing.get(key, {})
        model = models.get(key)
        params = f"{model['n_parameters'] / 1e6:.2f} M" if model else "-"
        tuned = f"tuned on {numbers['baseline']['n_fields']} fields"
        budget = _budget_cell(model["training"]) if model else tuned
        ms = f"{t['cpu_ms']:.0f} ({t['wall_ms']:.0f})" if t else "-"
        on_real = "- | -"
        if real.get("available") and key in real["methods"]:
            r = summarize(real["methods"][key]["records"])
            on_real = f"{_pm(r['dice'])} | {r['f1'][0]:.3f}"
        lines.append(
            f"| {_label(numbers, key)} | {_pm(s['dice'])} | {_pm(s['iou'])} "
            f"| {s['f1'][0]:.3f} | {on_real} | {params} | {ms} | {budget} |"
        )
    rows = [m for m in models.values() if not m.get("shipped")]
    planned = sorted({_planned_budget(m["training"]) for m in rows})
    if len(planned) > 1:
        lines += [
            "",
            f"Not the same training budget for every row: planned {', '.join(planned)} "
            "(section 7); compare rows with that in mind.",
        ]
    twins = [(k, m["same_as"]) for k, m in models.items() if m.get("same_as")]
    lines += [
        "",
        *(f"The shipped `{models[k]['name']}` is the checkpoint of the row "
          f"{row_label(row)} (same sha256)." for k, row in twins),
    ]  # fmt: skip
    lines += [
        "",
        "**The paper's reported values** (arXiv:2511.00218, Table 2, on the paper's own "
        "ssQPM data, which we do not have: not comparable with the table above):",
        "",
        "| model | paper Dice | paper IoU |",
        "|---|---|---|",
    ]
    lines += [f"| {row_label(k)} | {d} | {i} |" for k, (d, i) in PAPER.items()]
    return [*lines, ""]


def _budget_cell(t: Mapping) -> str:
    its = t.get("iterations")
    batch = t.get("batch_size") or 0
    return f"{t['minutes']:.1f} min, {its} it ({(its or 0) * batch} patches)"


def _status(value: float, target: float) -> str:
    margin = value - target
    return f"met (+{margin:.3f})" if margin >= 0 else f"**missed by {-margin:.3f}**"


def target_rows(numbers: Mapping) -> list[dict]:
    """Every target for the shipped models: data, model, metric, measured, target."""
    rows = []
    for key in shipped_keys(numbers):
        method = numbers["synthetic"]["methods"].get(key)
        for density in DENSITIES if method else ():
            records = [r for r in method["records"] if r["group"] == density]
            for metric, target in TARGETS["synthetic"].items():
                rows.append(
                    {
                        "key": key,
                        "data": f"synthetic {density}",
                        "records": records,
                        "metric": metric,
                        "target": target,
                    }
                )
    real, phase_key = numbers["real"], phase_only_key(numbers)
    if real["available"] and phase_key in real["methods"]:
        for metric, target in TARGETS["real"].items():
            rows.append(
                {
                    "key": phase_key,
                    "data": "real Q-PHASE",
                    "metric": metric,
                    "records": real["methods"][phase_key]["records"],
                    "target": target,
                }
            )
    for row in rows:
        row["value"] = summarize(row["records"])[row["metric"]][0]
    return rows


def targets_section(numbers: Mapping) -> list[str]:
    """Section 5: met / missed, by how much, and measured reasons for the misses."""
    rows = target_rows(numbers)
    lines = [
        "## 6. Targets of the first release",
        "",
        "Held-out synthetic: Dice ≥ 0.95 and F1@0.5 ≥ 0.92 at every density (mean over the "
        "fields of that density); real Q-PHASE with the phase-only model: Dice ≥ 0.90 and "
        "F1@0.5 ≥ 0.80 (mean over the images, all cells).",
        "",
    ]
    if len(shipped_keys(numbers)) < 2 or phase_only_key(numbers) is None:
        lines += ["Not every shipped model was found: some targets cannot be checked.", ""]
    if not rows:
        return lines
    lines += ["| model | data | score | measured | target | status |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {_label(numbers, r['key'])} | {r['data']} | {r['metric']} "
            f"| {r['value']:.3f} | {r['target']:.2f} | {_status(r['value'], r['target'])} |"
        )
    missed = {}
    for r in rows:
        if r["value"] < r["target"]:
            missed.setdefault((r["key"], r["data"]), r["records"])
    if missed:
        lines += ["", "**Why the misses (measured).**", ""]
    for (key, data), records in missed.items():
        lines += _why(numbers, key, data, records)
    return [*lines, ""]


def _why(numbers: Mapping, key: str, data: str, records: Sequence[Mapping]) -> list[str]:
    """Error decomposition of one missed (model, data) pair, with its worst images."""
    s = summarize(records)
    ratio = s["fg_pred"] / max(s["fg_true"], 1)
    worst = sorted(records, key=lambda r: r["f1"])[:3]
    text = (
        f"- {_label(numbers, key)}, {data}: foreground Dice {s['dice'][0]:.3f}, F1 "
        f"{s['f1'][0]:.3f}, mean matched IoU {s['mean_matched_iou'][0]:.3f}; predicted / true "
        f"foreground pixels {ratio:.2f}, Dice with the predicted foreground grown by 1 px "
        f"{s['dice_grown_1px'][0]:.3f}. {s['n_true']} true cells, {s['n_pred']} predicted: "
        f"{s['tp']} matched, {s['fn']} false negatives, {s['fp']} false positives. "
        f"{s['merges']} merges swallow {s['merged_cells']} true cells; {s['splits']} split "
        f"cells give {s['split_fragments']} fragments; {s['missed']} true cells missed "
        f"(> half on predicted background), {s['spurious']} spurious predictions. Worst: "
        + "; ".join(
            f"{r['name']} (Dice {r['dice']:.3f}, F1 {r['f1']:.3f}, {r['n_true']} / "
            f"{r['n_pred']} cells, {r['merges']} merges, {r['splits']} splits)"
            for r in worst
        )
        + "."
    )
    lines = [text]
    real = numbers["real"]
    if data.startswith("real") and key in real.get("methods", {}):
        b = summarize(real["methods"][key]["border_records"])
        lines.append(
            f"  Without border cells (annotation caveat): Dice {b['dice'][0]:.3f}, "
            f"F1 {b['f1'][0]:.3f}."
        )
        sized = real["methods"].get(f"{key}@diameter")
        if sized:
            d = summarize(sized["records"])
            lines.append(
                f"  With the cell diameter given ({real['diameter_px']} px, resampled to the "
                f"trained {numbers['models'][key]['training']['cell_diameter_px']} px): Dice "
                f"{d['dice'][0]:.3f}, F1 "
                f"{d['f1'][0]:.3f}, {d['merges']} merges, {d['splits']} splits."
            )
    return lines


def training_section(numbers: Mapping) -> list[str]:
    """Section 6: the training budgets stated by the checkpoints."""
    lines = [
        "## 7. Training budgets (from each checkpoint's config.json / model card)",
        "",
        "The checkpoint is the best epoch by validation Dice, so its time and iterations are "
        "those at that epoch; the planned budget is the run's time limit.",
        "",
        "| model | wall min to best | iterations (patches) | epoch | planned budget | patch, batch "
        "| device, threads | data | seed | val Dice / F1 | cell diameter px |",
        "|---" * 11 + "|",
    ]
    for key, m in numbers["models"].items():
        t = m["training"]
        data = "simulator" if t["simulator"] else ""
        data += (" + " if data and t["folders"] else "") + ", ".join(map(str, t["folders"]))
        f1 = f"{t['val_f1']:.3f}" if t["val_f1"] is not None else "-"
        dice = f"{t['val_dice']:.3f}" if t["val_dice"] is not None else "-"
        lines.append(
            f"| {_label(numbers, key)} | {t['minutes']:.1f} | {t['iterations']} "
            f"({(t['iterations'] or 0) * (t['batch_size'] or 0)}) | {t['epoch']} "
            f"| {t['budget_minutes']} min | {t['patch_size']}, {t['batch_size']} "
            f"| {t['device']}, {t['threads']} of {t['cpu_count']} cores | {data or '-'} "
            f"| {t['seed']} | {dice} / {f1} | {t['cell_diameter_px']} |"
        )
    return [*lines, ""]


def render_markdown(numbers: Mapping, *, command: str = "python benchmarks/py") -> str:
    """The whole of docs/results.md."""
    parts = [
        header(numbers, command),
        summary_section(numbers),
        models_section(numbers),
        synthetic_section(numbers),
        real_section(numbers),
        scale_section(numbers),
        baseline_section(numbers),
        ablation_section(numbers),
        targets_section(numbers),
        training_section(numbers),
        finetune_section(),
    ]
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"


FINETUNE_HEADING = "## 8. "


def finetune_section() -> list[str]:
    """The human-in-the-loop experiment, written by ``benchmarks/finetune_real.py``."""
    path = Path(__file__).resolve().parents[1] / "docs" / "results_finetune.md"
    if not path.is_file():
        return [
            "## 8. Fine-tuning on real data",
            "",
            "Not run yet: `python benchmarks/finetune_real.py`.",
            "",
        ]
    text = path.read_text().strip().splitlines()
    return [FINETUNE_HEADING + text[0].removeprefix("## "), *text[1:], ""]


def update_finetune_section(results_md: Path) -> bool:
    """Replace section 7 of an existing docs/results.md with :func:`finetune_section`.

    What ``benchmarks/results.py`` would write there, without re-running the other sections
    (``benchmarks/finetune_real.py`` calls this after writing docs/results_finetune.md).

    Returns
    -------
    bool
        False when ``results_md`` is absent or has no section 7 (nothing written).
    """
    if not results_md.is_file():
        return False
    lines = results_md.read_text("utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(FINETUNE_HEADING)), None)
    if start is None:
        return False
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), None)
    tail = [] if end is None else lines[end:]
    text = "\n".join([*lines[:start], *finetune_section(), *tail]).rstrip() + "\n"
    results_md.write_text(text, "utf-8")
    return True
