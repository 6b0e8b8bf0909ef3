"""The container image and docker-compose.yml start safely: no demo accounts unless asked, no default secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]+\}")  # compose refuses to start while the variable is unset or empty


def image_command() -> str:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    cmd = [line for line in lines if line.startswith("CMD ")]
    assert len(cmd) == 1
    return " ".join(json.loads(cmd[0].removeprefix("CMD ")))


def test_the_image_loads_the_demo_only_when_asked_and_then_serves() -> None:
    steps = [step.strip() for step in image_command().removeprefix("sh -c ").split("&&")]
    assert steps[0] == "switchboard db upgrade"
    demo = [step for step in steps if step.startswith("switchboard demo")]
    assert demo == ["switchboard demo --if-enabled --if-empty"]  # SWITCHBOARD_DEMO=1, and an empty database
    assert steps[-1].startswith("switchboard serve ")  # which refuses the development secret key


def test_compose_refuses_to_start_without_the_secrets() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    app = compose["services"]["app"]["environment"]
    for name in ("SWITCHBOARD_SECRET_KEY", "SWITCHBOARD_CHANNELS__REST__API_KEY",
                 "SWITCHBOARD_CHANNELS__WEBCHAT__IDENTITY_SECRET"):
        assert REQUIRED.fullmatch(app[name]) and REQUIRED.fullmatch(app[name]).group(1) == name, name
    assert [m.group(1) for m in REQUIRED.finditer(app["SWITCHBOARD_DATABASE_URL"])] == ["POSTGRES_PASSWORD"]
    postgres = compose["services"]["postgres"]["environment"]
    assert REQUIRED.fullmatch(postgres["POSTGRES_PASSWORD"]).group(1) == "POSTGRES_PASSWORD"
    assert app["SWITCHBOARD_DEMO"] == "${SWITCHBOARD_DEMO:-0}"
    # Every secret a deployment sets is named in the file's opening comment.
    header = (ROOT / "docker-compose.yml").read_text(encoding="utf-8").split("services:")[0]
    for name in ("SWITCHBOARD_SECRET_KEY", "SWITCHBOARD_CHANNELS__REST__API_KEY",
                 "SWITCHBOARD_CHANNELS__WEBCHAT__IDENTITY_SECRET", "POSTGRES_PASSWORD", "SWITCHBOARD_DEMO"):
        assert name in header, name


def test_two_replicas_behind_the_proxy_share_no_volume() -> None:
    """Past one machine (issue 21): the replicas differ only in their own data volume; attachments and model
    versions live in PostgreSQL; only the proxy is published, and it passes both replicas WebSockets and SSE."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    replicas = {name: s for name, s in services.items() if s.get("build") == "."}
    assert sorted(replicas) == ["app", "app-2"]
    volumes = [set(v.split(":")[0] for v in s.get("volumes", [])) for s in replicas.values()]
    assert all(len(v) == 1 for v in volumes) and not set.intersection(*volumes)
    assert all(not (volume.startswith(("./", "/"))) for v in volumes for volume in v)  # no bind-mounted shared disk
    first, second = (s["environment"] for s in replicas.values())
    assert first == second and first["SWITCHBOARD_ATTACHMENTS__BACKEND"] == "postgres"
    assert first["SWITCHBOARD_REDIS_URL"].startswith("redis://")
    assert all("ports" not in s for s in replicas.values())  # reached only through the proxy
    assert services["app-2"]["depends_on"]["app"]["condition"] == "service_healthy"  # one migrates at a time

    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:") and proxy["ports"] == ["127.0.0.1:8000:8000"]
    mounted = dict(v.split(":")[:2] for v in proxy["volumes"])
    caddyfile = ROOT / "deploy" / "Caddyfile"
    assert mounted["./deploy/Caddyfile"] == "/etc/caddy/Caddyfile"
    text = caddyfile.read_text(encoding="utf-8")
    upstreams = re.search(r"reverse_proxy\s+([^{]+)\{", text)
    assert upstreams is not None and upstreams.group(1).split() == ["app:8000", "app-2:8000"]
    assert "flush_interval -1" in text  # SSE streamed as it comes (WebSocket upgrades pass through by default)
    assert "health_uri /health" in text
    # The app believes X-Forwarded-For from the proxy's fixed address only.
    address = proxy["networks"]["switchboard"]["ipv4_address"]
    assert json.loads(first["SWITCHBOARD_TRUSTED_PROXIES"]) == [f"{address}/32"]
