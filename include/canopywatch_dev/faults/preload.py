"""What the campaign's task server imports once, before it forks a process per task attempt."""
# ruff: noqa: F401

from __future__ import annotations

import confluent_kafka
import psycopg

import canopywatch.catalog.sync
import canopywatch.download
import canopywatch.export.gpkg
import canopywatch.lake.consume
import canopywatch.reconcile
import canopywatch.sources.copernicus
import canopywatch.storage.objects
import canopywatch_dev.faults.steps
