"""The recommendation model: plain in-memory inputs in, embeddings out (numpy only, no I/O)."""
