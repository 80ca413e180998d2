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
from benchmarks.templates import render

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
        *render(
            "results/header.md",
            command=command,
            minutes=f"{m['seconds'] / 60:.1f}",
            machine=m["machine"],
            commit=m["commit"],
            date=m["date"],
            backend=m.get("backend", "torch"),
            threads=m["inference_threads"],
            whole_frame_mp=f"{tiling['whole_frame_px'] / 1e6:.1f}",
            tile_size=tiling["tile_size"],
            overlap=f"{tiling['overlap']:.0%}",
            resampling=resampling,
        ),
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
        *render(
            "results/synthetic.md",
            n_per_density=syn["n_per_density"],
            rows=syn["shape"][0],
            columns=syn["shape"][1],
            densities=", ".join(DENSITIES),
            test_seed=f"{TEST_SEED:_}",
            training_seeds=_training_seeds(numbers),
            pixel_min=PIXEL_RANGE_UM[0],
            pixel_max=PIXEL_RANGE_UM[1],
            size_min=f"{min(sizes):.2f}",
            size_max=f"{max(sizes):.2f}",
            score_head=SCORE_HEAD,
        ),
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
    lines += render(
        "results/real.md",
        n_maps=len(real["names"]),
        rows=real["shape"][0],
        columns=real["shape"][1],
        folder=real["folder"],
        diameter=f"{real['diameter_px']:.1f}",
        real_seed=f"{REAL_SEED:_}",
        diameter_given=real["diameter_px"],
        trained_diameter=_trained_diameter(numbers),
    )
    lines.append("")
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
        *render(
            "results/scale.md",
            cpu_minutes=f"{scale['cpu_minutes']:.0f}",
            records=scale["records"],
        ),
        "",
    ]
    groups = [g for prefix in ("D", "x") for g in bench_scale.groups_in_order(summary, prefix)]
    for key, what in (("f1", "F1 at IoU 0.5"), ("dice", "Foreground Dice")):
        lines += [f"{what}, mean over images:", ""]
        lines += [
            *bench_scale.scale_table(
                summary,
                groups,
                models,
                classics,
                modes=("auto", "oracle"),
                keys=(key,),
                first="images",
            ),
            "",
        ]
    return [*lines, *bench_scale.targets_section(summary, models, heading="### ")]


def baseline_section(numbers: Mapping) -> list[str]:
    """Section 3: the classical baseline and how it was tuned."""
    b = numbers["baseline"]
    config = dataclasses.asdict(b["config"])
    best = sorted(b["trials"], key=lambda t: -t[1])
    fg = max((t for t in b["trials"] if "threshold_factor" in t[0]), key=lambda t: t[1])
    seed = max((t for t in b["trials"] if "seed_h_px" in t[0]), key=lambda t: t[1])
    return [
        *render(
            "results/baseline.md",
            n_fields=b["n_fields"],
            rows=b["shape"][0],
            columns=b["shape"][1],
            tune_seed=f"{TUNE_SEED:_}",
            best_foreground=f"{fg[1]:.3f}",
            best_seed=f"{seed[1]:.3f}",
            n_trials=len(best),
            chosen=", ".join(f"`{k}={v}`" for k, v in config.items()),
        ),
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
        return [*render("results/ablation_not_run.md"), ""]
    keys = [k for k, _ in ROWS if not (none_given and k in table2)] + extra
    lines = [
        "## 5. Ablation (the paper's Table 2 on our data)",
        "",
        *(
            ["No row of Table 2 was in this run; the table holds the other networks.", ""]
            if none_given
            else []
        ),
        *render("results/ablation.md", n_fields=4 * syn["n_per_density"], threads=threads),
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
    lines += ["", *render("results/ablation_paper.md")]
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
    lines = [*render("results/targets.md"), ""]
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
    worst_text = "; ".join(
        f"{r['name']} (Dice {r['dice']:.3f}, F1 {r['f1']:.3f}, {r['n_true']} / "
        f"{r['n_pred']} cells, {r['merges']} merges, {r['splits']} splits)"
        for r in worst
    )
    counts = {k: s[k] for k in (*COUNTS, "n_true", "n_pred") if k in s}
    lines = render(
        "results/why.md",
        label=_label(numbers, key),
        data=data,
        dice=f"{s['dice'][0]:.3f}",
        f1=f"{s['f1'][0]:.3f}",
        matched_iou=f"{s['mean_matched_iou'][0]:.3f}",
        ratio=f"{ratio:.2f}",
        dice_grown=f"{s['dice_grown_1px'][0]:.3f}",
        worst=worst_text,
        **counts,
    )
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
    lines = render("results/training.md")
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
