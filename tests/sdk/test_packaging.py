"""The SDK installs on its own: its wheel (the `sdk` package and the generated stubs) works beside
exactly the distributions its declared dependencies pull in, and nothing else of this checkout.

No network here, so instead of a fresh virtualenv the test lays out a site directory holding the
wheel and the files of every distribution in the closure of the wheel's requirements (taken from
this environment), and runs Python without its own site-packages on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from devdata import demo
from meshctl import sdk_wheel
from meshctl.mesh import Mesh
from tests.e2e.clients import relayed_from

SMOKE = """
import sys
from sdk.client import MeshClient
from sdk import events, offline, player, session  # every module of the SDK imports
from spotify.catalog.v1 import catalog_pb2
try:
    import meshkit
except ImportError:
    pass
else:
    raise SystemExit("meshkit is importable: the site is not isolated")
url, token, track_id = sys.argv[1:]
with MeshClient(url, token=token) as client:
    print(client.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=track_id)).id)
"""


def requirement_closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """Every installed distribution the requirements need, transitively (no extras)."""
    found: dict[str, metadata.Distribution] = {}
    pending = list(requirements)
    while pending:
        requirement = Requirement(pending.pop())
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        distribution = metadata.distribution(requirement.name)
        key = distribution.metadata["Name"].lower().replace("_", "-")
        if key not in found:
            found[key] = distribution
            pending.extend(distribution.requires or [])
    return found


def lay_out(site: Path, distributions: dict[str, metadata.Distribution]) -> None:
    """Link each distribution's files (those inside site-packages) into `site`, file by file, so a
    namespace shared with undeclared distributions (google.*) holds only the declared ones' files."""
    for distribution in distributions.values():
        for file in distribution.files or ():
            if file.parts[0] == ".." or file.suffix == ".pyc":
                continue
            source = Path(str(distribution.locate_file(file)))
            target = site / file
            if source.is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source)


def test_the_sdk_wheel_works_with_its_declared_dependencies_only(
    running_mesh: Mesh, demo_token: str, tmp_path: Path
) -> None:
    wheel = sdk_wheel.build(tmp_path / "dist", tmp_path / "staging")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
        requires = (
            metadata.PathDistribution(
                site / next(n.split("/")[0] for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            ).requires
            or []
        )
    # Its own dependencies, and the command line's behind the `cli` extra (not laid out here).
    required = [r for r in requires if Requirement(r).marker is None]
    assert sorted(required) == sorted(str(Requirement(r)) for r in sdk_wheel.dependencies())
    assert {Requirement(r).name for r in requires if Requirement(r).marker is not None} == {"typer", "rich"}
    closure = requirement_closure(requires)
    assert not {"sqlalchemy", "redis", "kafka-python", "hnswlib", "spotify-mesh"} & set(closure)
    lay_out(site, closure)

    with relayed_from(running_mesh.grpc_target) as relayed:
        done = subprocess.run(
            [
                sys.executable,
                "-S",
                "-E",
                "-P",
                "-c",
                f"import sys; sys.path.insert(0, {str(site)!r})\n{SMOKE}",
                f"http://{relayed}",
                demo_token,
                demo.DEMO_TRACK_ID,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ.get("PATH", "")},
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == demo.DEMO_TRACK_ID
