"""The whole ingest on real files: renditions, preview, seek indexes, features; all or nothing."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
import soundfile as sf

from catalog_svc.ingest import IngestResult, UnsupportedAudio, encode, ingest, intake, pipeline, seekindex
from devdata import synth
from meshkit import ids

SECONDS = 6.0


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clip = synth.synthesize("electronic", seed=21, seconds=SECONDS)
    return clip.write_wav(tmp_path_factory.mktemp("upload") / "upload.wav")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, wav: Path) -> tuple[Path, uuid.UUID, IngestResult]:
    root = tmp_path_factory.mktemp("storage")
    track_id = uuid.uuid4()
    return root, track_id, ingest(wav, track_id, root)


def test_a_wav_becomes_three_vorbis_files_a_preview_and_their_indexes(
    ingested: tuple[Path, uuid.UUID, IngestResult],
) -> None:
    root, track_id, result = ingested
    base = ids.encode(track_id)
    expected = {
        "low": f"tracks/{base}_96kbps.ogg",
        "normal": f"tracks/{base}_160kbps.ogg",
        "high": f"tracks/{base}_320kbps.ogg",
        "preview": f"tracks/{base}_preview.ogg",
    }
    assert {f.quality: f.storage_path for f in result.files} == expected
    on_disk = [*expected.values(), *(p.replace(".ogg", ".seek.json") for p in expected.values())]
    assert _tree(root) == sorted(["tracks", *on_disk])  # nothing else: no temporary leftovers

    for f in result.files:
        path = root / f.storage_path
        kbps = 96 if f.quality == "preview" else encode.QUALITY_KBPS[f.quality]
        assert encode.nominal_bitrate(path) == kbps * 1000 and f.bitrate_kbps == kbps
        assert f.size_bytes == path.stat().st_size > 0
        assert (f.sample_rate, f.channels, f.codec, f.container) == (44_100, 2, "vorbis", "ogg")
        with sf.SoundFile(path) as audio:
            assert (audio.format, audio.subtype) == ("OGG", "VORBIS")
            assert abs(audio.frames / audio.samplerate * 1000 - f.duration_ms) <= 1
        index = seekindex.load(root / f.seek_index_path)
        assert index.duration_ms == f.duration_ms and index.points
        assert f.seek_index_path == f.storage_path.replace(".ogg", ".seek.json")

    assert result.file("low").duration_ms == SECONDS * 1000
    assert result.file("preview").duration_ms <= 30_000
    assert result.duration_ms == SECONDS * 1000
    assert (result.source_format, result.source_codec) == ("wav", "pcm_s16le")


def test_features_use_spotify_names_and_are_json(ingested: tuple[Path, uuid.UUID, IngestResult]) -> None:
    _, _, result = ingested
    feats = result.features
    spotify = {"tempo", "energy", "loudness", "danceability", "acousticness", "valence", "duration_ms"}
    assert set(feats) >= spotify
    assert feats["tempo"] == pytest.approx(synth.synthesize("electronic", seed=21, seconds=1).bpm, abs=3)
    assert feats["duration_ms"] == SECONDS * 1000
    assert json.loads(json.dumps(result.to_dict()))["features"] == feats
    assert set(result.timings) >= {"decode", "encode", "seek", "features"}


def test_a_preview_is_thirty_seconds_of_a_longer_track(tmp_path: Path) -> None:
    clip = synth.synthesize("ambient", seed=1, seconds=32.0)
    result = ingest(clip.write_wav(tmp_path / "long.wav"), uuid.uuid4(), tmp_path / "storage")
    assert result.file("preview").duration_ms == 30_000
    assert result.file("high").duration_ms == 32_000


@pytest.mark.parametrize("ext", ["flac", "mp3", "ogg"])
def test_flac_mp3_and_ogg_uploads_ingest_too(tmp_path: Path, ext: str) -> None:
    clip = synth.synthesize("jazz", seed=2, seconds=4.0)
    source = synth.write_source(tmp_path / f"upload.{ext}", clip.samples)
    result = ingest(source.read_bytes(), uuid.uuid4(), tmp_path / "storage")  # bytes, as uploaded
    assert result.source_format == ext
    assert sorted(f.bitrate_kbps for f in result.files) == [96, 96, 160, 320]
    assert abs(result.duration_ms - 4000) <= 30


def _corrupt_uploads(wav: Path, tmp_path: Path) -> dict[str, object]:
    data = wav.read_bytes()
    text = tmp_path / "lyrics.txt"
    text.write_text("la la la\n" * 500)
    return {
        "random bytes": os.urandom(100_000),
        "truncated wav": data[: len(data) // 3],
        "text file": text,
        "text bytes": text.read_bytes(),
        "empty": b"",
    }


def test_a_bad_upload_raises_the_domain_error_and_stores_nothing(wav: Path, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    for name, upload in _corrupt_uploads(wav, tmp_path).items():
        with pytest.raises(UnsupportedAudio):
            ingest(upload, uuid.uuid4(), root)  # type: ignore[arg-type]
        assert _tree(root) == [], name


def test_a_failure_after_decoding_leaves_nothing_behind(
    wav: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server-side failure mid-way (feature extraction, or a rename while publishing) discards
    every encoded file."""
    root = tmp_path / "storage"
    root.mkdir()

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline.features, "extract", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest(wav, uuid.uuid4(), root)
    assert _tree(root) == []
    monkeypatch.undo()

    def fail_on_the_320_file(src: os.PathLike[str], dst: os.PathLike[str], real=os.replace) -> None:
        if Path(dst).name.endswith("_320kbps.ogg"):
            raise OSError("simulated rename failure")
        real(src, dst)

    monkeypatch.setattr(pipeline.os, "replace", fail_on_the_320_file)
    with pytest.raises(OSError, match="simulated"):
        ingest(wav, uuid.uuid4(), root)
    assert _tree(root) == []  # even the tracks/ folder it had created is gone


def test_reingest_replaces_and_a_failed_publish_restores_the_previous_files(
    wav: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "storage"
    track_id = uuid.uuid4()
    first = ingest(wav, track_id, root)
    before = {p: (root / p).read_bytes() for p in _tree(root) if (root / p).is_file()}

    other = synth.synthesize("folk", seed=9, seconds=SECONDS).write_wav(tmp_path / "other.wav")
    real_replace = os.replace
    # 8 files, each: move the old one aside, move the new one in. Fail at either step, early or late.
    for fail_at in (2, 7, 16):
        calls = {"n": 0}

        def flaky_replace(src: os.PathLike[str], dst: os.PathLike[str], fail_at=fail_at, calls=calls) -> None:
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise OSError("simulated rename failure")
            real_replace(src, dst)

        monkeypatch.setattr(pipeline.os, "replace", flaky_replace)
        with pytest.raises(OSError, match="simulated"):
            ingest(other, track_id, root)
        monkeypatch.setattr(pipeline.os, "replace", real_replace)
        after = {p: (root / p).read_bytes() for p in _tree(root) if (root / p).is_file()}
        assert after == before, fail_at  # exactly the first ingest's files, byte for byte

    second = ingest(other, track_id, root)
    assert [f.storage_path for f in second.files] == [f.storage_path for f in first.files]
    assert (root / second.file("high").storage_path).read_bytes() != before[first.file("high").storage_path]
    assert second.features != first.features
    assert _tree(root) == sorted(["tracks", *before])


def test_stale_work_dirs_are_swept(tmp_path: Path) -> None:
    stale = tmp_path / ".ingest-dead"
    stale.mkdir()
    (stale / "x.ogg").write_bytes(b"partial")
    os.utime(stale, (0, 0))
    fresh = tmp_path / ".ingest-live"
    fresh.mkdir()
    assert intake.remove_stale_work_dirs(tmp_path, older_than_s=3600) == [stale]
    assert fresh.exists() and not stale.exists()
