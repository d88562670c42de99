"""Production refuses development keys: the rules, and the real processes exiting at start."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from meshkit.config import DEV_MEDIA_SIGNING_KEYS, PROJECT_ROOT, Settings
from meshkit.secrets import REFUSED, InsecureConfiguration, Secret, refuse_development_keys
from playback_svc.settings import DEV_OFFLINE_MASTER, DEV_OFFLINE_SIGNING

PRODUCTION_MEDIA = "prod-2:9c8b7a-not-a-development-key"
PRODUCTION_SIGNING = "prod-ed2:CYo+hMnH3pbuFR6gUdsNV70vw9IS6rpDcAzuI1PhdhE="


def _media(value: str) -> Secret:
    return Secret("MEDIA_SIGNING_KEYS", value, DEV_MEDIA_SIGNING_KEYS, ring=True)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("", "MEDIA_SIGNING_KEYS is not set"),
        (DEV_MEDIA_SIGNING_KEYS, "development key(s) dev-1"),
        # A rotation ring that still verifies with the public development key is refused too.
        (f"{PRODUCTION_MEDIA},{DEV_MEDIA_SIGNING_KEYS}", "development key(s) dev-1"),
    ],
)
def test_production_refuses_a_missing_or_development_key(value: str, named: str) -> None:
    with pytest.raises(InsecureConfiguration, match="MESH_ENV") as refused:
        refuse_development_keys(Settings(mesh_env="production"), [_media(value)])
    assert named in str(refused.value)


def test_production_accepts_real_keys_and_development_accepts_anything() -> None:
    refuse_development_keys(Settings(mesh_env="production"), [_media(PRODUCTION_MEDIA)])
    refuse_development_keys(Settings(mesh_env="development"), [_media("")])


def test_production_is_the_default() -> None:
    assert Settings.model_fields["mesh_env"].default == "production"


def _start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module],
        env={"PATH": "/usr/bin:/bin", "METRICS_ENABLED": "false", **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("module", "env", "named"),
    [
        ("media_svc", {}, ["MEDIA_SIGNING_KEYS"]),
        (
            "playback_svc",
            {"MEDIA_SIGNING_KEYS": PRODUCTION_MEDIA},
            ["PLAYBACK_OFFLINE_MASTER_SECRET", "PLAYBACK_OFFLINE_SIGNING_KEYS"],
        ),
        (
            "playback_svc",
            {
                "MEDIA_SIGNING_KEYS": PRODUCTION_MEDIA,
                "PLAYBACK_OFFLINE_MASTER_SECRET": "a-real-master-secret",
                "PLAYBACK_OFFLINE_SIGNING_KEYS": f"{PRODUCTION_SIGNING},{DEV_OFFLINE_SIGNING}",
            },
            ["PLAYBACK_OFFLINE_SIGNING_KEYS holds the committed development key(s) dev-ed1"],
        ),
    ],
)
def test_a_service_in_production_exits_at_start_naming_each_bad_setting(
    module: str, env: dict[str, str], named: list[str]
) -> None:
    assert DEV_OFFLINE_MASTER not in env.values()
    done = _start(module, env)  # MESH_ENV unset: production
    assert done.returncode == REFUSED, done.stdout + done.stderr
    (line,) = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert line["level"] == "CRITICAL" and line["mesh_env"] == "production"
    for setting in named:
        assert setting in line["message"], line["message"]
