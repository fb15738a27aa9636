"""``canopywatch download`` against the local CDSE endpoint over HTTP: the estimate equals
the processing units the endpoint then reports spent, files are verified and resumable."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from canopywatch.cli import main
from canopywatch.evalscripts import get_function
from canopywatch.sources.units import (
    BudgetError,
    Estimate,
    check_budget,
    input_bands,
    request_units,
)
from canopywatch_dev.cdse_emulator import Credentials, create_app, emulator_of, serve_in_thread
from canopywatch_dev.cdse_emulator import token_url as emulator_token_url
from canopywatch_dev.cdse_world import AreaSpec, World

BBOX = (-55.40, -7.10, -55.39, -7.09)  # ~110 x 110 px, one tile
ARGS = ["--bbox", "-55.40,-7.10,-55.39,-7.09", "--start", "2024-01-01", "--end", "2024-02-29"]


@pytest.fixture(scope="module")
def endpoint():
    world = World.from_specs(
        [AreaSpec("download-test", BBOX, date(2023, 12, 1), date(2024, 3, 31), seed=7)]
    )
    app = create_app(world, Credentials("dl-client", "dl-secret-value"))
    with serve_in_thread(app) as base_url:
        yield base_url, emulator_of(app), world


@pytest.fixture
def env(endpoint, monkeypatch: pytest.MonkeyPatch):
    base_url, emulator, _ = endpoint
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # http on loopback: tests only
    monkeypatch.setenv("CANOPYWATCH_SH_BASE_URL", base_url)
    monkeypatch.setenv("CANOPYWATCH_SH_TOKEN_URL", emulator_token_url(base_url))
    monkeypatch.setenv("CANOPYWATCH_CDSE_CLIENT_ID", "dl-client")
    monkeypatch.setenv("CANOPYWATCH_CDSE_CLIENT_SECRET", "dl-secret-value")
    monkeypatch.setenv("CANOPYWATCH_PU_BUDGET", "0")
    monkeypatch.setenv("COLUMNS", "80")
    emulator.stats.clear()
    return emulator


def _estimate(out: str) -> tuple[int, float, int]:
    match = re.search(
        r"estimate: (\d+) Process API request\(s\)(?: \((\d+) already stored, free\))?: "
        r"([\d,.]+) processing units",
        out,
    )
    assert match, out
    return int(match.group(1)), float(match.group(3).replace(",", "")), int(match.group(2) or 0)


def test_pu_rule_matches_the_documented_figures() -> None:
    bands = get_function("s2l2a_bands")
    assert input_bands(bands)[-1] == "dataMask"
    # a full 2500 px tile-date of the 7-band request: 55.6 PU, ~180 in the free 10,000
    assert request_units(bands, 2500, 2500) == pytest.approx(55.631, abs=1e-3)
    assert int(10_000 // request_units(bands, 2500, 2500)) == 179
    assert request_units(get_function("ndvi"), 512, 512) == pytest.approx(2 * 2 / 3)  # FLOAT32
    assert request_units(bands, 10, 10) == pytest.approx(0.01 * 7 / 3)  # area factor >= 0.01
    with pytest.raises(BudgetError, match=r"over the budget of 10\.0000"):
        check_budget(Estimate(3, 12.5), 10)
    check_budget(Estimate(3, 12.5), 0)  # 0: no limit


def test_estimate_spends_nothing_then_download_spends_exactly_the_estimate(
    env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scenes"
    assert main(["download", *ARGS, "--out", str(out), "--estimate"]) == 0
    requests, units, stored = _estimate(capsys.readouterr().out)
    assert requests > 5 and stored == 0
    assert env.stats.count("process") == 0 and env.stats.processing_units == 0
    assert not out.exists() or not any(out.rglob("*.tif"))

    assert main(["download", *ARGS, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert env.stats.count("process", 200) == requests
    # the endpoint's x-processingunits-spent, summed, is what the estimate said
    assert env.stats.processing_units == pytest.approx(units, rel=1e-4)
    files = sorted(out.rglob("raw.tif"))
    assert len(files) == requests
    assert f"{requests} downloaded" in printed
    sidecar = json.loads(files[0].with_name("raw.tif.json").read_text())
    assert sidecar["size"] == files[0].stat().st_size and len(sidecar["sha256"]) == 64
    assert not list(out.rglob("*.part"))

    # resumed: everything verified is skipped, nothing is spent
    env.stats.clear()
    assert main(["download", *ARGS, "--out", str(out), "--estimate"]) == 0
    assert _estimate(capsys.readouterr().out) == (0, 0.0, requests)
    # a damaged file (and a leftover .part) is fetched again, alone
    files[0].write_bytes(files[0].read_bytes()[:100])
    files[1].with_name("raw.tif.part").write_bytes(b"half")
    assert main(["download", *ARGS, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 downloaded" in printed and f"{requests - 1} already there" in printed
    assert env.stats.count("process") == 1
    assert env.stats.processing_units == pytest.approx(units / requests, rel=1e-4)


def test_a_run_over_the_budget_is_refused_before_spending(
    env, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANOPYWATCH_PU_BUDGET", "0.5")
    assert main(["download", *ARGS, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "over the budget of 0.5000 (CANOPYWATCH_PU_BUDGET)" in err
    assert env.stats.count("process") == 0


def test_missing_credentials_and_bad_input_are_one_line_exit_2(
    env, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = [
        ["download", *ARGS[:4], "--end", "2023-12-01", "--out", str(tmp_path)],  # reversed
        ["download", "--bbox", "1,2,3", *ARGS[2:], "--out", str(tmp_path)],
        ["download", *ARGS, "--out", str(tmp_path), "--max-cloud", "120"],
    ]
    for argv in bad:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("canopywatch: "), err
    monkeypatch.delenv("CANOPYWATCH_CDSE_CLIENT_SECRET")
    assert main(["download", *ARGS, "--out", str(tmp_path), "--estimate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CANOPYWATCH_CDSE_CLIENT_SECRET" in err
    assert "dl-secret-value" not in err
