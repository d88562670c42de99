"""The registry's `calls` (who may reach whose internal port; k8s NetworkPolicies are built from
it) are what the code does: every address setting a service's code reads names a service it
declares, and every declared one is read."""

from __future__ import annotations

import re

from meshkit import services
from meshkit.config import PROJECT_ROOT

ADDR = re.compile(r"settings\.(\w+)_addr\b")
OWNER = {service.addr_env.removesuffix("_ADDR").lower(): service.name for service in services.SERVICES}
# Files that run as a process of their own with calls of their own (meshkit.services.JOB_CALLS).
JOBS = {"rec_svc/batch.py": "rec-batch"}


def _called(paths: list[str]) -> set[str]:
    found = set()
    for path in paths:
        for name in ADDR.findall((PROJECT_ROOT / path).read_text()):
            if name in OWNER:  # listen_addr and media_addr (its own) are not calls
                found.add(OWNER[name])
    return found


def test_every_service_calls_exactly_what_the_registry_declares() -> None:
    for service in services.SERVICES:
        if not service.grpc:
            continue
        files = [
            str(path.relative_to(PROJECT_ROOT))
            for path in (PROJECT_ROOT / service.name).rglob("*.py")
            if str(path.relative_to(PROJECT_ROOT)) not in JOBS and "migrations" not in path.parts
        ]
        assert _called(files) - {service.name} == set(service.calls), service.name


def test_every_job_calls_exactly_what_the_registry_declares() -> None:
    for path, job in JOBS.items():
        assert _called([path]) == set(services.JOB_CALLS[job]), job
