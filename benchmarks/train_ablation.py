"""Train the rows of the ablation table (Table 2 of the paper) with one equal budget.

Every variant shares the widths, the simulator data, the seed, the augmentations and the number
of iterations (``--epochs`` x 25 iterations of batch 2 at 256²); only the fusion, its stage and the
inputs change. An equal *iteration* budget, as in the paper's equal-epoch protocol, keeps the rows
comparable when several runs share the CPU (a wall-clock budget would not). The runs go to
``<out>/<row>/`` and resume from ``<out>/<row>/last/`` when started again, so the script can be
stopped and re-run; ``benchmarks/results.py --ablation <out>`` scores them. The extra row
``nnunet-default`` trains nnU-Net's default 2D network with the same budget, for the Dice
column of ``benchmarks/bench_nnunet.py`` (which reads ``<out>/nnunet-default/best``), and the
extra row ``strided-stem`` trains the architecture of the shipped ``dmqpm-fast`` (strided stem,
fusion at H/4) with it, so bench_nnunet also compares the two at one training budget.

Examples
--------
All rows, two processes of one torch thread each (the 2-core CPU of docs/results.md)::

    python benchmarks/train_ablation.py --out ../runs/ablation --rows mha-2 early-fusion \
        phase-only concat-2 --threads 1 &
    python benchmarks/train_ablation.py --out ../runs/ablation --rows mha-1 mha-3 \
        bidirectional-mha-2 angles-only --threads 1 &
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: Widths shared by every row; also those of the shipped DM-QPMNet (docs/model.md, speed).
FEATURES = (16, 32, 64, 128, 256)

#: ``row key -> (inputs, fusion, fusion stage)``; the keys are those of ``results.row_key``.
ROWS = {
    "mha-2": ("both", "mha", 2),
    "concat-2": ("both", "concat", 2),
    "mha-1": ("both", "mha", 1),
    "mha-3": ("both", "mha", 3),
    "bidirectional-mha-2": ("both", "bidirectional-mha", 2),
    "early-fusion": ("both", "early", 2),
    "angles-only": ("angles", "early", 2),
    "phase-only": ("phase", "early", 2),
}

#: Not a row of Table 2: nnU-Net's default 2D network (32 -> 512 features, 8 stages) on the
#: same 5 inputs, heads, data and budget, for the Dice column of bench_nnunet.
NNUNET_ROW = "nnunet-default"
#: Not a row of Table 2 either: ``dmqpm-fast``'s architecture (strided stem, MHA at stage 1 =
#: H/4, 2 heads) with the same budget, for bench_nnunet's equal-budget comparison.
STRIDED_ROW = "strided-stem"
TITLES = {
    NNUNET_ROW: "nnU-Net default 2D, ablation budget",
    STRIDED_ROW: "dmqpm-fast architecture (strided stem), ablation budget",
}


def train_config(row: str, *, epochs: int, out: Path) -> dict:
    """The ``TrainConfig`` dict of one ablation row (JSON-native)."""
    from napari_dmqpm.model import HeadConfig, ModelConfig
    from napari_dmqpm.model.config import THREE_CLASS
    from napari_dmqpm.training import TrainConfig

    heads = (THREE_CLASS, HeadConfig(name="distance", kind="sigmoid", channels=("distance",)))
    if row == NNUNET_ROW:
        from napari_dmqpm.model import nnunet_default_2d_config

        model = dataclasses.replace(nnunet_default_2d_config(5, 3), heads=heads)
    elif row == STRIDED_ROW:
        model = ModelConfig(
            fusion_stage=1, features=FEATURES, strides=(2,) * len(FEATURES), n_heads=2, heads=heads
        )
    else:
        inputs, fusion, stage = ROWS[row]
        model = ModelConfig(
            inputs=inputs, fusion=fusion, fusion_stage=stage, features=FEATURES, heads=heads
        )
    config = TrainConfig(
        model=model,
        batch_size=2,
        patch_size=(256, 256),
        iterations_per_epoch=25,
        epochs=epochs,
        minutes=None,
        device="cpu",
        seed=0,
        checkpoint_dir=str(out / row),
    )
    return config.to_dict()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the runs")
    parser.add_argument("--rows", nargs="+", choices=[*sorted(ROWS), *TITLES], default=list(ROWS))
    parser.add_argument("--epochs", type=int, default=40, help="epochs of 25 iterations")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for row in args.rows:
        config_path = args.out / f"{row}.json"
        config_path.write_text(json.dumps(train_config(row, epochs=args.epochs, out=args.out)))
        command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--out", str(args.out / row)]
        command += ["--config", str(config_path), "--threads", str(args.threads)]
        command += ["--title", TITLES.get(row, f"Ablation row {row}")]
        with open(args.out / f"{row}.log", "a") as log:
            code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
        if code:
            print(f"{row}: training failed with exit code {code}, see {row}.log", file=sys.stderr)
            return code
        print(f"{row}: done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
