"""Quiet, useful logs: a successful monitoring run logs no ERROR line, none of the library
noise (short-secret masking, font manager, producer config warnings), and says how far the
long steps got."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.service, pytest.mark.slow]

# structlog's console lines carry the level in brackets; librdkafka writes "%<level>|" lines
ERROR_LINE = re.compile(r"\[(error|critical)\s*\]|^%[0-3]\|| ERROR |\bTraceback\b", re.I)
NOISE = (
    "Skipping masking for a secret",
    "CONFWARN",
    "is a consumer property and will be ignored",
    "font_manager",
    "Matplotlib is building the font cache",
    "Producer <cimpl.Producer",
)


def test_a_successful_monitoring_run_logs_no_error_and_no_noise(first_run) -> None:
    _env, result, _spent = first_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = (result.stdout + "\n" + result.stderr).splitlines()
    errors = [line for line in lines if ERROR_LINE.search(line)]
    assert errors == [], "\n".join(errors[:20])
    noise = [line for line in lines if any(n in line for n in NOISE)]
    assert noise == [], "\n".join(noise[:20])
    text = "\n".join(lines)
    # the long steps say where they are: per tile search, per batch download, the cost estimate
    assert re.search(r"catalog search .* found \d+ acquisition day", text)
    assert re.search(r"batch of \d+ request\(s\): \d+ downloaded", text)
    assert "cost estimate: " in text and "processing units" in text
