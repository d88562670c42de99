"""NetworkPolicies over the renders: the namespace denies ingress by default, and every port of
every pod is open exactly to whom the registry says (meshkit.services: Envoy for public ports,
`calls` and JOB_CALLS for internal ones, the monitoring namespace for metrics)."""

from __future__ import annotations

from typing import Any

import pytest

from meshctl import k8s
from meshkit import services
from tests.k8s.manifests import selects

Docs = list[dict[str, Any]]


def _peers(rule: dict[str, Any]) -> set[str]:
    """Who a rule lets in: pod names, `namespace:<name>`, or `*` (anyone)."""
    if "from" not in rule:
        return {"*"}
    found = set()
    for peer in rule["from"]:
        if "namespaceSelector" in peer:
            found.add("namespace:" + peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
        else:
            labels = peer["podSelector"].get("matchLabels", {})
            expressions = peer["podSelector"].get("matchExpressions", [])
            if not labels and not expressions:
                found.add("namespace pods")
            found.update(labels.values())
            for expression in expressions:
                found.update(expression["values"])
    return found


def _open_ports(docs: Docs, labels: dict[str, str]) -> dict[str, set[str]]:
    """Port name -> who may reach it, over every policy that selects these pod labels."""
    opened: dict[str, set[str]] = {}
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        if not selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", [{"port": "*"}]):
                opened.setdefault(str(port["port"]), set()).update(_peers(rule))
    return opened


def test_the_generated_policies_are_current() -> None:
    assert k8s.NETWORK_POLICIES.read_text() == k8s.render_network_policies(), "run make gen"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_ingress_is_denied_by_default_and_every_port_open_only_to_its_callers(
    renders: dict[str, Docs], overlay: str
) -> None:
    docs = renders[overlay]
    (deny,) = [
        d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "default-deny-ingress"
    ]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []}
    monitoring = "namespace:" + k8s.MONITORING_NAMESPACE
    for deployment in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet")):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        opened = _open_ports(docs, labels)
        ports = {
            p["name"]
            for c in deployment["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        if "*" in opened:  # the dev data tier: the namespace's own pods only
            assert opened == {"*": {"namespace pods"}}, name
            continue
        # Every exposed port is open to someone, but an internal port nobody calls (playback's).
        closed = ports - set(opened)
        assert set(opened) <= ports and closed <= {"internal"}, (
            f"{name}: open {sorted(opened)}, exposes {sorted(ports)}"
        )
        if name == "pushgateway":  # batch jobs push to it
            assert opened["metrics"] == {monitoring, "batch-job"}
        elif "metrics" in ports:
            assert opened["metrics"] == {monitoring}, name
        service = next((s for s in services.SERVICES if s.host_name == name), None)
        if name == "envoy":
            assert opened["http"] == {"*"}
        elif service is not None:
            assert opened["grpc" if service.grpc else "http"] == {"envoy"}, name
            if service.grpc:
                callers = {s.host_name for s in services.SERVICES if service.name in s.calls}
                callers |= {job for job, calls in services.JOB_CALLS.items() if service.name in calls}
                assert opened.get("internal", set()) == callers, name
    # Who calls auth's internal RPCs (session validation, audit records, deletion confirmations)
    # is the registry's list.
    auth = services.get("auth_svc")
    assert {s.name for s in services.SERVICES if auth.name in s.calls} == {
        "catalog_svc",
        "library_svc",
        "playback_svc",
        "rec_svc",
    }


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_job_may_push_its_outcome(renders: dict[str, Docs], overlay: str) -> None:
    """The Pushgateway's policy lets in pods labelled as batch jobs: every Job and CronJob is."""
    for job in (d for d in renders[overlay] if d["kind"] in ("Job", "CronJob")):
        spec = job["spec"]["jobTemplate"]["spec"] if job["kind"] == "CronJob" else job["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert labels.get("app.kubernetes.io/component") == "batch-job", job["metadata"]["name"]
