"""The SDK's own wheel, `spotify-mesh-sdk`: the `sdk` package and the generated `spotify` stubs,
depending on exactly the `sdk` extra of pyproject.toml (one list, read here).

The stubs live in gen/ beside the services' code, so the wheel is built from a staging copy:

    python -m meshctl.sdk_wheel [--out DIR]      # make sdk-wheel: dist/spotify_mesh_sdk-*.whl
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from meshkit.config import PROJECT_ROOT

NAME = "spotify-mesh-sdk"
PACKAGES = {"sdk": PROJECT_ROOT / "sdk", "spotify": PROJECT_ROOT / "gen" / "spotify"}


def dependencies() -> list[str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"]["sdk"])


def _pyproject() -> str:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    deps = "".join(f'  "{dep}",\n' for dep in dependencies())
    cli = "".join(f'  "{dep}",\n' for dep in project["optional-dependencies"]["cli"])
    return (
        '[build-system]\nrequires = ["setuptools>=69"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{NAME}"\nversion = "{project["version"]}"\n'
        'description = "Client SDK of the mesh: gRPC stubs, session, player core, offline downloads"\n'
        f'requires-python = "{project["requires-python"]}"\ndependencies = [\n{deps}]\n\n'
        f"[project.optional-dependencies]\ncli = [\n{cli}]\n\n"
        f'[project.scripts]\nspotify-mesh = "{project["scripts"]["spotify-mesh"]}"\n\n'
        '[tool.setuptools.packages.find]\nwhere = ["."]\ninclude = ["sdk*", "spotify*"]\nnamespaces = true\n'
    )


def build(out: Path, staging: Path) -> Path:
    """Stage the packages and build the wheel into `out` (no network: setuptools is installed)."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, source in PACKAGES.items():
        shutil.copytree(source, staging / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (staging / "pyproject.toml").write_text(_pyproject())
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("spotify_mesh_sdk-*.whl"):
        old.unlink()
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*pip_wheel, "-w", str(out), "."], cwd=staging, check=True)
    (built,) = out.glob("spotify_mesh_sdk-*.whl")
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshctl.sdk_wheel", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "dist")
    args = parser.parse_args(argv)
    print(build(args.out, PROJECT_ROOT / ".build" / "sdk-wheel"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
