"""Detection benchmark: every method on the same held-out simulated scenarios.

    python benchmarks/detection.py [--model ml/models/s2] [--seeds 1] [--size 160]

Rows: NDVI-drop threshold, statistical baseline, BFAST-Monitor-style, XGBoost. Columns:
event precision / recall / F1 (events >= 0.1 ha), pixel F1, latency median / p90 (days
from clearing to alert_date), pixel-observations per second and that rate as a share of
a plain numpy pass that reads the stack once. A second table gives event F1 per scenario
type. Without a trained model (``ml/models/s2``, made by ``dvc repro`` in ml/) a small one
is trained first on one training scene per scenario type.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from canopywatch.detect.baseline import BaselineParams
from canopywatch.detect.features import feature_names
from canopywatch.detect.model import TrainedModel, load_model, train_model
from canopywatch_dev.detection.experiments import aggregate, methods, run_methods
from canopywatch_dev.detection.scenarios import SCENARIO_TYPES, scenarios
from canopywatch_dev.detection.training import LABEL_COLUMN, scenario_feature_table

ROOT = Path(__file__).resolve().parents[1]
console = Console(width=150)


def quick_model(size: int) -> TrainedModel:
    params = BaselineParams()
    train = scenarios(None, 1, held_out=False, size_px=size)
    frame = scenario_feature_table(train, params, seed=0, progress=True)
    names = feature_names(params.indices, True)
    return train_model(
        frame[names].to_numpy(np.float32),
        frame[LABEL_COLUMN].to_numpy(),
        names,
        seed=0,
        rounds=150,
        card={
            "indices": list(params.indices),
            "training_data": {"scenarios": [s.name for s in train]},
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "ml" / "models" / "s2")
    parser.add_argument("--seeds", type=int, default=2, help="held-out seeds per scenario type")
    parser.add_argument("--size", type=int, default=160, help="scene size in pixels (10 m)")
    parser.add_argument("--types", default=",".join(SCENARIO_TYPES))
    args = parser.parse_args(argv)

    began = time.perf_counter()
    if (args.model / "model.json").is_file():
        model = load_model(args.model)
        console.print(f"model {model.version} from {args.model}")
    else:
        console.print(f"no model at {args.model}: training a small one")
        model = quick_model(args.size)
    held_out = scenarios(args.types.split(","), args.seeds, held_out=True, size_px=args.size)
    runs, numpy_seconds = run_methods(
        held_out, methods(model), progress=lambda name: console.log(f"scored {name}")
    )
    cells = sum(run.pixel_observations for run in runs) / max(1, len({r.method for r in runs}))
    numpy_rate = cells / numpy_seconds if numpy_seconds else float("nan")

    table = Table(
        title=f"Detection on {len(held_out)} held-out scenes ({args.size}x{args.size} px, "
        f"{', '.join(args.types.split(','))}); events >= 0.1 ha"
    )
    for column in (
        "method",
        "event precision",
        "event recall",
        "event F1",
        "pixel F1",
        "latency median (d)",
        "latency p90 (d)",
        "pixel-obs/s",
        "vs numpy pass",
    ):
        table.add_column(column, justify="right" if column != "method" else "left")
    by_kind = Table(title="event F1 (>= 0.1 ha) per scenario type")
    by_kind.add_column("method")
    kinds = list(dict.fromkeys(run.kind for run in runs))
    for kind in kinds:
        by_kind.add_column(kind, justify="right")
    for method in dict.fromkeys(run.method for run in runs):
        mine = [run for run in runs if run.method == method]
        scores = aggregate(mine)
        table.add_row(
            method,
            f"{scores['precision']:.3f}",
            f"{scores['recall']:.3f}",
            f"{scores['f1']:.3f}",
            f"{scores['pixel_f1']:.3f}",
            f"{scores['latency_days']['median']:.1f}",
            f"{scores['latency_days']['p90']:.1f}",
            f"{scores['pixel_obs_per_s']:,.0f}",
            f"{scores['pixel_obs_per_s'] / numpy_rate:.3f}",
        )
        by_kind.add_row(
            method,
            *(f"{aggregate([r for r in mine if r.kind == kind])['f1']:.3f}" for kind in kinds),
        )
    console.print(table)
    console.print(by_kind)
    console.print(
        f"plain numpy pass (NDVI + running minimum, stack read once): {numpy_rate:,.0f} pixel-obs/s; "
        f"total {time.perf_counter() - began:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
