"""Reading rendered manifests the way Kubernetes does, for the tests of tests/k8s."""

from __future__ import annotations

from typing import Any


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (`matchLabels` / `matchExpressions`, or a Service's plain map)
    selects pods with `labels`. Only the `In` operator occurs in this repository's manifests;
    any other fails the test rather than being read wrongly."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True
