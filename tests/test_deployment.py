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
