"""Scene files in MinIO/S3 as the API uses them: presigned URLs, GDAL access, header facts.

Asset hrefs are presigned GET URLs (``PRESIGN_S``), so a STAC client opens them without
credentials; rasters are read by GDAL over ``/vsis3/`` with the settings' keys.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlparse

import rasterio
from rasterio.session import AWSSession

from canopywatch.catalog.stac import RasterFacts, raster_facts
from canopywatch.settings import Settings
from canopywatch.storage.objects import PRESIGN_S, presigned_get, s3_client

_FACTS_CACHE = 4096


class SceneFiles:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = s3_client(settings)
        self._facts: OrderedDict[tuple[str, str], RasterFacts] = OrderedDict()
        self._lock = threading.Lock()

    def presigned(self, bucket: str, key: str) -> str:
        return presigned_get(self.client, bucket, key, PRESIGN_S)

    def gdal_env(self) -> AbstractContextManager[Any]:
        """A rasterio environment that reads ``s3://`` paths from the settings' endpoint."""
        endpoint = urlparse(self.settings.s3_endpoint)
        session = AWSSession(
            aws_access_key_id=self.settings.s3_access_key or None,
            aws_secret_access_key=self.settings.s3_secret_key or None,
            region_name="us-east-1",
            endpoint_url=endpoint.netloc,
        )
        env: AbstractContextManager[Any] = rasterio.Env(
            session=session,
            AWS_HTTPS="YES" if endpoint.scheme == "https" else "NO",
            AWS_VIRTUAL_HOSTING=False,
            GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR",
            CPL_VSIL_CURL_ALLOWED_EXTENSIONS=".tif",
        )
        return env

    def facts(self, bucket: str, key: str) -> RasterFacts:
        """The header facts of ``s3://bucket/key`` (read once, then remembered)."""
        with self._lock:
            cached = self._facts.get((bucket, key))
        if cached is not None:
            return cached
        with self.gdal_env(), rasterio.open(f"s3://{bucket}/{key}") as dataset:
            found = raster_facts(dataset)
        with self._lock:
            self._facts[(bucket, key)] = found
            while len(self._facts) > _FACTS_CACHE:
                self._facts.popitem(last=False)
        return found
