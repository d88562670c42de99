"""The audio-ingest pipeline as a pure library: no gRPC, no database, only files.

``pipeline.ingest`` is the entry point catalog_svc.ingestion calls (in a worker, since it is CPU
bound): decode an upload (PyAV) → Ogg Vorbis at 96/160/320 kbps plus a 30 s preview
(libsndfile) → a time→byte seek index per file → audio features from the signal. The stages are
separate modules so each can be tested, benchmarked and reused (the dev-data loader feeds it
synthesized clips from ``devdata.synth``).
"""

import importlib
from typing import Any

# Where each re-exported name lives. Loaded on first use: the pipeline's modules bring PyAV,
# libsndfile and numpy, which catalog_svc needs only once an upload arrives (``intake`` is light).
_EXPORTS = {
    "DecodedAudio": "catalog_svc.ingest.decode",
    "UnsupportedAudio": "catalog_svc.ingest.intake",
    "IngestResult": "catalog_svc.ingest.pipeline",
    "IngestedFile": "catalog_svc.ingest.pipeline",
    "ingest": "catalog_svc.ingest.pipeline",
}

# ``decode`` the function is not re-exported: it would shadow the ``decode`` module here.
__all__ = ["DecodedAudio", "IngestResult", "IngestedFile", "UnsupportedAudio", "ingest"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
