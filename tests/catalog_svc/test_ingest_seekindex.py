"""Seek indexes: a time maps to the same musical instant in every quality of a track."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from catalog_svc.ingest import encode, seekindex
from devdata import synth

SECONDS = 8.0
RATE = 44_100


@pytest.fixture(scope="module")
def renditions(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, seekindex.SeekIndex]]:
    folder = tmp_path_factory.mktemp("seek")
    clip = synth.synthesize("rock", seed=7, seconds=SECONDS)
    out = {}
    for kbps in (96, 160, 320):
        path = folder / f"t_{kbps}kbps.ogg"
        encode.encode_vorbis(clip.samples, RATE, path, kbps)
        index = seekindex.build(path, RATE)
        seekindex.save(index, seekindex.index_path_for(path))
        out[kbps] = (path, index)
    return out


def _page_at(path: Path, offset: int) -> tuple[seekindex.OggPage, int]:
    """The page starting at ``offset`` and the granule of the next page that has one."""
    pages = list(seekindex.iter_pages(path))
    i = next(i for i, p in enumerate(pages) if p.offset == offset)
    following = next(p.granule for p in pages[i + 1 :] if p.granule != -1)
    return pages[i], following


def test_index_file_sits_next_to_the_audio_and_round_trips(
    renditions: dict[int, tuple[Path, seekindex.SeekIndex]],
) -> None:
    path, index = renditions[160]
    json_path = path.parent / "t_160kbps.seek.json"
    assert seekindex.index_path_for(path) == json_path and json_path.exists()
    assert seekindex.load(json_path) == index
    assert index.sample_rate == RATE and index.duration_ms == SECONDS * 1000
    assert index.file_size == path.stat().st_size
    assert [t for t, _ in index.points] == list(range(0, int(SECONDS * 1000), 1000))  # one a second
    assert all(a[1] < b[1] for a, b in zip(index.points, index.points[1:], strict=False))


@pytest.mark.parametrize("time_ms", [1000, 2000, 3000, 5000, 7000])
def test_every_quality_points_at_the_page_containing_the_instant(
    renditions: dict[int, tuple[Path, seekindex.SeekIndex]], time_ms: int
) -> None:
    """Switching quality at t: the offsets differ per file but each page holds the instant t."""
    target = time_ms * RATE // 1000
    offsets = {}
    for kbps, (path, index) in renditions.items():
        offset = seekindex.lookup(index, time_ms)
        with open(path, "rb") as f:
            f.seek(offset)
            assert f.read(4) == b"OggS"
        page, next_granule = _page_at(path, offset)
        assert page.granule <= target < next_granule, kbps
        offsets[kbps] = offset
    assert offsets[96] < offsets[160] < offsets[320]  # same instant, more bytes before it


def test_between_grid_points_lookup_gives_a_page_at_or_before_the_time(
    renditions: dict[int, tuple[Path, seekindex.SeekIndex]],
) -> None:
    path, index = renditions[96]
    for time_ms in (0, 1, 999, 2500, 7999, 60_000):
        page, _ = _page_at(path, seekindex.lookup(index, time_ms))
        assert page.granule <= min(time_ms, index.duration_ms) * RATE // 1000
    assert seekindex.lookup(index, -5) == seekindex.lookup(index, 0)


@pytest.mark.parametrize("kbps", [96, 320])
def test_headers_plus_bytes_from_the_offset_decode_to_the_same_audio(
    renditions: dict[int, tuple[Path, seekindex.SeekIndex]], kbps: int
) -> None:
    """What a client does mid-track: fetch the header pages and a range from the offset, decode,
    drop samples before t. The result equals the full decode from t on."""
    path, index = renditions[kbps]
    data = path.read_bytes()
    full, _ = sf.read(path, dtype="float32")
    time_ms = 4000
    spliced = data[: index.header_bytes] + data[seekindex.lookup(index, time_ms) :]
    with av.open(io.BytesIO(spliced)) as container:
        frames = list(container.decode(container.streams.audio[0]))
    first_sample = frames[0].pts
    pcm = np.concatenate([f.to_ndarray() for f in frames], axis=1).T
    t = time_ms * RATE // 1000
    assert first_sample <= t
    assert first_sample + pcm.shape[0] == full.shape[0]
    np.testing.assert_allclose(pcm[t - first_sample :], full[t:], atol=1e-5)


def test_a_file_that_is_not_ogg_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.ogg").write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(seekindex.SeekIndexError):
        seekindex.build(tmp_path / "x.ogg", RATE)
