"""The `switchboard` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from api import cli
from api.settings import DEVELOPMENT_SECRET_KEY, get_settings
from tests.support.net import free_port
from tests.support.waiting import wait_for_sync

BIN = Path(sys.executable).parent / "switchboard"


def cli_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The environment of a command run in tmp_path: its own database and data; what decides the secret key's and
    the demo's fate is only what the test gives (nothing inherited)."""
    inherited = {k: v for k, v in os.environ.items()
                 if k not in {"SWITCHBOARD_SECRET_KEY", "SWITCHBOARD_ENVIRONMENT", "SWITCHBOARD_DEMO"}}
    return inherited | {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "SWITCHBOARD_NLU__ENGINE": "keyword",
        "SWITCHBOARD_LOG_JSON": "false",
    } | overrides


def run_process(args: list[str], tmp_path: Path, stdin: str | None = None, **env: str
                ) -> subprocess.CompletedProcess[str]:
    """The installed `switchboard` script in a process of its own (its entry point, imports and exit codes)."""
    return subprocess.run([str(BIN), *args], env=cli_env(tmp_path, **env), cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, input=stdin, check=False)


def run(args: list[str], tmp_path: Path, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """The same command in this process (typer's runner): the environment is exactly cli_env's (nothing else of
    os.environ is seen while it runs), the working directory is tmp_path (.env is read from there) and the settings
    are read afresh. A process of its own costs ~2 s of CPU in imports alone, and the module ran ~25 of them;
    test_db_upgrade_users_and_demo and the `serve` tests still run the installed script."""
    environment = cli_env(tmp_path, **env)
    unset: dict[str, str | None] = {k: None for k in os.environ if k not in environment}
    here = Path.cwd()
    if "nlu" in args:
        cli._mount_nlu_commands()  # what main() does for such a command line
    get_settings.cache_clear()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(cli.app, args, input=stdin, env=unset | environment, catch_exceptions=False)
    finally:
        os.chdir(here)
        get_settings.cache_clear()
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def migrated(tmp_path: Path, sqlite_template: Path) -> None:
    """The database `db upgrade` would create, copied from the session's migrated template (tests/conftest.py):
    each `db upgrade` here was a process migrating from empty. The two test_db_upgrade_* tests still run it."""
    shutil.copy(sqlite_template, tmp_path / "cli.sqlite3")


def user_count(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM users").fetchone()[0])


@pytest.mark.skipif(not BIN.exists(), reason="the package is not installed into this venv")
def test_db_upgrade_users_and_demo(tmp_path: Path) -> None:
    # The installed script in processes of its own: a success and a refusal (exit code 1, the reason on stderr).
    r = run_process(["db", "upgrade"], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run(["users", "create", "--email", "Boss@Example.com", "--name", "Босс", "--role", "admin",
             "--password", "long-enough-1"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "created user 1" in r.stdout
    r = run_process(["users", "create", "--email", "boss@example.com", "--name", "x", "--password", "long-enough-1"],
                    tmp_path)
    assert r.returncode == 1
    assert "already exists" in r.stderr
    r = run(["users", "create", "--email", "a@b.c", "--name", "x", "--password", "short"], tmp_path)
    assert r.returncode != 0
    r = run(["users", "create", "--email", "a@b.c", "--name", "x", "--queue", "nope", "--password", "long-enough"],
            tmp_path)
    assert r.returncode == 1
    assert "not found" in r.stderr
    # The demo loads only into a database without users.
    r = run(["demo", "--if-empty"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "already has users" in r.stdout
    r = run(["demo"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "agent@example.com" in r.stdout
    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 5
        assert db.execute("SELECT count(*) FROM tickets").fetchone()[0] == 5
        assert db.execute("SELECT status FROM orders WHERE number = 'ORD-100200'").fetchone()[0] == "shipped"


@pytest.mark.skipif(not BIN.exists(), reason="the package is not installed into this venv")
def test_db_upgrade_moves_attachments_of_the_old_layout(tmp_path: Path) -> None:
    """Files stored directly under the data dir (next to the database) move into <data_dir>/attachments/."""
    key = "uploads/ab/0123456789abcdef0123456789abcdef/guide.pdf"
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(b"%PDF guide")
    r = run(["db", "upgrade"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "attachments" / key).read_bytes() == b"%PDF guide"
    assert not (tmp_path / "uploads").exists() and (tmp_path / "cli.sqlite3").exists()


@pytest.mark.skipif(not BIN.exists(), reason="the package is not installed into this venv")
def test_nlu_commands_use_the_database_intents(tmp_path: Path, sqlite_template: Path) -> None:
    migrated(tmp_path, sqlite_template)
    data = tmp_path / "mine.yml"
    lines = ["version: '3.1'", "nlu:"]
    for intent, words in {"greet_me": ["hello there", "good morning", "hi friend", "hey you", "good evening",
                                       "привет всем", "доброе утро", "здравствуйте", "добрый вечер", "хай"],
                          "bye_me": ["bye now", "see you", "goodbye", "farewell", "see ya later",
                                     "пока", "до свидания", "всего доброго", "до встречи", "прощайте"]}.items():
        lines += [f"- intent: {intent}", "  examples: |", *[f"    - {w}" for w in words]]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run(["nlu", "import-rasa", str(data)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "imported 2 new intents, 20 examples" in r.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text("nlu:\n- intent: x\n  examples: |\n    - a\n   - b: [\n", encoding="utf-8")
    r = run(["nlu", "import-rasa", str(broken)], tmp_path)
    assert r.returncode == 1
    assert "line" in r.stderr
    # Training reads the intents from the database (not the shipped data).
    r = run(["nlu", "train", "--model-dir", str(tmp_path / "models")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2 intents" in r.stdout
    r = run(["nlu", "parse", "-", "--model-dir", str(tmp_path / "models")], tmp_path, stdin="good morning\nпока\n")
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["intent"] for x in results] == ["greet_me", "bye_me"]
    assert {x["language"] for x in results} == {"en", "ru"}


@pytest.mark.skipif(not BIN.exists(), reason="the package is not installed into this venv")
def test_init_env_writes_random_secrets_once(tmp_path: Path) -> None:
    r = run(["init-env"], tmp_path)
    assert r.returncode == 0, r.stderr
    env = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines())
    assert set(env) == {"SWITCHBOARD_SECRET_KEY", "SWITCHBOARD_CHANNELS__REST__API_KEY",
                        "SWITCHBOARD_CHANNELS__WEBCHAT__IDENTITY_SECRET"}
    assert len(env["SWITCHBOARD_SECRET_KEY"]) >= 40
    assert env["SWITCHBOARD_CHANNELS__REST__API_KEY"] in r.stdout
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    before = (tmp_path / ".env").read_text()
    assert "left as it is" in run(["init-env"], tmp_path).stdout
    assert (tmp_path / ".env").read_text() == before


@pytest.mark.skipif(not BIN.exists(), reason="the package is not installed into this venv")
def test_demo_data_is_loaded_at_start_up_only_when_asked(tmp_path: Path, sqlite_template: Path) -> None:
    """The container's start-up (`demo --if-enabled --if-empty`) puts accounts with public passwords into an empty
    database only with SWITCHBOARD_DEMO=1: a production database starts empty."""
    migrated(tmp_path, sqlite_template)
    r = run(["demo", "--if-enabled", "--if-empty"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "SWITCHBOARD_DEMO" in r.stdout and "not loaded" in r.stdout
    assert user_count(tmp_path) == 0
    r = run(["demo", "--if-enabled", "--if-empty"], tmp_path, SWITCHBOARD_DEMO="1")
    assert r.returncode == 0, r.stderr
    assert "admin@example.com" in r.stdout and user_count(tmp_path) == 4


@pytest.mark.skipif(not BIN.exists(), reason="the package is not installed into this venv")
@pytest.mark.parametrize(("env", "workers"), [
    pytest.param({}, "1", id="unset"),
    pytest.param({"SWITCHBOARD_SECRET_KEY": DEVELOPMENT_SECRET_KEY}, "2", id="given-explicitly-several-workers"),
    pytest.param({"SWITCHBOARD_ENVIRONMENT": "production"}, "1", id="production")])
def test_serve_refuses_the_development_secret_key(tmp_path: Path, env: dict[str, str], workers: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def served(*args: object, **kwargs: object) -> None:
        raise AssertionError("serve went on to start uvicorn with the development secret key")

    monkeypatch.setattr(uvicorn, "run", served)
    monkeypatch.setattr(uvicorn, "Config", served)
    r = run(["serve", "--port", str(free_port()), "--workers", workers], tmp_path, **env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "refusing to serve with the development secret key" in r.stderr
    assert "SWITCHBOARD_SECRET_KEY" in r.stderr and "switchboard init-env" in r.stderr


@pytest.mark.skipif(not BIN.exists(), reason="the package is not installed into this venv")
@pytest.mark.parametrize("setup", ["init-env", "development mode"])
def test_serve_starts_with_a_key_of_its_own_or_in_development_mode(tmp_path: Path, setup: str,
                                                                 sqlite_template: Path) -> None:
    """`make run` on a fresh clone: `init-env` writes a .env with a random key, which `serve` reads; or a developer
    who says SWITCHBOARD_ENVIRONMENT=development may keep the development key."""
    env: dict[str, str] = {}
    if setup == "init-env":
        assert run(["init-env"], tmp_path).returncode == 0
    else:
        env["SWITCHBOARD_ENVIRONMENT"] = "development"
    migrated(tmp_path, sqlite_template)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=cli_env(tmp_path, **env),
                                   cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)

    def serving() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {log.read_text()[-2000:]}")
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200

    try:
        wait_for_sync(serving, "the server answering /health", timeout=60, ignore=(httpx.HTTPError,))
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.skipif(not BIN.exists(), reason="the package is not installed into this venv")
def test_nlu_import_of_a_rasa_project_and_export_of_an_empty_database(tmp_path: Path, sqlite_template: Path) -> None:
    """Issue 18: exporting an empty database wrote the shipped 23 intents; retrieval intents were a 90-line
    traceback; a database with intents took an import without saying merge or replace."""
    migrated(tmp_path, sqlite_template)
    fixtures = Path(__file__).parents[1] / "nlu" / "fixtures" / "rasa"
    r = run(["nlu", "export-rasa", str(tmp_path / "out.yml")], tmp_path)
    assert r.returncode == 1 and "no training data to export" in r.stderr
    assert not (tmp_path / "out.yml").exists()
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu:\n- intent: faq/ask_x\n  examples: |\n    - hi\n- intent: faq/Ask_Y\n  examples: |\n"
                   "    - yo\n", encoding="utf-8")
    r = run(["nlu", "import-rasa", str(bad)], tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"'faq/Ask_Y' ({bad}, line 7)" in r.stderr and "group/name" in r.stderr
    r = run(["nlu", "import-rasa", str(fixtures / "retrieval")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "imported 5 new intents, 16 examples, 5 answers" in r.stdout
    r = run(["nlu", "import-rasa", str(fixtures / "sara_like")], tmp_path)
    assert r.returncode == 1 and "choose merge" in r.stderr
    r = run(["nlu", "import-rasa", "--merge", str(fixtures / "sara_like")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "duplicate: 'hello'" in r.stderr or "duplicate: example 'hello'" in r.stderr
    r = run(["nlu", "export-rasa", str(tmp_path / "project")], tmp_path)
    assert r.returncode == 0, r.stderr
    nlu_text = (tmp_path / "project" / "data" / "nlu.yml").read_text(encoding="utf-8")
    assert "- intent: faq/ask_channels" in nlu_text and '"role": "departure"' in nlu_text
    assert "- lookup: product" in nlu_text and "турция" not in nlu_text
    assert "language: en" in (tmp_path / "project" / "config.yml").read_text(encoding="utf-8")


def test_mounting_the_nlu_commands_twice_mounts_them_once() -> None:
    cli._mount_nlu_commands()
    before = len(cli.nlu_app.registered_commands)
    cli._mount_nlu_commands()
    names = [c.name or c.callback.__name__ for c in cli.nlu_app.registered_commands if c.callback]
    assert len(cli.nlu_app.registered_commands) == before
    assert len(names) == len(set(names)) and {"train", "parse", "export-rasa"} <= set(names)
