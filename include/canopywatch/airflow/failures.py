"""Failing a task at once, without retries, when retrying cannot help."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bad_input_fails_at_once() -> Iterator[None]:
    """A ValueError from the library (bad bbox, range, function) fails the task, no retries."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except ValueError as exc:
        raise AirflowFailException(f"invalid parameters: {exc}") from exc


@contextmanager
def refused_credentials_fail_at_once() -> Iterator[None]:
    """The Copernicus Data Space refusing the credentials fails the task, no retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from canopywatch.sources.copernicus import is_credentials_error

    try:
        yield
    except Exception as exc:
        if is_credentials_error(exc):
            raise AirflowFailException(f"Copernicus Data Space refused the request: {exc}") from exc
        raise
