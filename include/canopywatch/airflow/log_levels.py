"""Library noise silenced at its logger, for every Airflow process that runs our tasks.

Two mechanisms, because Airflow's ``[logging] namespace_levels`` filters only its structlog
loggers (task and hook loggers) and not plain ``logging`` loggers:

- a deployment sets ``AIRFLOW__LOGGING__NAMESPACE_LEVELS`` to :func:`namespace_levels`
  (the local platform does);
- :func:`quiet_library_loggers` sets the levels on the stdlib loggers; ``dag_config`` calls
  it, so it runs wherever a DAG file is parsed, which includes every task process before
  its task runs.

So a successful task logs no warning or error that is not about the task:

- the secrets masker's "Skipping masking for a secret as it's too short" (a warning on
  every task that reads a connection with a short extra value such as ``path``);
- matplotlib's font-manager messages (quicklooks import matplotlib);
- the Kafka hooks' "Producer <cimpl.Producer ...>" lines;
- Cosmos' OpenLineage notice and its "no converter for the on-run-start operation" warning,
  printed whenever the ``scene_curation`` DAG file is parsed.

Producer warnings about consumer-only properties are avoided at the source: producers use
their own connection (``ids.KAFKA_PRODUCER_CONN``) that carries no consumer settings.
"""

from __future__ import annotations

QUIET_LOGGERS: dict[str, str] = {
    "airflow.sdk._shared.secrets_masker.secrets_masker": "ERROR",
    "airflow._shared.secrets_masker.secrets_masker": "ERROR",
    "matplotlib": "WARNING",
    "matplotlib.font_manager": "ERROR",
    "airflow.task.hooks.airflow.providers.apache.kafka.hooks": "WARNING",
    # Cosmos at every parse of scene_curation: the OpenLineage notice, the on-run-start hook
    "cosmos.operators.local": "ERROR",
    "cosmos.airflow.graph": "ERROR",
}


def quiet_library_loggers() -> None:
    """Raise the level of the noisy stdlib loggers (idempotent, cheap)."""
    import logging

    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def namespace_levels(extra: str = "") -> str:
    """The ``[logging] namespace_levels`` value: our quiet loggers, then ``extra`` pairs."""
    pairs = " ".join(f"{name}={level}" for name, level in QUIET_LOGGERS.items())
    return f"{pairs} {extra}".strip()
