"""Scale sweep: does segmentation hold at every magnification? Writes docs/results_scale.md.

Every shipped model is run three ways on images whose cells range from 12 to 110 px across:

- ``auto``: the default, ``diameter_px="auto"`` (the model estimates the cell diameter;
  :mod:`napari_dmqpm.inference.diameter`), with the pixel size of the file, as a user runs it;
- ``oracle``: the true median cell diameter of the labels given as ``diameter_px``;
- ``none``: no resampling at all (``diameter_px=None, use_pixel_size=False``), what the
  plugin did before the estimate existed;

beside the classical Otsu + watershed baseline (``benchmarks/baselines.py``, tuned on simulated
fields at the training scale, as in docs/results.md) and Vicar et al.'s improved iterative
thresholding (``benchmarks/iit.py``, both published parameter sets).

Images:

1. simulated fields (``napari_dmqpm.simulation``, density "dense", seeds
   ``default_rng((9_300_000, D, i))``, a namespace no training or tuning used) whose median
   cell diameter is about D = 12, 20, 35, 50, 80 and 110 px, made by changing the pixel size
   (the cells keep their size in µm);
2. the 15 real Q-PHASE maps of ``../shared/data/real/vicar_qphase_iit`` resampled x0.5, x0.75,
   x1 (as measured), x1.5, x2 and x2.5 (bilinear phase, antialiased when shrinking; nearest
   labels; pixel size divided by the factor), with angle images synthesized from the resampled
   phase for the models that take them (as in docs/results.md).

Nothing in the diameter estimate was tuned on the real maps (its tolerance, window and pass
count were fixed before they were run), so the real rows are held-out numbers.

Usage::

    python benchmarks/bench_scale.py [--methods NAME ...] [--quick] [--out docs/results_scale.md]

Results are cached per method in ``.bench_cache/scale/`` (ignored by git), so a killed run
resumes, and methods can run in parallel processes (``--methods``) and be reported together
(``--report-only``). An ``auto`` record carries the fingerprint of what the estimate depends on
(:func:`estimate_fingerprint`): after a change to the estimate, prediction, post-processing or
the sizing model's weights the old ones are neither reused nor reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import results
from benchmarks.results import Case
from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / ".bench_cache" / "scale"
SHIPPED = ("dmqpm-default", "dmqpm-fast", "phase-only")
BASELINES = ("otsu", "iit-dense", "iit-sparse")
MODES = ("auto", "oracle", "none")
SIM_DIAMETERS = (12, 20, 35, 50, 80, 110)
REAL_ZOOMS = (0.5, 0.75, 1.0, 1.5, 2.0, 2.5)
SCALE_SEED = 9_300_000
#: Median equivalent cell diameter of a "dense" simulated field at the simulator's default
#: 0.627 µm per pixel, px (measured on 8 seeded 768² fields, seeds 0-7: 26.9-29.1).
REFERENCE_DIAMETER_PX = 28.5
REFERENCE_PIXEL_UM = 0.627
FIELDS_PER_DIAMETER = 2
#: Goals of the issue: F1 within this of the oracle, median |diameter error| below this (%).
F1_GAP, DIAMETER_ERROR_PCT = 0.03, 10.0
TARGETS = {"sim_f1": 0.93, "sim_dice": 0.97, "real_f1": 0.75, "real_dice": 0.88, "over_iit": 0.05}


def median_diameter(labels: np.ndarray) -> float:
    """Median equivalent diameter of all cells of a labels image, px (the training statistic)."""
    from napari_dmqpm.inference.diameter import cell_diameters

    return float(np.median(cell_diameters(labels, exclude_border=False)))


def simulated_cases(diameters=SIM_DIAMETERS, n_fields=FIELDS_PER_DIAMETER, *, max_side=1400):
    """Dense simulated fields whose median cell diameter is about each of ``diameters`` px."""
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    cases = []
    for diameter in diameters:
        pixel = REFERENCE_PIXEL_UM * REFERENCE_DIAMETER_PX / diameter
        side = int(np.clip(14 * diameter, 384, max_side))
        for i in range(n_fields):
            config = SimulationConfig(shape=(side, side), density="dense", pixel_size_um=pixel)
            field = simulate_field(config, rng=np.random.default_rng((SCALE_SEED, diameter, i)))
            cases.append(
                Case(
                    f"sim-D{diameter}-{i}",
                    f"D{diameter}",
                    field.phase,
                    field.labels,
                    field.angles,
                    pixel_size_um=pixel,
                )  # fmt: skip
            )
    return cases


def resample_case(case: Case, zoom: float, index: int) -> Case:
    """A real case as if imaged at ``zoom`` times the magnification (angles re-synthesized)."""
    from skimage.transform import rescale

    if zoom == 1.0:
        phase, labels = case.phase, case.labels
    else:
        phase = rescale(case.phase, zoom, order=1, anti_aliasing=zoom < 1, preserve_range=True)
        labels = rescale(case.labels, zoom, order=0, anti_aliasing=False, preserve_range=True)
        phase, labels = phase.astype(np.float32), labels.astype(np.int64)
    pixel = case.pixel_size_um / zoom
    angles, retrieved = results.synthesize_ssqpm(
        phase, pixel_size_um=pixel, wavelength_um=results.REAL_WAVELENGTH_UM,
        rng=np.random.default_rng((SCALE_SEED, index, int(zoom * 100))),
    )  # fmt: skip
    return Case(f"{case.name}-x{zoom:g}", f"x{zoom:g}", phase, labels, angles, retrieved, pixel)


def real_cases(folder: Path, zooms=REAL_ZOOMS, *, limit: int | None = None) -> list[Case]:
    """The real maps at each zoom; empty when the folder is absent."""
    if not folder.is_dir():
        return []
    base = results.real_cases(folder, limit=limit)
    return [resample_case(c, z, i) for z in zooms for i, c in enumerate(base)]


def sweep_cases(real_dir: Path, *, quick: bool = False) -> list[Case]:
    """The images of the sweep: every simulated diameter and real resampling, or (``quick``)
    two diameters and two real maps at x0.5 and x2."""
    if quick:
        return simulated_cases((20, 50), 1, max_side=512) + real_cases(
            real_dir, (0.5, 2.0), limit=2
        )
    return simulated_cases() + real_cases(real_dir)


def model_runner(name: str) -> Callable[[Case, str], tuple[np.ndarray, dict]]:
    """``run(case, mode) -> (labels, extra)`` for a shipped model."""
    from napari_dmqpm.inference import InferenceConfig
    from napari_dmqpm.inference.diameter import estimate_diameter
    from napari_dmqpm.model.registry import load_model

    model = load_model(name, device="cpu")

    def run(case: Case, mode: str) -> tuple[np.ndarray, dict]:
        extra: dict = {}
        if mode == "auto":
            angles, phase = results.case_inputs(model, case)
            estimate = estimate_diameter(
                model,
                angles=angles,
                phase=phase,
                pixel_size_um=case.pixel_size_um,
                config=InferenceConfig(backend="torch"),
            )
            extra["estimate"] = estimate.to_dict()
            config = InferenceConfig(diameter_px=estimate.diameter_px, backend="torch")
        elif mode == "oracle":
            config = InferenceConfig(diameter_px=median_diameter(case.labels), backend="torch")
        else:
            config = InferenceConfig(diameter_px=None, use_pixel_size=False, backend="torch")
        return results.predict_labels(model, case, inference=config), extra

    return run


def baseline_runner(name: str) -> Callable[[Case, str], tuple[np.ndarray, dict]]:
    """The classical methods: one mode each ("none": they take no diameter)."""
    from benchmarks import baselines

    if name == "otsu":
        config = results.tune_baseline(3, results.SYNTHETIC_SHAPE, None)["config"]
        return lambda case, mode: (baselines.segment_otsu_watershed(case.phase, config=config), {})
    from benchmarks import iit

    preset = iit.IIT_PRESETS[name.split("-", 1)[1]]

    def run(case: Case, mode: str) -> tuple[np.ndarray, dict]:
        labels = iit.segment_iit(case.phase, config=preset, pixel_size_um=case.pixel_size_um)
        return labels, {}

    return run


def _load_cache(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_cache(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)


def estimate_fingerprint() -> str:
    """What an ``auto`` record depends on beyond the image: the estimate's code and weights.

    The source of the modules the automatic size runs through (the estimate, prediction,
    post-processing) and the sha256 of the model that sizes every shipped one; an ``auto``
    record computed with another fingerprint is stale and computed again.
    """
    import hashlib
    import inspect

    from napari_dmqpm.inference import diameter, postprocess, predict
    from napari_dmqpm.model.registry import find_model

    digest = hashlib.sha256()
    for module in (diameter, predict, postprocess):
        digest.update(inspect.getsource(module).encode("utf-8"))
    weights = find_model(diameter.SIZE_MODEL).path / "model.safetensors"
    digest.update(hashlib.sha256(weights.read_bytes()).hexdigest().encode("ascii"))
    return digest.hexdigest()[:16]


def current_records(records: Mapping[str, dict], fingerprint: str) -> dict[str, dict]:
    """The records still valid: every ``auto`` record of another estimate is left out."""
    return {
        key: record
        for key, record in records.items()
        if record["mode"] != "auto" or record.get("estimate_fingerprint") == fingerprint
    }


def run_method(
    name: str, cases: Sequence[Case], *, cache: Path, say: Callable[[str], None] = print
) -> dict:
    """Score one method on every case (cached record per case and mode)."""
    from napari_dmqpm.training.metrics import score_image

    data = _load_cache(cache)
    fingerprint = estimate_fingerprint()
    valid = current_records(data, fingerprint)
    modes = MODES if name in SHIPPED else ("none",)
    runner = None
    for case in cases:
        for mode in modes:
            key = f"{case.name}|{mode}"
            if key in valid:
                continue
            runner = runner or (model_runner(name) if name in SHIPPED else baseline_runner(name))
            started = time.process_time()
            labels, extra = runner(case, mode)
            scores = score_image(labels, case.labels)
            data[key] = {
                "case": case.name, "group": case.group, "mode": mode, "f1": scores.f1,
                "dice": scores.dice, "cpu_s": time.process_time() - started,
                "true_diameter_px": median_diameter(case.labels), "commit": _commit(), **extra,
            }  # fmt: skip
            if mode == "auto":
                data[key]["estimate_fingerprint"] = fingerprint
            _save_cache(cache, data)
            say(f"{name} {key}: F1 {scores.f1:.3f} Dice {scores.dice:.3f}")
    return data


# ----------------------------------------------------------------------------- report


def _groups(records: Mapping[str, dict], mode: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for record in records.values():
        if record["mode"] == mode:
            out.setdefault(record["group"], []).append(record)
    return out


def summarize(all_records: Mapping[str, Mapping[str, dict]]) -> dict:
    """Per method, mode and group: mean F1, mean Dice, and for auto the diameter errors."""
    summary: dict = {}
    for method, records in all_records.items():
        for mode in MODES:
            for group, rows in _groups(records, mode).items():
                entry = {
                    "f1": float(np.mean([r["f1"] for r in rows])),
                    "dice": float(np.mean([r["dice"] for r in rows])),
                    "n": len(rows),
                    "cpu_s": float(np.mean([r["cpu_s"] for r in rows])),
                }
                errors = [
                    100.0 * (r["estimate"]["diameter_px"] / r["true_diameter_px"] - 1.0)
                    for r in rows
                    if r.get("estimate") and r["estimate"]["diameter_px"]
                ]
                if errors:
                    entry["diameter_error_pct"] = errors
                    entry["true_diameter_px"] = float(
                        np.median([r["true_diameter_px"] for r in rows])
                    )
                summary.setdefault(method, {}).setdefault(mode, {})[group] = entry
    return summary


def cell(summary: dict, method: str, mode: str, group: str, key: str = "f1") -> str:
    """One table cell: the mean ``key`` of a method, mode and group, or a dash."""
    entry = summary.get(method, {}).get(mode, {}).get(group)
    return "–" if entry is None else f"{entry[key]:.3f}"


def true_diameter(summary: dict, models: Sequence[str], group: str) -> float:
    """The median true cell diameter of a group's images, px (nan when unknown)."""
    for model in models:
        entry = summary[model].get("auto", {}).get(group, {})
        if entry.get("true_diameter_px"):
            return entry["true_diameter_px"]
    return float("nan")


def groups_in_order(summary: dict, prefix: str) -> list[str]:
    """The groups starting with ``prefix`` ("D" simulated, "x" real), smallest first."""
    groups = {g for m in summary.values() for by_group in m.values() for g in by_group}
    chosen = [g for g in groups if g.startswith(prefix)]
    return sorted(chosen, key=lambda g: float(g[1:]))


def goal_rows(summary: dict, groups: Sequence[str], method: str) -> list[str]:
    """Per group: the auto-oracle F1 gap and the median |diameter error|, with met / missed."""
    rows = []
    for group in groups:
        auto = summary.get(method, {}).get("auto", {}).get(group)
        oracle = summary.get(method, {}).get("oracle", {}).get(group)
        if auto is None or oracle is None:
            continue
        gap = oracle["f1"] - auto["f1"]
        errors = auto.get("diameter_error_pct", [])
        error = float(np.median(np.abs(errors))) if errors else float("nan")
        ok = gap <= F1_GAP and error < DIAMETER_ERROR_PCT
        rows.append(
            f"| {group} | {auto['true_diameter_px']:.1f} | {auto['f1']:.3f} | {oracle['f1']:.3f} "
            f"| {gap:+.3f} | {error:.1f} % | {'met' if ok else 'missed'} |"
        )
    return rows


def worst_image_notes(records: Mapping[str, dict], groups: Sequence[str]) -> list[str]:
    """Where the auto-oracle gap misses the goal: the image that costs most, and the gap without it.

    One image with a wrong estimate moves a mean over 15 images by several hundredths; this
    says whether a miss is one image or all of them.
    """
    notes = []
    for group in groups:
        gaps = {}
        for key, record in records.items():
            case, mode = key.rsplit("|", 1)
            oracle = records.get(f"{case}|oracle")
            if mode == "auto" and record["group"] == group and oracle is not None:
                gaps[case] = oracle["f1"] - record["f1"]
        if len(gaps) < 2 or float(np.mean(list(gaps.values()))) <= F1_GAP:
            continue
        worst = max(gaps, key=gaps.get)
        rest = float(np.mean([gap for case, gap in gaps.items() if case != worst]))
        estimate = records[f"{worst}|auto"].get("estimate") or {}
        true_d = records[f"{worst}|auto"]["true_diameter_px"]
        found = estimate.get("diameter_px")
        sized = (
            render("scale/sized.md", found=f"{found:.0f}", true=f"{true_d:.0f}")[0]
            if found
            else "no estimate"
        )
        notes += render(
            "scale/worst_image.md",
            group=group,
            worst=worst,
            gap=f"{gaps[worst]:.3f}",
            sized=sized,
            rest=f"{rest:+.3f}",
            within="within" if rest <= F1_GAP else "still above",
            f1_gap=F1_GAP,
        )
    return notes


def scale_table(
    summary: dict,
    groups: Sequence[str],
    models: Sequence[str],
    classics: Sequence[str],
    *,
    modes: Sequence[str] = MODES,
    keys: Sequence[str] = ("f1", "dice"),
    first: str = "scale",
) -> list[str]:
    """A table of mean scores: one row per key and group, one column per model and mode.

    Serves this page (F1 and Dice rows in one table) and the scale section of docs/results.md
    (``results_report.scale_section``: one table per key, modes auto and oracle).

    Parameters
    ----------
    summary : dict
        The output of :func:`summarize`.
    groups : sequence of str
        The rows' groups, in order (e.g. from :func:`groups_in_order`).
    models : sequence of str
        The shipped models, a column per model and mode.
    classics : sequence of str
        The classical methods, a column each (their only mode, "none").
    modes : sequence of str
        The models' modes shown.
    keys : sequence of str
        The scores, "f1" and/or "dice": the rows of every group for each key in turn; where the
        table holds more than one key, a Dice row is labeled "<group> (Dice)".
    first : str
        The head of the first column.

    Returns
    -------
    list of str
        The table's head, separator and rows.
    """
    head = [first, "true diameter, px"]
    head += [f"`{m}` {mode}" for m in models for mode in modes]
    head += list(classics)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in keys:
        for group in groups:
            true_d = true_diameter(summary, models, group)
            cells = [cell(summary, m, mode, group, key) for m in models for mode in modes]
            cells += [cell(summary, c, "none", group, key) for c in classics]
            label = f"{group} (Dice)" if key == "dice" and len(keys) > 1 else group
            lines.append(f"| {label} | {true_d:.1f} | " + " | ".join(cells) + " |")
    return lines


def report(all_records: Mapping[str, Mapping[str, dict]], *, header: Sequence[str]) -> str:
    """docs/results_scale.md from the cached records of every method."""
    summary = summarize(all_records)
    models = [m for m in SHIPPED if m in summary]
    classics = [m for m in BASELINES if m in summary]
    lines = ["# Results across magnifications (scale sweep)", "", *header, ""]
    for title, prefix in (("Simulated fields", "D"), ("Real Q-PHASE maps, resampled", "x")):
        groups = groups_in_order(summary, prefix)
        if not groups:
            lines += [f"## {title}", "", *render("scale/not_run.md"), ""]
            continue
        lines += [f"## {title}", "", *render("scale/table.md"), ""]
        lines += [*scale_table(summary, groups, models, classics), ""]
        for model in models:
            rows = goal_rows(summary, groups, model)
            if not rows:
                continue
            lines += [
                *render(
                    "scale/goal.md",
                    model=model,
                    f1_gap=F1_GAP,
                    error_pct=f"{DIAMETER_ERROR_PCT:.0f}",
                ),
                "",
                "| scale | true diameter, px | F1 auto | F1 oracle | gap "
                "| median diameter error | goal |",
                "|---|---|---|---|---|---|---|",
                *rows,
                "",
            ]
            notes = worst_image_notes(all_records[model], groups)
            if notes:
                lines += [*notes, ""]
    lines += targets_section(summary, models)
    return "\n".join(lines) + "\n"


def target_rows(summary: dict, models: Sequence[str]) -> list[dict]:
    """The issue's targets for every shipped model with default (auto) settings: one dict per
    model and scale with its F1, Dice, margin over the better IIT preset, goals and ``met``."""
    rows = []
    for model in models:
        for group, entry in sorted(summary[model].get("auto", {}).items()):
            real = group.startswith("x")
            f1_goal, dice_goal = (
                (TARGETS["real_f1"], TARGETS["real_dice"]) if real
                else (TARGETS["sim_f1"], TARGETS["sim_dice"])
            )  # fmt: skip
            iit = [summary[c]["none"][group]["f1"] for c in ("iit-dense", "iit-sparse")
                   if group in summary.get(c, {}).get("none", {})]  # fmt: skip
            margin = entry["f1"] - max(iit) if iit else None
            met = entry["f1"] >= f1_goal and entry["dice"] >= dice_goal
            if real and margin is not None:
                met = met and margin >= TARGETS["over_iit"]
            rows.append({
                "model": model, "real": real, "group": group, "f1": entry["f1"],
                "dice": entry["dice"], "f1_goal": f1_goal, "dice_goal": dice_goal,
                "over_iit": margin, "met": met,
            })  # fmt: skip
    return rows


def targets_section(summary: dict, models: Sequence[str], *, heading: str = "## ") -> list[str]:
    """The table of :func:`target_rows`, and why the real-map targets are missed."""
    lines = [f"{heading}Targets (default settings: automatic size)", ""]
    lines += [
        "| model | images | scale | F1 | Dice | F1 over best IIT | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in target_rows(summary, models):
        margin = "–" if r["over_iit"] is None else f"{r['over_iit']:+.3f}"
        lines.append(
            f"| `{r['model']}` | {'real' if r['real'] else 'simulated'} | {r['group']} "
            f"| {r['f1']:.3f} (≥ {r['f1_goal']}) | {r['dice']:.3f} (≥ {r['dice_goal']}) "
            f"| {margin} | {'met' if r['met'] else 'missed'} |"
        )
    return [*lines, "", *why_real_missed(summary, models)]


def why_real_missed(summary: dict, models: Sequence[str]) -> list[str]:
    """Why the real-map targets are missed, from the numbers: not the size, the instances."""
    real = {m: {g: e for g, e in summary[m].get("oracle", {}).items() if g.startswith("x")}
            for m in models}  # fmt: skip
    if not any(real.values()):
        return []
    best_oracle = max(e["f1"] for by_group in real.values() for e in by_group.values())
    iit = [e["f1"] for c in ("iit-dense", "iit-sparse")
           for g, e in summary.get(c, {}).get("none", {}).items() if g.startswith("x")]  # fmt: skip
    iit_words = (
        render("scale/why_iit.md", low=f"{min(iit):.2f}", high=f"{max(iit):.2f}")[0] if iit else ""
    )
    dice = [e["dice"] for by_group in real.values() for e in by_group.values()]
    paragraph = render(
        "scale/why_real_missed.md",
        best_oracle=f"{best_oracle:.3f}",
        iit=iit_words,
        dice_low=f"{min(dice):.3f}",
        dice_high=f"{max(dice):.3f}",
    )
    return [*paragraph, ""]


def _commit() -> str:
    """The repository's short HEAD, or "unknown" outside a git checkout."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def records_by_commit(all_records: Mapping[str, Mapping[str, dict]]) -> str:
    """'306 at ebaf754 (auto), 306 at 9b774c2 (...)': which code computed the cached records."""
    found: dict[str, dict[str, int]] = {}
    for records in all_records.values():
        for record in records.values():
            modes = found.setdefault(record.get("commit", "an unrecorded commit"), {})
            modes[record["mode"]] = modes.get(record["mode"], 0) + 1
    return "; ".join(
        f"{sum(modes.values())} at {commit} ({', '.join(sorted(modes))})"
        for commit, modes in sorted(found.items())
    )


def header_lines(seconds: float, command: str, records: str = "") -> list[str]:
    """Machine, commit and command of this run (``records``: see :func:`records_by_commit`)."""
    import torch

    return render(
        "scale/header.md",
        command=command,
        cpu_minutes=f"{seconds / 60:.0f}",
        machine=platform.processor() or platform.machine(),
        cores=os.cpu_count(),
        python=platform.python_version(),
        numpy=np.__version__,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        commit=_commit(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        records=render("scale/records.md", records=records)[0] if records else "",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=[*SHIPPED, *BASELINES])
    parser.add_argument("--quick", action="store_true", help="two diameters, 2 real maps")
    parser.add_argument("--real-dir", type=Path, default=results.REAL_DIR)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results_scale.md")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    unknown = set(args.methods) - set(SHIPPED) - set(BASELINES)
    if unknown:
        parser.error(f"--methods: unknown {sorted(unknown)}; choose from {SHIPPED + BASELINES}")
    if not args.report_only:
        cases = sweep_cases(args.real_dir, quick=args.quick)
        for method in args.methods:
            run_method(method, cases, cache=args.cache_dir / f"{method}.json")
    fingerprint = estimate_fingerprint()  # stale automatic-size records are not reported
    all_records = {
        path.stem: current_records(_load_cache(path), fingerprint)
        for path in sorted(args.cache_dir.glob("*.json"))
    }
    seconds = sum(r["cpu_s"] for records in all_records.values() for r in records.values())
    command = "python benchmarks/bench_scale.py" + (" --quick" if args.quick else "")
    header = header_lines(seconds, command, records_by_commit(all_records))
    text = report(all_records, header=header)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
