"""deforestation_monitor refuses a run over CANOPYWATCH_PU_BUDGET before spending anything,
and says what the run would have cost (real Airflow, Kafka, MinIO, the local CDSE endpoint)."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import CONF, AirflowEnv, airflow_dags_test

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_a_run_over_the_budget_fails_at_estimate_cost_and_spends_nothing(airflow_env, cdse):
    env = AirflowEnv(airflow_env.settings, {**airflow_env.variables, "CANOPYWATCH_PU_BUDGET": "1"})
    before = cdse.emulator.stats.count("process")
    # ndvi: keys of their own, so scenes other tests of the session stored cannot make it free
    result = airflow_dags_test(env, {**CONF, "aoi_name": "it-over-budget", "function": "ndvi"})
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "DagRun failed" in result.stderr, output[-4000:]
    spend = re.search(
        r"this run would spend ([\d,.]+) processing units, over the budget of 1\.0000", output
    )
    assert spend, output[-4000:]
    assert float(spend.group(1).replace(",", "")) > 1
    assert cdse.emulator.stats.count("process") == before  # no Process API request was made
    assert "[DAG TEST] starting task_id=publish_requests" not in output
