"""Generated detection cases, ``(tag, stack, reference)``, from the dev kit's two generators:
what ``benchmarks/detection.py``, ``benchmarks/candidate_scoring.py`` and the candidate
scorer's training score or learn from.

* ``landscape_cases``: ``canopywatch_dev.landscapes``; evaluation: every named type at the
  evaluation seeds (500000 + 17 n); training: ``randomized_config`` (every knob drawn at
  random) at seeds from ``TRAINING_SEED_BASE``, below the evaluation range;
* ``simulator_cases``: ``canopywatch_dev.simulate`` through every scenario type, held-out
  seeds, or training seeds.
"""

from __future__ import annotations

from collections.abc import Iterator

from canopywatch.detect.evaluate import ReferenceData
from canopywatch.detect.observations import ObservationStack

Case = tuple[str, ObservationStack, ReferenceData]
TRAINING_SEED_BASE = 1000  # randomized landscapes; the evaluation seeds start at 500000


def landscape_cases(count: int, size: int, *, train: bool = False) -> Iterator[Case]:
    """``count`` seeds of every named type, or (``train``) ``count`` randomized landscapes."""
    from canopywatch_dev.landscapes import LANDSCAPE_TYPES, LandscapeConfig, generate
    from canopywatch_dev.landscapes.config import randomized_config

    if train:
        for number in range(count):
            landscape = generate(randomized_config(TRAINING_SEED_BASE + number, size_px=size))
            yield "landscapes/randomized", landscape.stack(), landscape.reference()
        return
    for kind in LANDSCAPE_TYPES:
        for number in range(count):
            config = LandscapeConfig(seed=500000 + 17 * number, kind=kind, size_px=size)
            landscape = generate(config)
            yield f"landscapes/{kind}", landscape.stack(), landscape.reference()


def simulator_cases(count: int, size: int, *, train: bool = False) -> Iterator[Case]:
    """``count`` held-out seeds of every scenario type, or (``train``) training seeds."""
    from canopywatch_dev.detection.reference import SimulationSource, reference_from_simulation
    from canopywatch_dev.detection.scenarios import scenarios

    for scenario in scenarios(None, count, held_out=not train, size_px=size):
        simulation = scenario.simulate()
        stack = SimulationSource(simulation).read()
        yield f"simulator/{scenario.kind}", stack, reference_from_simulation(simulation)
