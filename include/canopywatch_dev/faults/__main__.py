"""``python -m canopywatch_dev.faults [--runs N] [--seed S] [--state DIR] [--json OUT]``.

Starts a platform instance of its own (never the running one), runs the campaign, prints the
seed, the table and the canary scan. Exit 0 when nothing was lost or duplicated and no
canary leaked, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
from pathlib import Path

from canopywatch_dev.faults.driver import campaign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canopywatch_dev.faults")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None, help="replay a campaign")
    parser.add_argument("--state", type=Path, default=None, help="task logs and outputs")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.exit(2, "python -m canopywatch_dev.faults: --runs must be at least 1\n")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    state = args.state or Path(tempfile.mkdtemp(prefix="canopywatch-faults-state-"))
    results, hits = campaign(args.runs, seed, state=state)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seed": seed,
                    "runs": [
                        {
                            "index": r.index,
                            "kind": r.kind,
                            "fault": r.fault,
                            "killed": r.killed,
                            "recovery": r.recovery,
                            "lost": r.check.total.lost,
                            "duplicated": r.check.total.duplicated,
                            "scenes": r.check.expected_scenes,
                            "alerts": r.check.expected_alerts,
                        }
                        for r in results
                    ],
                    "canary_hits": hits,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    bad = hits or any(r.check.total.lost or r.check.total.duplicated for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
