"""The overlays as the real kustomize renders them (kubectl kustomize), once per run."""

from __future__ import annotations

from typing import Any

import pytest

from meshctl import k8s


@pytest.fixture(scope="session")
def renders() -> dict[str, list[dict[str, Any]]]:
    return {name: k8s.documents(name) for name in k8s.RENDERS}


@pytest.fixture(scope="session")
def prod(renders: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return renders["prod"]
