"""Radio: an endless, paged station around a seed, carried from page to page by its token.

The station is stateless on the server: the page token holds the seed, the page number, the
last track played (the anchor, so the station drifts with what it played while staying tied
to the seed) and short hashes of the recently played tracks (so it does not repeat them).
Each page samples from the nearest candidates with a generator seeded by (seed, page), so a
station is varied but the same token always gives the same page. When a small catalog runs
out of unplayed neighbours, the oldest plays become eligible again: a station never ends.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass

import numpy as np

from meshkit import ids
from meshkit.errors import InvalidArgument
from rec_svc.recommend import Diversifier
from rec_svc.snapshot import Snapshot

RECENT = 100  # tracks remembered against repeats
DRIFT = 0.35  # weight of the anchor (last played) against the seed in the next query
MAX_PER_ARTIST_PER_PAGE = 2


@dataclass(frozen=True)
class Station:
    seed: str  # "track:<id>", "artist:<id>" or "genre:<name>"
    page: int = 0
    anchor: str = ""  # base62 id of the last track played
    recent: tuple[int, ...] = ()  # 32-bit hashes of recently played track ids, oldest first


def _short(track_id: uuid.UUID) -> int:
    return int.from_bytes(hashlib.blake2b(track_id.bytes, digest_size=4).digest(), "big")


def encode(station: Station) -> str:
    raw = json.dumps(
        {"v": 1, "s": station.seed, "p": station.page, "a": station.anchor, "r": list(station.recent)},
        separators=(",", ":"),
    ).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, seed: str) -> Station:
    """The station a token continues; it must belong to the same seed."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        station = Station(
            seed=str(data["s"]),
            page=int(data["p"]),
            anchor=str(data["a"]),
            recent=tuple(int(x) for x in data["r"]),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise InvalidArgument("page_token is not a token this service issued") from err
    if station.seed != seed:
        raise InvalidArgument("page_token belongs to a different station (seed)")
    if station.page < 0:
        raise InvalidArgument("page_token is not a token this service issued")
    return station


def next_page(
    snap: Snapshot,
    station: Station,
    seed_vector: np.ndarray,
    page_size: int,
    *,
    seed_row: int | None = None,
    anchor_row: int | None = None,
) -> tuple[list[int], Station]:
    """The rows of this page and the station after it."""
    query = seed_vector
    if anchor_row is not None:
        anchor = snap.tracks.vectors([anchor_row])[0]
        query = (1 - DRIFT) * seed_vector + DRIFT * anchor
        query = query / max(float(np.linalg.norm(query)), 1e-9)
    recent = set(station.recent)
    div = Diversifier(snap, max_per_artist=MAX_PER_ARTIST_PER_PAGE)
    if station.page == 0 and seed_row is not None:
        div.offer(seed_row)  # a track station starts with its seed, as Spotify's does
    seed_bytes = hashlib.blake2b(f"{station.seed}|{station.page}".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(seed_bytes, "big"))
    pool = min(max(page_size * 5, 50) + len(recent), snap.tracks.live)
    hits = snap.tracks.query(query, pool)[0]
    fresh = [(row, sim) for row, sim in hits if _short(snap.track_id(row)) not in recent]
    _sample_into(div, fresh, page_size, rng)
    if len(div.taken) < page_size:
        # Ran out of unplayed neighbours: the oldest half of the memory becomes playable again.
        older = set(station.recent[: len(station.recent) // 2])
        again = [(row, sim) for row, sim in hits if _short(snap.track_id(row)) in older]
        _sample_into(div, again, page_size, rng)
    if len(div.taken) < page_size:
        relaxed = Diversifier(snap, exclude=div.taken, max_per_artist=page_size)
        for row, _ in hits:
            if len(div.taken) + len(relaxed.taken) >= page_size:
                break
            relaxed.offer(row)
        div.taken.extend(relaxed.taken)
    picks = div.taken[:page_size]
    played = [*station.recent, *(_short(snap.track_id(r)) for r in picks)][-RECENT:]
    anchor_id = snap.track_id(picks[-1]) if picks else None
    return picks, Station(
        seed=station.seed,
        page=station.page + 1,
        anchor=ids.encode(anchor_id) if anchor_id else station.anchor,
        recent=tuple(played),
    )


def _sample_into(
    div: Diversifier, candidates: list[tuple[int, float]], want: int, rng: np.random.Generator
) -> None:
    """Offer candidates in a similarity-weighted random order (nearer is likelier to come first)."""
    if not candidates:
        return
    sims = np.clip(np.asarray([sim for _, sim in candidates], dtype=np.float64), 1e-6, None)
    weights = sims**4
    # Weighted sampling without replacement: sort by -log(u) / w (Efraimidis-Spirakis).
    keys = -np.log(rng.random(len(candidates))) / weights
    for i in np.argsort(keys).tolist():
        if len(div.taken) >= want:
            return
        div.offer(candidates[i][0])
