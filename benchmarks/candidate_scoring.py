"""Does the XGBoost candidate scorer rank alerts better than the statistical confidence, on
a generator it never saw?

    python benchmarks/candidate_scoring.py [--quick] [--json OUT]

Candidates are the harmonic detector's active alert polygons (``detect_area`` without a
scorer), labelled by the date-aware evaluation. For each pair of training and test sets the
table gives the area under the ROC curve (true against false alerts) of the scorer trained
there and of the detector's own statistical confidence on the same polygons, and their
ratio. Leave-one-generator-out rows are the honest figure; the same-generator rows show how
much a figure on the training generator flatters. The shipped model
(``include/canopywatch/detect/candidate_model``) is trained on both generators' training
sets and scored on both evaluation sets.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.stats import rankdata

from canopywatch.detect.candidates import load_scorer
from canopywatch_dev.detection.candidate_training import Candidates, collect, train_scorer
from canopywatch_dev.detection.cases import landscape_cases, simulator_cases

console = Console(width=160)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count half); NaN without both classes."""
    labels = np.asarray(labels)
    n_true, n_false = int((labels == 1).sum()), int((labels == 0).sum())
    if not n_true or not n_false:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[labels == 1].sum() - n_true * (n_true + 1) / 2) / (n_true * n_false))


def row(train: str, test: str, data: Candidates, predicted: np.ndarray) -> dict[str, Any]:
    model_auc, stat_auc = auc(data.labels, predicted), auc(data.labels, data.statistical)
    return {
        "trained_on": train,
        "tested_on": test,
        "candidates": len(data),
        "false": int((data.labels == 0).sum()),
        "auc_scorer": round(model_auc, 3),
        "auc_statistical": round(stat_auc, 3),
        "ratio": round(model_auc / stat_auc, 3) if stat_auc > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and smaller series")
    parser.add_argument("--size", type=int, default=None, help="grid size (px)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    size = args.size or (64 if args.quick else 96)
    n_train_l, n_train_s, n_eval_l, n_eval_s = (12, 2, 1, 1) if args.quick else (60, 10, 4, 5)
    began = time.perf_counter()
    with console.status("generating and detecting") as status:

        def note(message: str) -> None:
            status.update(message)

        sets = {
            "landscapes train": collect(landscape_cases(n_train_l, size, train=True), note),
            "simulator train": collect(simulator_cases(n_train_s, size, train=True), note),
            "landscapes eval": collect(landscape_cases(n_eval_l, size), note),
            "simulator eval": collect(simulator_cases(n_eval_s, size), note),
        }
    rows = []
    for train, test in (
        ("landscapes", "simulator"),
        ("simulator", "landscapes"),
        ("landscapes", "landscapes"),
        ("simulator", "simulator"),
    ):
        model = train_scorer(sets[f"{train} train"])
        data = sets[f"{test} eval"]
        rows.append(row(train, test, data, model.predict(data.matrix)))
    shipped = load_scorer()
    for test in ("landscapes", "simulator"):
        data = sets[f"{test} eval"]
        rows.append(row(f"shipped ({shipped.version})", test, data, shipped.predict(data.matrix)))

    table = Table(title=f"candidate alerts, {size} px, AUC true vs false (higher is better)")
    for column in (
        "trained on",
        "tested on",
        "candidates",
        "false",
        "AUC scorer",
        "AUC statistical",
        "ratio",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(*(str(r[k]) for k in ("trained_on", "tested_on", "candidates", "false",
                                            "auc_scorer", "auc_statistical", "ratio")))  # fmt: skip
    console.print(table)
    console.print(f"{time.perf_counter() - began:.0f} s")
    if args.json is not None:
        sizes = {name: len(data) for name, data in sets.items()}
        args.json.write_text(json.dumps({"size_px": size, "sets": sizes, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
