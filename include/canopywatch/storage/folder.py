"""A local folder with the object store's interface, for ``canopywatch download --out DIR``.

Keys become paths under the folder (the same layout as in MinIO). Each file is written
to ``<name>.part`` and renamed when complete, with a ``<name>.json`` sidecar holding its
size, SHA-256 and metadata; ``head`` returns a file only when its size and checksum
match the sidecar, so an interrupted or damaged download is fetched again and a
verified one is skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from canopywatch.storage.objects import CHECKSUM_META, ObjectStore, StoredObject, sha256

SIDECAR_SUFFIX = ".json"
PART_SUFFIX = ".part"


class FolderStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        super().__init__(client=None, bucket=str(root))
        self.root = Path(root)

    def path(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if self.root.resolve() not in target.parents:
            raise ValueError(f"key {key!r} leaves the folder {self.root}")
        return target

    def head(self, key: str) -> StoredObject | None:
        """The file, if it is complete and matches its sidecar (size and SHA-256)."""
        path = self.path(key)
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        if not path.is_file() or not sidecar.is_file():
            return None
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        size = path.stat().st_size
        if size != meta.get("size") or sha256(path.read_bytes()) != meta.get(CHECKSUM_META):
            return None
        metadata = {str(k): str(v) for k, v in (meta.get("metadata") or {}).items()}
        return StoredObject(key, size, str(meta[CHECKSUM_META]), metadata)

    def put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> str:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        checksum = sha256(data)
        part = path.with_name(path.name + PART_SUFFIX)
        with part.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        part.replace(path)
        sidecar = {
            "size": len(data),
            CHECKSUM_META: checksum,
            "content_type": content_type,
            "metadata": metadata,
        }
        sidecar_path = path.with_name(path.name + SIDECAR_SUFFIX)
        sidecar_part = sidecar_path.with_name(sidecar_path.name + PART_SUFFIX)
        sidecar_part.write_text(json.dumps(sidecar, indent=2, sort_keys=True))
        sidecar_part.replace(sidecar_path)
        return checksum

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def list_keys(self, prefix: str = "") -> list[str]:
        keys = []
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.endswith((SIDECAR_SUFFIX, PART_SUFFIX)):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return keys
