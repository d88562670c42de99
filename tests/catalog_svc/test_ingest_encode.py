"""Ogg Vorbis renditions: nominal bitrates read back from the files, and the preview clip."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from catalog_svc.ingest import encode
from devdata import synth


@pytest.fixture(scope="module")
def clip() -> synth.SynthClip:
    return synth.synthesize("electronic", seed=5, seconds=5.0)


@pytest.mark.parametrize(("quality", "kbps"), sorted(encode.QUALITY_KBPS.items()))
def test_each_quality_states_its_nominal_bitrate_in_the_vorbis_header(
    tmp_path: Path, clip: synth.SynthClip, quality: str, kbps: int
) -> None:
    path = tmp_path / f"{quality}.ogg"
    out = encode.encode_vorbis(clip.samples, clip.sample_rate, path, kbps)
    assert encode.nominal_bitrate(path) == kbps * 1000 == out.nominal_bps
    info = encode.read_vorbis_info(path)
    assert (info.channels, info.sample_rate) == (2, 44_100)
    # libsndfile writes real Ogg Vorbis that another decoder reads back at full length.
    with sf.SoundFile(path) as f:
        assert (f.format, f.subtype, f.frames) == ("OGG", "VORBIS", clip.samples.shape[0])


def test_the_header_parse_matches_the_spec_layout(tmp_path: Path, clip: synth.SynthClip) -> None:
    """Independent of read_vorbis_info: the first page's packet, byte by byte."""
    path = tmp_path / "low.ogg"
    encode.encode_vorbis(clip.samples, clip.sample_rate, path, 96)
    data = path.read_bytes()
    assert data[:4] == b"OggS" and data[5] & 0x02  # beginning-of-stream page
    packet = data[27 + data[26] :]
    assert packet[:7] == b"\x01vorbis"
    version, channels, rate, _bmax, bnom, _bmin = struct.unpack_from("<IBIiii", packet, 7)
    assert (version, channels, rate, bnom) == (0, 2, 44_100, 96_000)


def test_levels_are_found_by_measurement() -> None:
    assert encode.compression_level_for(96) == 0.8
    assert encode.compression_level_for(160) == 0.5
    assert encode.compression_level_for(320) == 0.1
    # A bitrate that is not in the table is found by bisection and hit exactly.
    level = encode.compression_level_for(112)
    assert encode._probe_nominal(level, 44_100, 2) == 112_000


def test_preview_is_thirty_seconds_from_thirty_percent_in_with_fades() -> None:
    sr = 8_000
    track = np.full((100 * sr, 2), 0.5, dtype=np.float32)  # 100 s; channel 1 is a constant level
    track[:, 0] = np.arange(track.shape[0]) / track.shape[0]  # channel 0 encodes the position
    preview = encode.preview_clip(track, sr)
    assert preview.shape == (30 * sr, 2)
    mid = preview.shape[0] // 2
    assert preview[mid, 0] == pytest.approx(0.30 + 15 / 100, abs=1e-3)
    assert preview[0, 1] == 0.0 and abs(preview[-1, 1]) < 1e-3  # silent edges: faded in and out
    assert preview[mid, 1] == pytest.approx(0.5)


def test_a_short_track_is_previewed_whole(clip: synth.SynthClip) -> None:
    preview = encode.preview_clip(clip.samples, clip.sample_rate)
    assert preview.shape == clip.samples.shape


def test_a_file_that_is_not_vorbis_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.ogg").write_bytes(b"not an ogg file at all" * 4)
    with pytest.raises(encode.EncodeError):
        encode.nominal_bitrate(tmp_path / "x.ogg")
    sf.write(
        tmp_path / "opus.ogg", np.zeros((4800, 2), dtype=np.float32), 48_000, format="OGG", subtype="OPUS"
    )
    with pytest.raises(encode.EncodeError):
        encode.nominal_bitrate(tmp_path / "opus.ogg")
