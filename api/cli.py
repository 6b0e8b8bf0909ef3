"""The `switchboard` command line."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Any

import typer

from api.settings import get_settings
from core.users.models import Role

app = typer.Typer(help="Switchboard: omnichannel contact-centre bot platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Agent, supervisor and admin accounts.", no_args_is_help=True)
nlu_app = typer.Typer(help="Intent engine: train, evaluate, import/export Rasa data, parse.", no_args_is_help=True)
reports_app = typer.Typer(help="KPI reports' aggregates.", no_args_is_help=True)
attachments_app = typer.Typer(help="The attachment store's backends.", no_args_is_help=True)
contracts_app = typer.Typer(help="Customer contracts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(nlu_app, name="nlu")
app.add_typer(reports_app, name="reports")
app.add_typer(attachments_app, name="attachments")
app.add_typer(contracts_app, name="contracts")


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Interface to bind."),
          port: int = typer.Option(8000, help="Port to listen on."),
          workers: int = typer.Option(1, help="Worker processes (PostgreSQL only for more than one).")) -> None:
    """Serve the API, the web-chat demo page and the console."""
    import uvicorn

    _refuse_development_secret()
    if workers <= 1:
        uvicorn.run("api.app:app_factory", factory=True, host=host, port=port, workers=1, log_config=None,
                    proxy_headers=False)
        return
    import os
    import sys

    from uvicorn.config import STARTUP_FAILURE

    from api.logging_config import configure as configure_logging
    from api.supervisor import STATE_FILE_ENV, Supervisor, new_state_file

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)  # the master's own lines: worker starts and exits
    state_file = new_state_file()
    # The workers are spawned processes: they read their settings from this environment, the file's name included.
    os.environ[STATE_FILE_ENV] = str(state_file)
    config = uvicorn.Config("api.app:app_factory", factory=True, host=host, port=port, workers=workers,
                            log_config=None, proxy_headers=False,
                            timeout_worker_healthcheck=settings.worker_healthcheck_seconds)
    supervisor = Supervisor(config, [config.bind_socket()], state_file)
    supervisor.run()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        sys.exit(STARTUP_FAILURE)


def _refuse_development_secret() -> None:
    """Anyone can sign a console session with the published development key: only development mode may use it."""
    settings = get_settings()
    if settings.uses_development_secret and settings.environment != "development":
        typer.echo("error: refusing to serve with the development secret key, which signs sessions and tokens "
                   "anyone could forge. Set SWITCHBOARD_SECRET_KEY to a long random value (`switchboard init-env` "
                   "writes a .env with one), or set SWITCHBOARD_ENVIRONMENT=development on a developer's machine.",
                   err=True)
        raise typer.Exit(2)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply the migrations (creates the embedded SQLite database on first run)."""
    from core.attachments.store import open_store
    from core.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {settings.database_url.split('@')[-1]} is at {revision}")
    # Files stored by the old layout (directly under the data dir) move into the store's own folder.
    open_store(settings.attachments_root, Path(settings.data_dir))


@users_app.command("create")
def users_create(
    email: str = typer.Option(..., help="Login email."),
    name: str = typer.Option(..., help="Display name."),
    role: Role = typer.Option(Role.agent, help="agent, supervisor or admin."),
    queue: str | None = typer.Option(None, help="Queue (team) slug, e.g. billing."),
    language: str = typer.Option("en", help="en or ru."),
    password: str | None = typer.Option(None, help="Read from a prompt when not given."),
) -> None:
    """Create an account."""
    pwd = password or getpass.getpass("Password: ")
    if len(pwd) < 8:
        raise typer.BadParameter("the password needs at least 8 characters")

    async def run() -> int:
        from core.db.session import create_engine, create_sessionmaker
        from core.tickets import service as tickets
        from core.users import service as users

        engine = create_engine(get_settings().database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                team = await tickets.team_by_slug(session, queue) if queue else None
                user = await users.create(session, email=email, name=name, password=pwd, role=role,
                                          language=language, team=team)
                return user.id
        finally:
            await engine.dispose()

    from core.errors import DomainError

    try:
        user_id = asyncio.run(run())
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created user {user_id} ({email}, {role.value})")


@app.command("init-env")
def init_env(path: Path = typer.Argument(Path(".env"), help="The file to write (not overwritten).")) -> None:
    """Write a .env with fresh random secrets (sessions, REST channel key, web-chat identity key) if there is none."""
    import secrets

    if path.exists():
        typer.echo(f"{path} exists; left as it is")
        return
    values = {
        "SWITCHBOARD_SECRET_KEY": secrets.token_urlsafe(32),
        "SWITCHBOARD_CHANNELS__REST__API_KEY": secrets.token_urlsafe(24),
        "SWITCHBOARD_CHANNELS__WEBCHAT__IDENTITY_SECRET": secrets.token_urlsafe(32),
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    path.chmod(0o600)
    typer.echo(f"wrote {path}: REST channel key (X-Api-Key) {values['SWITCHBOARD_CHANNELS__REST__API_KEY']}")


@app.command()
def demo(if_empty: bool = typer.Option(False, "--if-empty", help="Only into a database without users."),
         if_enabled: bool = typer.Option(
             False, "--if-enabled", help="Only when SWITCHBOARD_DEMO=1 (the container image starts this way: "
                                         "the demo accounts' passwords are public).")) -> None:
    """Load demo accounts, customers, tickets and an order."""
    from api.demo import load_demo
    from api.nlu_wiring import build_nlu_engine
    from core.db.session import create_engine, create_sessionmaker

    settings = get_settings()
    if if_enabled and not settings.demo:
        typer.echo("SWITCHBOARD_DEMO is not set to 1; demo data not loaded")
        return

    async def run() -> list[str]:
        engine = create_engine(settings.database_url)
        try:
            accounts = await load_demo(create_sessionmaker(engine), await build_nlu_engine(settings), settings,
                                       if_empty=if_empty)
            return [f"  {a.role.value:<10} {a.email:<26} {a.password}" for a in accounts]
        finally:
            await engine.dispose()

    lines = asyncio.run(run())
    if lines:
        typer.echo("demo data loaded; accounts:\n" + "\n".join(lines))
    else:
        typer.echo("database already has users; demo data not loaded")


@reports_app.command("rebuild")
def reports_rebuild(
    restart: bool = typer.Option(False, "--restart", help="Start over even if a rebuild in the same time zone was "
                                                          "interrupted (by default it goes on from where it was)."),
    wait_seconds: float = typer.Option(60.0, help="How long to wait for the KPI job's lease (another instance "
                                                  "folding) before giving up."),
) -> None:
    """Rebuild the KPI aggregates from the tickets, in the configured kpi_time_zone (after a time-zone change, or
    on a database that had tickets before the KPI tables existed). Chunk by chunk, each committed: interrupted, it
    goes on from where it was when run again (or by the KPI job). Safe while the app runs."""
    import time

    from core.db.lease import exclusive
    from core.db.session import create_engine, create_sessionmaker
    from core.kpis.fold import JOB_NAME, KpiFold

    settings = get_settings()

    def show(done: int, total: int) -> None:
        share = 100.0 * done / total if total else 100.0
        typer.echo(f"\r{done}/{total} tickets ({share:.1f}%)", nl=False)

    async def run() -> int:
        engine = create_engine(settings.database_url)
        try:
            deadline = time.monotonic() + wait_seconds
            while True:
                async with exclusive(engine, JOB_NAME) as lease:
                    if lease.held:
                        fold = KpiFold(create_sessionmaker(engine), time_zone=settings.core.kpi_time_zone,
                                       csat_low=settings.core.csat_low_score)
                        return await fold.rebuild(resume=not restart, progress=show)
                if time.monotonic() > deadline:
                    typer.echo("error: the KPI job's lease stayed taken; try again", err=True)
                    raise typer.Exit(1)
                await asyncio.sleep(0.5)
        finally:
            await engine.dispose()

    started = time.monotonic()
    walked = asyncio.run(run())
    typer.echo(f"\nKPI aggregates rebuilt in {settings.core.kpi_time_zone}: {walked} tickets in "
               f"{time.monotonic() - started:.1f} s")


@attachments_app.command("migrate")
def attachments_migrate(
    to: str = typer.Option(..., "--to", help="The backend to copy into: postgres or s3 (or local)."),
    source: str = typer.Option("local", "--from", help="The backend to copy from (default: the local folder)."),
) -> None:
    """Copy every attachment into another backend, with progress. Resumable and safe to re-run: a key already in
    the target is skipped, each file is copied whole or not at all, the source is left as it was. Then set
    SWITCHBOARD_ATTACHMENTS__BACKEND to the target (and run it once more to pick up files that arrived between)."""
    from core.attachments.backends import open_backend
    from core.attachments.migrate import MigrationProgress, migrate

    kinds = ("local", "postgres", "s3")
    if to not in kinds or source not in kinds or to == source:
        raise typer.BadParameter(f"--to and --from must be two different ones of {', '.join(kinds)}")
    settings = get_settings()

    def show(state: MigrationProgress) -> None:
        typer.echo(f"\r{state.done}/{state.total} files: {state.copied} copied ({state.bytes_copied / 1e6:.1f} MB), "
                   f"{state.skipped} already there, {state.failed} failed", nl=False)

    async def run() -> MigrationProgress:
        opened = []
        try:
            for kind in (source, to):
                opened.append(await open_backend(settings.attachments, root=settings.attachments_root,
                                                 database_url=settings.database_url, kind=kind))
            return await migrate(opened[0], opened[1], show)
        finally:
            for backend in opened:
                await backend.close()

    state = asyncio.run(run())
    typer.echo("")
    if state.failed:
        typer.echo(f"error: {state.failed} files were not copied (see the log); run the command again", err=True)
        raise typer.Exit(1)


@contracts_app.command("import")
def contracts_import(path: Path = typer.Argument(..., help="A CSV file (see the README for its columns).")) -> None:
    """Import contracts from CSV: every row, or none when any row is wrong (errors printed by line)."""
    import time

    from core.clock import SYSTEM_CLOCK
    from core.contracts import importer

    settings = get_settings()
    try:
        text = importer.decode(path.read_bytes())
    except (OSError, importer.CsvImportError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    def show(done: int, total: int) -> None:
        typer.echo(f"\r{done}/{total} rows ({100.0 * done / total:.1f}%)", nl=False)

    async def run(session: Any) -> Any:
        return await importer.import_csv(session, text, settings=settings.core, now=SYSTEM_CLOCK.now(), actor=None,
                                         progress=show)

    started = time.monotonic()
    result = asyncio.run(_with_session(run))
    if result.error_count:
        for error in result.errors:
            typer.echo(f"line {error.line}: {error.error}", err=True)
        more = result.error_count - len(result.errors)
        typer.echo(f"{result.error_count} error(s){f' ({more} not shown)' if more else ''}; nothing was imported",
                   err=True)
        raise typer.Exit(1)
    typer.echo(f"\nimported {result.imported} contracts ({result.created} new, {result.updated} updated) in "
               f"{time.monotonic() - started:.1f} s")


async def _with_session(work: Any) -> Any:
    from core.db.session import create_engine, create_sessionmaker

    engine = create_engine(get_settings().database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


@nlu_app.callback()
def nlu_data_from_database() -> None:
    """The intents admins edit live in the database: commands that read training data read them from there."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from core.nlu_admin import service as nlu_admin
    from nlu import cli as nlu_cli
    from nlu.data import dump_rasa_yaml

    async def export(session: Any) -> str:
        # Exactly the database's data set (empty when it has no intents: `export-rasa` then refuses, and never
        # writes the shipped files in its place).
        return dump_rasa_yaml(await nlu_admin.training_data(session))

    try:
        text = asyncio.run(_with_session(export))
    except (OperationalError, ProgrammingError):
        return  # no migrated database yet: the shipped (or imported) files are the data
    nlu_cli.WORKING_DATA.parent.mkdir(parents=True, exist_ok=True)
    nlu_cli.WORKING_DATA.write_text(text, encoding="utf-8")


@nlu_app.command("import-rasa")
def nlu_import_rasa(path: Path,
                    replace: bool = typer.Option(False, "--replace",
                                                 help="Delete every intent, synonym, regex and lookup first."),
                    merge: bool = typer.Option(False, "--merge", help="Add to the intents in the database."),
                    dry_run: bool = typer.Option(False, "--dry-run", help="List what would change; write nothing."),
                    ) -> None:
    """Import Rasa NLU data (a YAML, legacy JSON or 1.x Markdown file, or a directory with subfolders) into the
    database (what the console edits and training uses). A database with intents needs --merge or --replace;
    duplicates and conflicts are listed first, and an error imports nothing."""
    from core.errors import DomainError
    from core.nlu_admin import service as nlu_admin
    from nlu.data import load_training_data
    from nlu.errors import NluError

    if replace and merge:
        typer.echo("error: --replace and --merge exclude each other", err=True)
        raise typer.Exit(2)
    try:
        data = load_training_data(path)
    except NluError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    async def run(session: Any) -> dict[str, Any]:
        return await nlu_admin.import_data(session, data, source="import", actor=None, dry_run=dry_run,
                                           mode="replace" if replace else "merge" if merge else None)

    try:
        report = asyncio.run(_with_session(run))
    except DomainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for note in report["conversions"]:
        typer.echo(f"converted: {note}", err=True)
    for kind in ("warnings", "duplicates", "conflicts"):
        for line in report[kind]:
            typer.echo(f"{kind.rstrip('s')}: {line}", err=True)
    typer.echo(f"{'would import' if dry_run else 'imported'} {report['intents']} new intents, "
               f"{report['examples']} examples, {report['responses']} answers, {report['synonyms']} synonym "
               f"values, {report['regexes']} regexes, {report['lookups']} lookup values from {path} "
               f"({len(report['duplicates'])} duplicates and {len(report['conflicts'])} conflicts skipped)")


def _mount_nlu_commands() -> None:
    """Add nlu.cli's commands to the `nlu` group, once however often it is called (main, the tests)."""
    if any(c.callback is not None and c.callback.__module__ == "nlu.cli" for c in nlu_app.registered_commands):
        return
    from nlu import cli as nlu_cli

    nlu_app.command()(nlu_cli.train)
    nlu_app.command()(nlu_cli.evaluate)
    nlu_app.command("export-rasa")(nlu_cli.export_rasa_command)
    nlu_app.command()(nlu_cli.parse)


def main() -> None:
    """The `switchboard` command.

    The NLU commands are mounted here, not when this module is imported: `serve --workers N` spawns its workers,
    and a spawned process imports the `switchboard` script (and so this module) before uvicorn's health-ping
    thread starts in it. With nlu.cli (scikit-learn) imported at module level that took 2.5 s of CPU, 6.5 s on a
    busy machine - past the master's 5 s ping timeout, so every replacement worker was killed while starting.
    They are mounted only for a command line that names them: every other command (`db upgrade`, `serve`, `users`,
    a spawned worker) then starts without scikit-learn and SciPy (measured: `switchboard users --help` 5.6-6.2 s of
    CPU with them, see the design record "Heavy imports on use"). `switchboard --help` still lists the `nlu` group.
    """
    import sys

    if "nlu" in sys.argv[1:]:
        _mount_nlu_commands()
    app()
