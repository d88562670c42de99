"""Benchmarks of the mesh, run as `python -m bench.<name>` (see bench/README.md)."""
