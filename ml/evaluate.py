"""DVC stage evaluate: every method on the held-out scenarios -> metrics.json.

python evaluate.py --params params.yaml --scenarios data/scenarios.json --models models --out metrics.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from train import load_params, scenario_list

from canopywatch.detect.alerts import AlertPolicy
from canopywatch.detect.model import load_model
from canopywatch_dev.detection.cli import print_report
from canopywatch_dev.detection.experiments import method_report, methods, run_methods


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--scenarios", type=Path, default=Path("data/scenarios.json"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=Path("metrics.json"))
    args = parser.parse_args()
    params = load_params(args.params)
    held_out = scenario_list(json.loads(args.scenarios.read_text())["heldout"])
    model = load_model(args.models / "s2")
    policy = AlertPolicy(mmu_ha=params["evaluate"]["mmu_ha"])
    runs, _ = run_methods(held_out, methods(model), policy=policy)
    report = method_report(runs)
    print_report(report)
    args.out.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
