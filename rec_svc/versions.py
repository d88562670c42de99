"""Version directories: how a Snapshot is written to disk by the batch job and read by the service.

    <index_dir>/<version>/manifest.json   format, counts, params, checksums (written last)
                          tracks.hnsw       hnswlib track index (labels = rows of tracks.npz)
                          users.hnsw        hnswlib user index
                          tracks.npz        ids, artists, genres, features, popularity, centroids
                          users.npz         ids and each user's top tracks

A version is written into a hidden temporary directory and renamed into place, so a reader
sees either no directory or a complete one; the manifest's checksums catch a directory that
was copied or edited after the fact.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rec_svc.index import SPACE, AnnIndex
from rec_svc.model.params import DIM, ModelParams
from rec_svc.snapshot import Ragged, Snapshot, Vocabulary

FORMAT = 1
MANIFEST = "manifest.json"
FILES = ("tracks.hnsw", "users.hnsw", "tracks.npz", "users.npz")


def new_version(now: datetime | None = None) -> str:
    """Sortable and unique: UTC build time plus a random suffix."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _ids(ids: list[uuid.UUID]) -> np.ndarray:
    return np.frombuffer(b"".join(i.bytes for i in ids), dtype=np.uint8).reshape(-1, 16)


def _uuids(raw: np.ndarray) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=row.tobytes()) for row in raw]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _flat(r: Ragged) -> tuple[np.ndarray, np.ndarray]:
    """A Ragged (including rows appended live) as plain CSR arrays."""
    lists = [r[i] for i in range(len(r))]
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([x.size for x in lists], out=indptr[1:])
    values = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    return indptr, values.astype(np.int64)


def write_version(snap: Snapshot, root: Path) -> Path:
    """Write `snap` as <root>/<snap.version>; returns the final directory."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / snap.version
    if final.exists():
        raise FileExistsError(f"version directory {final} already exists")
    tmp = root / f".{snap.version}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        snap.tracks.save(tmp / "tracks.hnsw")
        snap.users.save(tmp / "users.hnsw")
        ta_indptr, ta_values = _flat(snap.track_artists)
        tg_indptr, tg_values = _flat(snap.track_genres)
        np.savez(
            tmp / "tracks.npz",
            ids=_ids(snap.tracks.keys),
            artist_ids=_ids(snap.artists.items),
            track_artists_indptr=ta_indptr,
            track_artists=ta_values,
            track_genres_indptr=tg_indptr,
            track_genres=tg_values,
            features=snap.features,
            popularity=snap.popularity,
            catalog_popularity=snap.catalog_popularity,
            artist_vectors=snap.artist_vectors,
            genre_vectors=snap.genre_vectors,
            deleted=np.asarray(sorted(snap.tracks.deleted), dtype=np.int64),
        )
        np.savez(
            tmp / "users.npz",
            ids=_ids(snap.users.keys),
            top_indptr=snap.top_indptr,
            top_tracks=snap.top_tracks,
            top_scores=snap.top_scores,
        )
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "version": snap.version,
            "built_at": snap.built_at.astimezone(UTC).isoformat(),
            "dim": DIM,
            "space": SPACE,
            "hnsw": {"M": snap.tracks.m, "ef": snap.tracks.ef},
            "counts": {
                "tracks": len(snap.tracks),
                "users": len(snap.users),
                "artists": len(snap.artists.items),
                "genres": len(snap.genres.items),
            },
            "genres": snap.genres.items,
            "genre_axes": list(snap.genre_axes),
            "params": snap.params.to_dict(),
            "files": {
                name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)} for name in FILES
            },
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        for name in (*FILES, MANIFEST):
            with (tmp / name).open("rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_manifest(path: Path) -> dict[str, Any]:
    manifest = json.loads((path / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported manifest format {manifest.get('format')!r}")
    return manifest


def read_version(path: Path, *, ef: int = 64, verify: bool = True) -> Snapshot:
    """Load a version directory written by write_version (checksums verified unless told not to)."""
    manifest = read_manifest(path)
    for name, info in manifest["files"].items():
        size = (path / name).stat().st_size
        if size != info["bytes"] or (verify and _sha256(path / name) != info["sha256"]):
            raise ValueError(f"{path / name} does not match the manifest")
    with np.load(path / "tracks.npz") as t, np.load(path / "users.npz") as u:
        track_ids = _uuids(t["ids"])
        user_ids = _uuids(u["ids"])
        tracks = AnnIndex.load(path / "tracks.hnsw", manifest["dim"], track_ids, ef)
        for row in t["deleted"].tolist():
            tracks.delete(int(row))
        snap = Snapshot(
            version=manifest["version"],
            built_at=datetime.fromisoformat(manifest["built_at"]),
            params=ModelParams.from_dict(manifest["params"]),
            tracks=tracks,
            users=AnnIndex.load(path / "users.hnsw", manifest["dim"], user_ids, ef),
            artists=Vocabulary.of(_uuids(t["artist_ids"])),
            genres=Vocabulary.of(manifest["genres"]),
            track_artists=Ragged(t["track_artists_indptr"], t["track_artists"]),
            track_genres=Ragged(t["track_genres_indptr"], t["track_genres"]),
            features=t["features"],
            popularity=t["popularity"],
            catalog_popularity=t["catalog_popularity"],
            top_indptr=u["top_indptr"],
            top_tracks=u["top_tracks"],
            top_scores=u["top_scores"],
            artist_vectors=t["artist_vectors"],
            genre_vectors=t["genre_vectors"],
            path=str(path),
            genre_axes=tuple(manifest.get("genre_axes", ())),
        )
    return snap


def prune(root: Path, keep: int, protect: set[str]) -> list[str]:
    """Remove all but the newest `keep` version directories (never one named in `protect`)."""
    versions = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
    removed = []
    for p in versions[keep:]:
        if p.name not in protect:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    return removed
