"""Training and held-out scenarios from the simulator, over many seeds and hard cases.

Scenario types are ``SimulationConfig`` knobs. The simulator cannot express selective
logging / degradation (a clearing always turns forest pixels into slash or bare soil), so
there is no such type; regrowth and burned clearings are event kinds every scene holds
(each scene has at least one of each deforestation kind), scored per kind by
``evaluate``. Training seeds and held-out seeds never overlap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from canopywatch_dev.simulate import Simulation, SimulationConfig, simulate

SCENARIO_TYPES: dict[str, dict[str, Any]] = {
    "typical": {},
    "persistent_cloud": {"cloudiness": 1.8},
    "haze": {"haziness": 4.0},
    "small_clearings": {"min_clearing_ha": 0.1, "max_clearing_ha": 0.6},
    "agriculture": {
        "forest_share": 0.45,
        "cropland_share": 0.30,
        "pasture_drying_per_year": 3,
        "floods_per_year": 2,
    },
    # planted stands (eucalyptus / pine) with rotation clear-cuts and thinnings that are
    # not deforestation, next to natural forest with its clearings
    "plantations": {"forest_share": 0.40, "plantation_share": 0.25},
}
TRAIN_SEED_BASE = 1000
HELDOUT_SEED_BASE = 900000


@dataclass(frozen=True)
class Scenario:
    kind: str
    seed: int
    size_px: int = 160
    n_clearings: int = 12
    start: dt.date = dt.date(2023, 1, 1)
    end: dt.date = dt.date(2024, 12, 31)
    knobs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.seed}"

    def config(self) -> SimulationConfig:
        settings: dict[str, Any] = {
            "min_clearing_ha": 0.1,
            "max_clearing_ha": 6.0,
            **SCENARIO_TYPES[self.kind],
            **self.knobs,
        }
        return SimulationConfig(
            seed=self.seed,
            width=self.size_px,
            height=self.size_px,
            start=self.start,
            end=self.end,
            n_clearings=self.n_clearings,
            **settings,
        )

    def simulate(self) -> Simulation:
        return simulate(self.config())


def scenarios(
    kinds: Iterable[str] | None,
    seeds_per_kind: int,
    *,
    held_out: bool,
    size_px: int = 160,
    n_clearings: int = 12,
    start: dt.date = dt.date(2023, 1, 1),
    end: dt.date = dt.date(2024, 12, 31),
) -> list[Scenario]:
    chosen: Sequence[str] = list(kinds) if kinds is not None else list(SCENARIO_TYPES)
    unknown = [kind for kind in chosen if kind not in SCENARIO_TYPES]
    if unknown:
        raise ValueError(f"unknown scenario types {unknown}; known: {', '.join(SCENARIO_TYPES)}")
    base = HELDOUT_SEED_BASE if held_out else TRAIN_SEED_BASE
    return [
        Scenario(
            kind,
            base + 100 * number + replica,
            size_px=size_px,
            n_clearings=n_clearings,
            start=start,
            end=end,
        )
        for number, kind in enumerate(chosen)
        for replica in range(seeds_per_kind)
    ]
