"""Policies over the rendered overlays: what every workload must have to run safely in a cluster,
and that the manifests and the code agree on ports and settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from auth_svc.settings import AuthSettings
from catalog_svc.settings import CatalogSettings
from library_svc.settings import LibrarySettings
from meshctl import envoy_config, k8s
from meshkit.config import PROJECT_ROOT, Settings
from meshkit.services import PROCESSES, get
from playback_svc.settings import PlaybackSettings
from rec_svc.settings import RecSettings
from tests.k8s.manifests import selects

Docs = list[dict[str, Any]]
OVERLAYS = ("dev", "prod")
OUR_IMAGE = re.compile(r"(^|/)spotify-mesh:")
# Read by libraries rather than by our settings classes.
LIBRARY_ENV = {"PGPASSWORD", "APP_VERSION"}


def _of(docs: Docs, kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def _pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["metadata"]["labels"]


def _workloads(docs: Docs) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "CronJob", "Job")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_is_fit_to_run(renders: dict[str, Docs], overlay: str) -> None:
    docs = renders[overlay]
    pdbs = _of(docs, "PodDisruptionBudget")
    deployments = _of(docs, "Deployment")
    assert deployments
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pod = _pod_spec(deployment)
        labels = _pod_labels(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name
            assert "readinessProbe" in container and "livenessProbe" in container, name
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
        assert [p for p in pdbs if selects(p["spec"]["selector"], labels)], f"{name}: no PodDisruptionBudget"
        terms = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        spread = {
            term["podAffinityTerm"]["topologyKey"]
            for term in terms
            if selects(term["podAffinityTerm"]["labelSelector"], labels)
        }
        assert spread == {"kubernetes.io/hostname"}, name
        zones = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert "topology.kubernetes.io/zone" in zones, name


def test_every_scheduled_job_forbids_overlapping_runs(prod: Docs) -> None:
    for cronjob in _of(prod, "CronJob"):
        assert cronjob["spec"]["concurrencyPolicy"] == "Forbid", cronjob["metadata"]["name"]


def test_prod_pins_every_image(prod: Docs) -> None:
    for workload in _workloads(prod):
        pod = _pod_spec(workload)
        for container in pod.get("initContainers", []) + pod["containers"]:
            image = container["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            pinned = "@sha256:" in image or re.fullmatch(r"v?\d+(\.\d+)+([-.][\w.]+)?", tag)
            assert pinned, f"{workload['metadata']['name']}: {image} is not pinned to a version"


# Each process reads the shared settings and its own service's.
OWN_SETTINGS: dict[str, type[BaseSettings]] = {
    "auth_svc": AuthSettings,
    "catalog_svc": CatalogSettings,
    "library_svc": LibrarySettings,
    "playback_svc": PlaybackSettings,
    "rec_svc": RecSettings,
}


def _settings_env(module: str) -> dict[str, object]:
    """Every environment variable `python -m <module>` reads through settings, with its default."""
    classes = [Settings, *filter(None, [OWN_SETTINGS.get(module.split(".")[0])])]
    found: dict[str, object] = {}
    for cls in classes:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field, info in cls.model_fields.items():
            found[(prefix + field).upper()] = info.default
    return found


def _needs_a_value(default: object) -> bool:
    """A default that only works on a developer's machine: a loopback address, or a path in the
    working tree (the image's is read-only, and every pod has its own)."""
    text = str(default)
    if "127.0.0.1" in text or "localhost" in text:
        return True
    return isinstance(default, Path) and default.is_relative_to(PROJECT_ROOT) and not default.is_file()


def _environment(container: dict[str, Any], docs: Docs) -> dict[str, str]:
    """The container's environment by name (values from Secrets shown as `<secret>`)."""
    config_maps = {c["metadata"]["name"]: c.get("data", {}) for c in _of(docs, "ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for entry in container.get("env", []):
        env[entry["name"]] = entry.get(
            "value", "<secret>" if "secretKeyRef" in entry.get("valueFrom", {}) else ""
        )
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_a_process_reads_is_set_or_safe_and_nothing_unknown_is_set(
    renders: dict[str, Docs], overlay: str
) -> None:
    docs = renders[overlay]
    assert {"DATABASE_URL", "REDIS_URL", "CATALOG_ADDR", "STORAGE_ROOT"} <= {
        name for name, default in _settings_env("meshkit").items() if _needs_a_value(default)
    }  # the rule bites
    checked = set()
    for workload in _workloads(docs):
        for container in _pod_spec(workload)["containers"]:
            command = container.get("command", [])
            if not OUR_IMAGE.search(container["image"]) or command[:2] != ["python", "-m"]:
                continue  # Envoy runs from our image too, and reads no settings
            module = command[2]
            checked.add(module)
            known = _settings_env(module)
            must_set = {name for name, default in known.items() if _needs_a_value(default)}
            env = _environment(container, docs)
            own = {entry["name"] for entry in container.get("env", [])}
            where = f"{overlay} {workload['metadata']['name']}"
            assert sorted(must_set - set(env)) == [], f"{where}: unset, and the default is a developer's"
            assert sorted(own - set(known) - LIBRARY_ENV) == [], f"{where}: set here, read by nothing here"
    shared = {
        key for c in _of(docs, "ConfigMap") if c["metadata"]["name"] == "mesh-config" for key in c["data"]
    }
    anyone = {name for module in [*OWN_SETTINGS, "meshkit"] for name in _settings_env(module)}
    assert sorted(shared - anyone) == [], "mesh-config keys no process reads"
    assert set(PROCESSES) | {"rec_svc.batch", "catalog_svc.jobs", "meshkit.migrate"} <= checked


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_in_services_annotations_and_settings_match_the_processes(
    renders: dict[str, Docs], overlay: str
) -> None:
    docs = renders[overlay]
    deployments = {d["metadata"]["name"]: d for d in _of(docs, "Deployment")}
    services = {s["metadata"]["name"]: s for s in _of(docs, "Service")}
    for deployment in deployments.values():
        name = deployment["metadata"]["name"]
        template = deployment["spec"]["template"]
        ports = {
            p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
        }
        annotated = template["metadata"].get("annotations", {}).get("prometheus.io/port")
        if annotated is not None:
            assert int(annotated) == ports["metrics"], name
        for service in services.values():
            if service["spec"].get("selector") and selects(
                service["spec"]["selector"], template["metadata"]["labels"]
            ):
                for port in service["spec"]["ports"]:
                    target = port.get("targetPort", port["port"])
                    assert (target in ports) if isinstance(target, str) else (target in ports.values()), (
                        f"{service['metadata']['name']} targets {target}, which {name} does not expose"
                    )
    for process in PROCESSES:
        service = get(process)
        (container,) = deployments[service.host_name]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        listen = int(env["LISTEN_ADDR"].rpartition(":")[2])
        main_port = ports["grpc" if service.grpc else "http"]
        assert listen == main_port == service.port, process
        published = {p["name"]: p["port"] for p in services[service.host_name]["spec"]["ports"]}
        assert published["grpc" if service.grpc else "http"] == service.port, process
        (config,) = [c for c in _of(docs, "ConfigMap") if c["metadata"]["name"] == "mesh-config"]
        internal = service.internal_port if service.grpc else service.port
        assert config["data"][service.addr_env].endswith(f":{internal}"), process
        if service.grpc:
            assert ports["internal"] == service.internal_port == published["internal"], process
            assert env["INTERNAL_LISTEN_ADDR"].endswith(f":{service.internal_port}"), process


def test_the_renders_are_valid_against_the_kubernetes_schemas() -> None:
    assert [problem for name in k8s.RENDERS for problem in k8s.problems(name)] == []


# The keys each process signs or encrypts with (meshkit.secrets): production takes them from Secrets.
KEYS = {
    "playback_svc": ["MEDIA_SIGNING_KEYS", *(s.env for s in PlaybackSettings().secrets())],
    "media_svc": ["MEDIA_SIGNING_KEYS"],
}


def test_prod_takes_every_key_from_a_secret_and_runs_as_production(prod: Docs) -> None:
    (config,) = [c for c in _of(prod, "ConfigMap") if c["metadata"]["name"] == "mesh-config"]
    assert config["data"].get("MESH_ENV", "production") == "production"
    deployments = {d["metadata"]["name"]: d for d in _of(prod, "Deployment")}
    assert KEYS["playback_svc"] == [
        "MEDIA_SIGNING_KEYS",
        "PLAYBACK_OFFLINE_MASTER_SECRET",
        "PLAYBACK_OFFLINE_SIGNING_KEYS",
    ]
    for process, keys in KEYS.items():
        (container,) = _pod_spec(deployments[get(process).host_name])["containers"]
        env = {entry["name"]: entry for entry in container.get("env", [])}
        for key in keys:
            assert "secretKeyRef" in env[key].get("valueFrom", {}), f"{process}: {key} is not from a Secret"
            assert "MESH_ENV" not in env, process


def test_dev_says_its_committed_keys_are_for_development(renders: dict[str, Docs]) -> None:
    (config,) = [c for c in _of(renders["dev"], "ConfigMap") if c["metadata"]["name"] == "mesh-config"]
    assert config["data"]["MESH_ENV"] == "development"


def test_prods_edge_terminates_tls_with_the_secrets_certificate(prod: Docs) -> None:
    committed = (PROJECT_ROOT / "k8s" / "overlays" / "prod" / "envoy" / "envoy.yaml").read_text()
    assert committed == envoy_config.render("k8s-prod"), "stale: run make gen"
    (config,) = [c for c in _of(prod, "ConfigMap") if c["metadata"]["name"].startswith("envoy-config")]
    assert config["data"]["envoy.yaml"] == committed
    tls = envoy_config.load_target("k8s-prod")["tls"]
    (deployment,) = [d for d in _of(prod, "Deployment") if d["metadata"]["name"] == "envoy"]
    pod = _pod_spec(deployment)
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["tls"] == str(Path(tls["cert_chain"]).parent) == str(Path(tls["private_key"]).parent)
    assert volumes["tls"]["secret"]["secretName"] == "edge-tls"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    (service,) = [s for s in _of(prod, "Service") if s["metadata"]["name"] == "envoy"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(443, "http")]
