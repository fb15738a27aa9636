"""``python -m canopywatch_dev.detection evaluate``: every method on held-out scenarios;
``train-candidates``: the shipped candidate scorer (``canopywatch.detect.candidates``).

    python -m canopywatch_dev.detection evaluate [--scenarios typical,haze] [--seeds 2] \\
        [--size 160] [--model ml/models/s2] [--out metrics.json]
    python -m canopywatch_dev.detection train-candidates [--landscapes 60] [--simulator 10] \\
        [--size 96] [--out include/canopywatch/detect/candidate_model]

Scoring against user labels is the product's ``canopywatch evaluate --alerts A --labels L``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from canopywatch.detect.commands import EXIT_USAGE, run

console = Console(stderr=True)


def evaluate_command(args: argparse.Namespace) -> int:
    from canopywatch.detect.model import load_model
    from canopywatch_dev.detection.experiments import method_report, methods, run_methods
    from canopywatch_dev.detection.scenarios import scenarios

    kinds = args.scenarios.split(",") if args.scenarios else None
    if args.seeds < 1:
        raise ValueError("--seeds must be >= 1")
    held_out = scenarios(kinds, args.seeds, held_out=True, size_px=args.size)
    model = load_model(args.model) if args.model is not None else None
    runs, _ = run_methods(held_out, methods(model), progress=lambda name: console.log(name))
    report = method_report(runs)
    print_report(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str))
    return 0


def train_candidates_command(args: argparse.Namespace) -> int:
    from canopywatch_dev.detection.candidate_training import train_shipped

    if args.landscapes < 1 or args.simulator < 1 or args.size < 32:
        raise ValueError("--landscapes and --simulator must be >= 1, --size >= 32")
    model = train_shipped(
        args.landscapes, args.simulator, args.size, args.out, progress=lambda m: console.log(m)
    )
    card = model.card
    console.log(
        f"{card['version']}: {card['training_true']} true and {card['training_false']} false "
        f"candidates -> {args.out}"
    )
    return 0


def print_report(report: dict[str, Any]) -> None:
    table = Table(title="held-out scenarios (events >= 0.1 ha)")
    for column in (
        "method",
        "scenario type",
        "precision",
        "recall",
        "F1",
        "pixel F1",
        "latency d (median/p90)",
        "false: forest/other change",
    ):
        table.add_column(column)
    for method, parts in report.items():
        rows = {"all": parts["all"], **parts["by_scenario_type"]}
        for kind, scores in rows.items():
            latency = scores["latency_days"]
            table.add_row(
                method,
                kind,
                f"{scores['precision']:.3f}",
                f"{scores['recall']:.3f}",
                f"{scores['f1']:.3f}",
                f"{scores['pixel_f1']:.3f}",
                f"{latency['median']:.0f}/{latency['p90']:.0f}",
                f"{scores['false_stable_forest']}/{scores['false_other_change']}",
            )
    Console().print(table)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"canopywatch_dev.detection: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m canopywatch_dev.detection")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    evaluate = commands.add_parser("evaluate", help="every method on held-out scenarios")
    evaluate.add_argument("--scenarios", default=None, help="comma-separated scenario types")
    evaluate.add_argument("--seeds", type=int, default=2, help="held-out seeds per type")
    evaluate.add_argument("--size", type=int, default=160, help="scenario grid size (px)")
    evaluate.add_argument("--model", type=Path, default=None, help="model folder (else none)")
    evaluate.add_argument("--out", type=Path, default=None, help="metrics JSON")
    evaluate.set_defaults(handler=evaluate_command)
    from canopywatch.detect.candidates import MODEL_DIR

    train = commands.add_parser("train-candidates", help="train the shipped candidate scorer")
    train.add_argument("--landscapes", type=int, default=60, help="randomized landscapes")
    train.add_argument("--simulator", type=int, default=10, help="seeds per simulator type")
    train.add_argument("--size", type=int, default=96, help="grid size (px)")
    train.add_argument("--out", type=Path, default=MODEL_DIR, help="model folder")
    train.set_defaults(handler=train_candidates_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args.handler, args)
