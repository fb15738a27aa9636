"""DVC stages simulate / features / train (thin: the logic lives in canopywatch.detect).

    python train.py simulate --params params.yaml --out data/scenarios.json
    python train.py features --params params.yaml --scenarios data/scenarios.json --out data/features
    python train.py train --params params.yaml --features data/features --out models

``features`` writes one Delta table with two partitions of rows: ``stack=s2`` (all bands,
indices ndvi+ndmi) and ``stack=ndvi`` (the same scenes reduced to NDVI, for index stacks).
``train`` trains one model per stack kind; each card records the Delta version it read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from canopywatch.detect.baseline import BaselineParams
from canopywatch.detect.features import feature_names, write_features
from canopywatch.detect.model import save_model, train_model
from canopywatch_dev.detection.scenarios import Scenario, scenarios
from canopywatch_dev.detection.training import LABEL_COLUMN, scenario_feature_table

STACK_KINDS: dict[str, tuple[str | None, BaselineParams]] = {
    "s2": (None, BaselineParams()),
    "ndvi": ("ndvi", BaselineParams().for_index("ndvi")),
}


def load_params(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def scenario_list(entries: list[dict[str, Any]]) -> list[Scenario]:
    return [
        Scenario(e["kind"], e["seed"], size_px=e["size_px"], n_clearings=e["n_clearings"])
        for e in entries
    ]


def simulate_stage(params: dict[str, Any], out: Path) -> None:
    config = params["scenarios"]
    common = {"size_px": config["size_px"], "n_clearings": config["n_clearings"]}
    manifest = {
        split: [
            {"kind": s.kind, "seed": s.seed, **common}
            for s in scenarios(
                config["types"], config[f"{split}_seeds_per_type"], held_out=held, **common
            )
        ]
        for split, held in (("train", False), ("heldout", True))
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(manifest, indent=2))


def features_stage(params: dict[str, Any], manifest: Path, out: Path) -> None:
    import pandas as pd

    train = scenario_list(json.loads(manifest.read_text())["train"])
    frames = []
    for kind, (index, baseline) in STACK_KINDS.items():
        frame = scenario_feature_table(
            train,
            baseline,
            index=index,
            seed=params["seed"],
            stable_fraction=params["features"]["stable_fraction"],
            hard_fraction=params["features"]["hard_fraction"],
        )
        frame.insert(0, "stack", kind)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    version = write_features(table, out.resolve())
    print(f"features: {len(table)} rows -> {out} (Delta version {version})")


def train_stage(params: dict[str, Any], features: Path, out: Path) -> None:
    from deltalake import DeltaTable

    from canopywatch.detect.features import read_features

    table_version = int(DeltaTable(str(features.resolve())).version())
    frame = read_features(features.resolve(), table_version)
    settings = params["train"]
    rng = np.random.default_rng(params["seed"])
    for kind, (index, baseline) in STACK_KINDS.items():
        rows = frame[frame["stack"] == kind].sort_values(
            ["scenario", "day", "pixel"], kind="stable"
        )
        names = feature_names(baseline.indices, index is None)
        scenario_names = sorted(rows["scenario"].unique())
        n_val = max(1, round(settings["validation_share"] * len(scenario_names)))
        validation = set(rng.permutation(scenario_names)[:n_val].tolist())
        is_val = rows["scenario"].isin(validation).to_numpy()
        x = rows[names].to_numpy(np.float32)
        y = rows[LABEL_COLUMN].to_numpy()
        xgb_params = {"max_depth": settings["max_depth"], "eta": settings["eta"]}
        probe = train_model(
            x[~is_val],
            y[~is_val],
            names,
            seed=params["seed"],
            rounds=settings["rounds"],
            params=xgb_params,
        )
        metrics = validation_metrics(probe.predict(x[is_val]), y[is_val])
        model = train_model(
            x,
            y,
            names,
            seed=params["seed"],
            rounds=settings["rounds"],
            params=xgb_params,
            card={
                "indices": list(baseline.indices),
                "stack_kind": kind,
                "threshold": 0.5,
                "training_data": {
                    "source": "canopywatch simulator truth",
                    "delta_table": "ml/data/features",
                    "delta_version": table_version,
                    "partition": f"stack={kind}",
                    "scenarios": scenario_names,
                },
                "metrics": {"validation_scenarios": sorted(validation), **metrics},
            },
        )
        save_model(model, out / kind)
        print(f"model {kind}: {model.version} {metrics}")


def validation_metrics(probability: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    predicted = probability >= 0.5
    tp = float((predicted & (labels == 1)).sum())
    fp = float((predicted & (labels == 0)).sum())
    fn = float((~predicted & (labels == 1)).sum())
    eps = 1e-7
    clipped = np.clip(probability, eps, 1 - eps)
    logloss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
    return {
        "row_precision": tp / (tp + fp) if tp + fp else 1.0,
        "row_recall": tp / (tp + fn) if tp + fn else 1.0,
        "logloss": logloss,
        "rows": float(labels.size),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stage", choices=("simulate", "features", "train"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--scenarios", type=Path, default=Path("data/scenarios.json"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params(args.params)
    if args.stage == "simulate":
        simulate_stage(params, args.out)
    elif args.stage == "features":
        features_stage(params, args.scenarios, args.out)
    else:
        train_stage(params, args.features, args.out)


if __name__ == "__main__":
    main()
