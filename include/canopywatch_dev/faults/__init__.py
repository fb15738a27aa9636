"""The fault campaign: monitoring and weekly runs on a platform instance of their own, one
service or task killed with ``kill -9`` per run, recovered as documented, then counted.

- ``instance``: a separate platform (own home under a temporary folder, own free ports,
  planted canary credentials), started and torn down by the campaign;
- ``steps``: the library steps the DAG tasks call, one subprocess per task attempt;
- ``driver``: the runs, the faults and their recovery (task retries, a re-run);
- ``checker``: scenes in MinIO, Delta and PostGIS, alerts in Kafka, Delta and PostGIS:
  lost and duplicated; and the canary scan.

``python -m canopywatch_dev.faults --runs N [--seed S]`` runs a campaign and prints its table.
"""
