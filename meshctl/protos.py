"""Vendor the google API protos, generate gen/ from proto/, and check that gen/ is fresh.

gen/ also holds the OpenAPI document of the JSON edge (meshctl.openapi), so it is checked too.

Usage (from the repository root, as the Makefile does)::

    python -m meshctl.protos vendor .build/protos
    python -m meshctl.protos gen
    python -m meshctl.protos check
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

from meshctl import openapi

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
GEN_DIR = ROOT / "gen"
VENDOR_DIR = ROOT / ".build" / "protos"
DESCRIPTOR_NAME = "descriptor.binpb"

# google/api and google/rpc files copied from googleapis-common-protos (buf and protoc import them).
GOOGLE_API_FILES = (
    "annotations.proto",
    "client.proto",
    "field_behavior.proto",
    "http.proto",
    "httpbody.proto",
    "launch_stage.proto",
    "resource.proto",
)
GOOGLE_RPC_FILES = ("code.proto", "error_details.proto", "status.proto")


def _package_dir(module: str) -> Path:
    """Return the folder of an installed module (works for namespace packages too)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SystemExit(f"cannot locate {module}: is googleapis-common-protos installed?")
    return Path(spec.origin).parent


def vendor(dest: Path, *, quiet: bool = False) -> None:
    """Copy google/api/*.proto and google/rpc/*.proto from googleapis-common-protos into dest."""
    for package, names in (
        ("google.api", GOOGLE_API_FILES),
        ("google.rpc", GOOGLE_RPC_FILES),
    ):
        src_dir = _package_dir(f"{package}.http_pb2" if package == "google.api" else f"{package}.status_pb2")
        out_dir = dest / Path(*package.split("."))
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(src_dir / name, out_dir / name)
    if not quiet:
        print(f"vendored google/api and google/rpc protos into {dest}")


def _proto_files() -> list[str]:
    """Return every .proto under proto/, relative to proto/, sorted."""
    return sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))


def _protoc_include() -> Path:
    """Return grpc_tools' bundled include dir (google/protobuf/*.proto)."""
    return _package_dir("grpc_tools.protoc") / "_proto"


def _run_protoc(args: list[str]) -> None:
    """Run grpc_tools.protoc in-process and fail loudly on error."""
    from grpc_tools import protoc

    code = protoc.main(["grpc_tools.protoc", *args])
    if code != 0:
        raise SystemExit(f"protoc failed (exit {code}): {' '.join(args)}")


def generate(out: Path) -> None:
    """Generate Python, gRPC and mypy stubs plus the descriptor set for all of proto/ into out."""
    if not (VENDOR_DIR / "google" / "api" / "annotations.proto").is_file():
        vendor(VENDOR_DIR)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = _proto_files()
    if not files:
        raise SystemExit(f"no .proto files under {PROTO_DIR}")
    bin_dir = Path(sys.executable).parent
    includes = [f"-I{PROTO_DIR}", f"-I{VENDOR_DIR}", f"-I{_protoc_include()}"]
    _run_protoc(
        [
            *includes,
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            f"--mypy_out=quiet:{out}",
            f"--mypy_grpc_out=quiet:{out}",
            *files,
        ]
    )
    _run_protoc([*includes, "--include_imports", f"--descriptor_set_out={out / DESCRIPTOR_NAME}", *files])
    _write_openapi(includes, files, out)
    for folder in sorted({p.parent for p in out.rglob("*.py")}):
        while folder != out:
            (folder / "__init__.py").touch()
            folder = folder.parent


def _write_openapi(includes: list[str], files: list[str], out: Path) -> None:
    """gen/openapi.json, from a descriptor set with source info (the comments become descriptions).

    Envoy's descriptor set stays without source info: it loads at every start and needs none.
    """
    with tempfile.TemporaryDirectory(prefix="openapi-") as tmp:
        described = Path(tmp) / "described.binpb"
        _run_protoc(
            [
                *includes,
                "--include_imports",
                "--include_source_info",
                f"--descriptor_set_out={described}",
                *files,
            ]
        )
        fds = descriptor_pb2.FileDescriptorSet.FromString(described.read_bytes())
    openapi.write(fds, out / openapi.OPENAPI_NAME)


def _tree(folder: Path) -> set[str]:
    """Return the relative paths of all files under folder, ignoring bytecode caches."""
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _differing(want_dir: Path, have_dir: Path) -> list[str]:
    """Return the relative paths that are missing, extra or different in have_dir."""
    want = _tree(want_dir)
    have = _tree(have_dir) if have_dir.is_dir() else set()
    return sorted(
        name
        for name in want | have
        if name not in want
        or name not in have
        or not filecmp.cmp(want_dir / name, have_dir / name, shallow=False)
    )


def check() -> int:
    """Regenerate into a temp dir and compare with gen/ byte for byte."""
    with tempfile.TemporaryDirectory(prefix="gen-check-") as tmp:
        fresh = Path(tmp) / "gen"
        generate(fresh)
        stale = _differing(fresh, GEN_DIR)
    if stale:
        print("gen/ is stale: run make gen", file=sys.stderr)
        for name in stale:
            print(f"  gen/{name}", file=sys.stderr)
        return 1
    print("gen/ is up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m meshctl.protos", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_vendor = sub.add_parser("vendor", help="copy google/api and google/rpc protos into a folder")
    p_vendor.add_argument("dest", type=Path, nargs="?", default=VENDOR_DIR)
    sub.add_parser("gen", help="regenerate gen/ from proto/")
    sub.add_parser("check", help="fail when gen/ differs from what gen would write")
    args = parser.parse_args(argv)
    if args.command == "vendor":
        vendor(args.dest)
        return 0
    if args.command == "gen":
        generate(GEN_DIR)
        print(f"generated {GEN_DIR.relative_to(ROOT)}/ from {PROTO_DIR.relative_to(ROOT)}/")
        return 0
    return check()


if __name__ == "__main__":
    sys.exit(main())
