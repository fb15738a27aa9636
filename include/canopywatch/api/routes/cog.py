"""XYZ tiles of a scene's COG, read from MinIO with rio-tiler:
``/cog/tiles/{scene_id}/{z}/{x}/{y}.png?style=truecolor|ndvi``.

``truecolor``: B04 B03 B02 stretched from DN 0..``TRUECOLOR_MAX`` (reflectance 0..0.3);
``ndvi``: (B08 - B04) / (B08 + B04) from -0.2 to 0.9 on a red-yellow-green ramp. Pixels
outside the scene or without data are transparent; a tile beside the scene is 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from rio_tiler.colormap import cmap
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader

from canopywatch.api.auth import require_read
from canopywatch.api.db import columns, connection
from canopywatch.api.objects import SceneFiles
from canopywatch.api.routes.tiles import check_tile
from canopywatch.catalog.stac import cog_band_names

router = APIRouter(tags=["cog"], dependencies=[Depends(require_read)])
TRUECOLOR_MAX = 3000
NDVI_RANGE = (-0.2, 0.9)
Style = Literal["truecolor", "ndvi"]


def _scene(conn: psycopg.Connection[Any], scene_id: str) -> tuple[str, str, list[str]]:
    if not columns(conn, "scenes"):
        raise HTTPException(404, f"no scene {scene_id!r}")
    with conn.cursor() as cur:
        cur.execute("SELECT bucket, cog_key, bands FROM scenes WHERE scene_id = %s", (scene_id,))
        row = cur.fetchone()
    if row is None:
        raise HTTPException(404, f"no scene {scene_id!r}")
    if not row[1]:
        raise HTTPException(404, f"scene {scene_id!r} has no COG yet")
    return str(row[0]), str(row[1]), cog_band_names(row[2])


def _index(names: list[str], band: str, scene_id: str) -> int:
    if band not in names:
        raise HTTPException(
            400, f"scene {scene_id!r} has no band {band} (bands: {', '.join(names)})"
        )
    return names.index(band) + 1


@router.get("/cog/tiles/{scene_id}/{z}/{x}/{y}.png", response_class=Response)
def cog_tile(
    scene_id: str,
    z: int,
    x: int,
    y: int,
    request: Request,
    conn: Annotated[psycopg.Connection[Any], Depends(connection)],
    style: Annotated[Style, Query()] = "truecolor",
) -> Response:
    check_tile(z, x, y)
    bucket, key, names = _scene(conn, scene_id)
    conn.close()  # the tile read may take a while; the connection is not needed for it
    files: SceneFiles = request.app.state.scene_files
    red, green, blue = (_index(names, b, scene_id) for b in ("B04", "B03", "B02"))
    nir = _index(names, "B08", scene_id)
    try:
        with files.gdal_env(), Reader(f"s3://{bucket}/{key}") as cog:
            if style == "ndvi":
                image = cog.tile(x, y, z, expression=f"(b{nir}-b{red})/(b{nir}+b{red})")
                image.rescale(in_range=(NDVI_RANGE,))
                content = image.render(img_format="PNG", colormap=cmap.get("rdylgn"))
            else:
                image = cog.tile(x, y, z, indexes=(red, green, blue))
                image.rescale(in_range=((0, TRUECOLOR_MAX),) * 3)
                content = image.render(img_format="PNG")
    except TileOutsideBounds as exc:
        raise HTTPException(404, f"tile {z}/{x}/{y} is outside scene {scene_id!r}") from exc
    return Response(content, media_type="image/png", headers={"Cache-Control": "max-age=3600"})
