"""The audio-ingest pipeline as a pure library: no gRPC, no database, only files.

``pipeline.ingest`` is the entry point catalog_svc.ingestion calls (in a worker, since it is CPU
bound): decode an upload (PyAV) → Ogg Vorbis at 96/160/320 kbps plus a 30 s preview
(libsndfile) → a time→byte seek index per file → audio features from the signal. The stages are
separate modules so each can be tested, benchmarked and reused (the dev-data loader feeds it
synthesized clips from ``devdata.synth``).
"""

from catalog_svc.ingest.decode import DecodedAudio, UnsupportedAudio
from catalog_svc.ingest.pipeline import IngestedFile, IngestResult, ingest

# ``decode`` the function is not re-exported: it would shadow the ``decode`` module here.
__all__ = ["DecodedAudio", "IngestResult", "IngestedFile", "UnsupportedAudio", "ingest"]
