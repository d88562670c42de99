"""Ingest throughput: tracks per minute per core, and where the time goes.

Synthesizes N tracks (cycling through the genres; not timed), writes each as an upload in the
chosen format, then ingests them one after another in this one process with the real pipeline
(decode → 3 Vorbis renditions + preview → seek indexes → features) into a temporary storage root.
Everything the pipeline calls is single-threaded (PyAV audio decode, libvorbis, numpy's FFT), so
one process is one core; CPU time is measured alongside wall time to show that.

    .venv/bin/python -m bench.ingest_throughput [--tracks 10] [--seconds 30] [--format wav]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from catalog_svc.ingest import ingest
from devdata import synth

STAGES = ("decode", "encode", "seek", "features", "publish")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tracks", type=int, default=10, help="how many tracks to ingest (default 10)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each track (default 30)")
    parser.add_argument("--format", choices=("wav", "flac", "mp3", "ogg"), default="wav", help="upload type")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        work = Path(tmp)
        uploads = []
        for i in range(args.tracks):
            genre = synth.GENRES[i % len(synth.GENRES)]
            clip = synth.synthesize(genre, seed=i, seconds=args.seconds)
            uploads.append(synth.write_source(work / f"{i:03d}_{genre}.{args.format}", clip.samples))

        storage = work / "storage"
        stage_totals = dict.fromkeys(STAGES, 0.0)
        walls: list[float] = []
        cpu_start = time.process_time()
        wall_start = time.perf_counter()
        output_bytes = 0
        for upload in uploads:
            started = time.perf_counter()
            result = ingest(upload, uuid.uuid4(), storage)
            walls.append(time.perf_counter() - started)
            for stage in STAGES:
                stage_totals[stage] += result.timings.get(stage, 0.0)
            output_bytes += sum(f.size_bytes for f in result.files)
        wall = time.perf_counter() - wall_start
        cpu = time.process_time() - cpu_start

    n = args.tracks
    audio_minutes = n * args.seconds / 60
    print(f"ingest throughput: {n} synthesized {args.seconds:g} s {args.format.upper()} tracks, one process")
    print(f"  machine cores: {os.cpu_count()}   cores used: 1 (CPU time / wall time = {cpu / wall:.2f})")
    print(f"  wall {wall:.2f} s, CPU {cpu:.2f} s, per track: median {statistics.median(walls):.3f} s, "
          f"max {max(walls):.3f} s")  # fmt: skip
    print(f"  tracks per minute per core: {60 * n / wall:.1f} (wall)   {60 * n / cpu:.1f} (CPU time)")
    print(f"  audio minutes ingested per minute per core: {60 * audio_minutes / wall:.1f} "
          f"({wall / (n * args.seconds) * 100:.2f}% of real time)")  # fmt: skip
    print(f"  output: {output_bytes / n / 1e6:.2f} MB per track (96+160+320 kbps and the preview)")
    total = sum(stage_totals.values())
    print("  per-stage split (share of pipeline time, seconds per track):")
    for stage in STAGES:
        print(f"    {stage:<9} {100 * stage_totals[stage] / total:5.1f}%  {stage_totals[stage] / n:.3f} s")


if __name__ == "__main__":
    main()
