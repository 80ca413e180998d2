"""Launch (or resume) a long DM-QPMNet training run, one flushed progress line per epoch.

Run it again with the same ``--out`` and it resumes from ``<out>/last/`` (the same config is
read back from ``<out>/train_config.json`` unless ``--config`` or options are given). When the
run ends, the model card of ``<out>/best/`` is rewritten with the full history.

Examples
--------
A phase-only model for 8 hours on the simulator, in the background::

    nohup .venv/bin/python scripts/train.py --out runs/phase-only --inputs phase \
        --minutes 480 >> runs/phase-only.log 2>&1 &

The fast variant (``dmqpm-fast``): a strided stem, so the paper's H/4 fusion is stage 1::

    .venv/bin/python scripts/train.py --out runs/dmqpm-fast --stem-stride 2 --fusion-stage 1 \
        --features 16 32 64 128 256 --heads 2 --minutes 60

The default DM-QPMNet (MHA fusion at stage 2) from a JSON config::

    .venv/bin/python scripts/train.py --out runs/dmqpm --config my_config.json

Time a few iterations of the default config (nothing is saved)::

    .venv/bin/python scripts/train.py --measure 10 --patch 256 --batch 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without installing


def _parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="run folder (last/, best/, train_config.json)")
    parser.add_argument("--config", type=Path, help="TrainConfig JSON (overrides the saved one)")
    parser.add_argument("--inputs", choices=("both", "angles", "phase"), help="model inputs")
    parser.add_argument("--fusion", choices=("early", "concat", "mha", "bidirectional-mha"))
    parser.add_argument("--fusion-stage", type=int, choices=(1, 2, 3))
    parser.add_argument("--features", type=int, nargs="+", help="channels per stage")
    parser.add_argument(
        "--stem-stride",
        type=int,
        choices=(1, 2),
        help="stride of stage 0: 2 runs every stage at half resolution (a strided stem)",
    )
    parser.add_argument("--heads", type=int, help="attention heads of the fusion")
    parser.add_argument("--base", help="checkpoint folder or model name to fine-tune from")
    parser.add_argument("--folders", nargs="+", default=None, help="folders with *_labels.tif")
    parser.add_argument("--no-simulator", action="store_true", help="train on folders only")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--iterations", type=int, help="iterations per epoch")
    parser.add_argument("--minutes", type=float, help="wall-time budget of the whole run")
    parser.add_argument("--patch", type=int, help="square patch size")
    parser.add_argument("--batch", type=int, help="batch size")
    parser.add_argument("--lr", type=float, help="initial learning rate")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--workers", type=int, help="DataLoader workers")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    parser.add_argument("--title", help="model card heading")
    parser.add_argument("--measure", type=int, metavar="N", help="time N iterations and exit")
    return parser.parse_args(argv)


def _model_config(args, base):
    from napari_dmqpm.model import ModelConfig

    changes = {
        key: value
        for key, value in (
            ("inputs", args.inputs),
            ("fusion", "early" if args.inputs in ("angles", "phase") else args.fusion),
            ("fusion_stage", args.fusion_stage),
            ("features", tuple(args.features) if args.features else None),
            ("n_heads", args.heads),
        )
        if value is not None
    }
    n_stages = len(changes.get("features", (base or ModelConfig()).features))
    if args.stem_stride is not None or n_stages != len((base or ModelConfig()).strides):
        stem = args.stem_stride or (base or ModelConfig()).strides[0]
        changes["strides"] = (stem,) + (2,) * (n_stages - 1)
    if not changes:
        return base
    values = (base or ModelConfig()).to_dict()
    values.pop("normalization", None)  # estimated on the training data
    values.update(changes)
    return ModelConfig.from_dict(values)


def build_config(args):
    """The TrainConfig: the saved one or ``--config``, with the command-line options applied."""
    from napari_dmqpm.training import TrainConfig

    saved = args.out / "train_config.json" if args.out else None
    if args.config:
        config = TrainConfig.load(args.config)
    elif saved is not None and saved.is_file():
        config = TrainConfig.load(saved)
    else:
        config = TrainConfig()
    options = {
        "epochs": args.epochs,
        "iterations_per_epoch": args.iterations,
        "minutes": args.minutes,
        "patch_size": args.patch,
        "batch_size": args.batch,
        "learning_rate": args.lr,
        "seed": args.seed,
        "device": args.device,
        "num_workers": args.workers,
        "base_checkpoint": args.base,
        "folders": tuple(args.folders) if args.folders else None,
    }
    changes = {k: v for k, v in options.items() if v is not None}
    if args.no_simulator:
        changes["simulator"] = None
    if args.base is None:
        changes["model"] = _model_config(args, config.model)
    else:
        changes["model"] = None
    if args.out:
        changes["checkpoint_dir"] = str(args.out)
    return config.replace(**changes)


def measure(config, n: int) -> None:
    """Time ``n`` training iterations after 2 warm-up ones: data and optimizer step apart.

    On a shared machine wall times vary; the CPU time the process uses per iteration does not,
    and CPU time / threads estimates the wall time on an otherwise idle machine.
    """
    import torch

    from napari_dmqpm.model import resolve_device
    from napari_dmqpm.training.loop import _Trainer
    from napari_dmqpm.training.setup import build_data

    with tempfile.TemporaryDirectory() as folder:
        config = config.replace(checkpoint_dir=folder, iterations_per_epoch=n + 2)
        device = resolve_device(config.device)
        trainer = _Trainer(config, build_data(config), device)
        batches = iter(trainer.loader(1))
        data_s, step_s, cpu_s = [], [], []
        for index in range(n + 2):
            start, cpu = time.perf_counter(), time.process_time()
            batch = next(batches)
            middle = time.perf_counter()
            trainer.step(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if index >= 2:
                data_s.append(middle - start)
                step_s.append(time.perf_counter() - middle)
                cpu_s.append(time.process_time() - cpu)
    median = sorted(d + s for d, s in zip(data_s, step_s, strict=True))[n // 2]
    cpu = sorted(cpu_s)[n // 2]
    print(
        f"{trainer.model.config.inputs}/{trainer.model.config.fusion} "
        f"features {list(trainer.model.config.features)} "
        f"({trainer.model.n_parameters:,} parameters) patch {list(config.patch_size)} batch "
        f"{config.batch_size} on {device} ({torch.get_num_threads()} threads), {n} iterations: "
        f"wall median {median:.2f} s/it (data {sorted(data_s)[n // 2]:.2f}), "
        f"CPU {cpu:.2f} core-s/it -> about {torch.get_num_threads() / cpu:.2f} it/s "
        "on an otherwise idle machine",
        flush=True,
    )


def main(argv=None) -> int:
    args = _parse(argv)
    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    config = build_config(args)
    if args.measure:
        measure(config, args.measure)
        return 0
    if args.out is None:
        print("train.py: error: --out is required", file=sys.stderr)
        return 2
    from napari_dmqpm.training import iter_training, read_history, write_model_card

    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} run {args.out}", flush=True)
    print(f"# config {json.dumps(config.to_dict(), separators=(',', ':'))}", flush=True)
    for report in iter_training(config):
        print(report.format(), flush=True)
    history = read_history(args.out)
    if (args.out / "best").is_dir() and history:
        write_model_card(args.out / "best", title=args.title or args.out.name)
    print(f"# done: best epoch {history[-1]['best_epoch'] if history else '-'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
