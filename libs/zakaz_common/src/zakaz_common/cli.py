"""`zakaz`: the operator's command (CONTRACT §1)."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from zakaz_common import control
from zakaz_common.backup import DEFAULT_KEEP
from zakaz_common.checks import CheckResult, run_checks
from zakaz_common.clickhouse import Warehouse, open_warehouse
from zakaz_common.errors import ZakazError
from zakaz_common.interrupts import Interrupted, handling_signals, interrupted
from zakaz_common.manifest import CONTRACT_SOURCES, SourceManifest, get_manifest, manifests
from zakaz_common.migrate import migrate as apply_migrations
from zakaz_common.migrate import pending
from zakaz_common.redact import configure_logging
from zakaz_common.runs import RunRequest, RunSummary, execute
from zakaz_common.settings import CoreSettings, WarehouseSettings, load_settings
from zakaz_common.status import source_statuses, status_view
from zakaz_common.timeutil import chunks, iso_msk, today_msk

#: The distribution whose version `zakaz --version` prints.
DISTRIBUTION = "zakaz-common"
#: Exit status of a command used wrongly (an unknown option, a bad value), as Click has it.
USAGE_EXIT = 2
#: Exit status of a command stopped by Ctrl-C: the shell's 128 + SIGINT.
INTERRUPTED_EXIT = 130


class ZakazGroup(TyperGroup):
    """The command group; every way in (`zakaz`, `python -m zakaz_common`, a test's runner)
    reports errors the same way: one `error:` line on stderr, exit 1, or 2 for a usage error."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command; exit with its status (or return it, as Click does, when not
        standalone)."""
        try:
            code = super().main(
                args=args,
                prog_name=prog_name or "zakaz",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except NoArgsIsHelpError as exc:
            sys.stdout.write(exc.format_message() + "\n")
            code = 0
        except UsageError as exc:
            what = _sentence(exc.format_message())
            _error_line(f"{what}{' ' if what.endswith('?') else '; '}see `{_help_of(exc)} --help`")
            code = USAGE_EXIT
        except ClickException as exc:
            _error_line(_sentence(exc.format_message()))
            code = exc.exit_code
        except typer.Abort:
            _error_line("stopped")
            code = INTERRUPTED_EXIT
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _sentence(message: str) -> str:
    """Click's message as one clause of ours: lower-case start, no full stop, one line."""
    parts = [p.strip().removesuffix(".") for p in _SENTENCE_END.split(message.strip())]
    return "; ".join(_lower_first(p) for p in parts if p)


#: Where one sentence of a Click message ends and the next starts.
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+|\n+")


def _lower_first(text: str) -> str:
    # "No such option" reads as a clause after "error:"; "SOURCE ..." or "'x' ..." stay.
    return text[:1].lower() + text[1:] if text[:2].istitle() else text


def _help_of(exc: UsageError) -> str:
    return exc.ctx.command_path if exc.ctx is not None else "zakaz"


def _error_line(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


app = typer.Typer(
    name="zakaz",
    cls=ZakazGroup,
    help="zakaz: tickets sold against ad spend, per city and show, every 15 minutes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: no boxes, and flags without a `<bool>` type beside them.
    rich_markup_mode=None,
)
out = Console()
err = Console(stderr=True)

SourceArg = Annotated[
    str, typer.Argument(metavar="SOURCE", help=f"one of {', '.join(CONTRACT_SOURCES)}")
]


def _day_option(text: str) -> Any:
    return typer.Option(metavar="YYYY-MM-DD", help=text, show_default=False)


def _date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date; use YYYY-MM-DD", param_hint=flag
        ) from None


def _known(source: str) -> str:
    """SOURCE as given, or a usage error when no source has that name.

    A contract source that is not installed here is not a usage error: `get_manifest` fails the
    command (exit 1) and says so.
    """
    installed = manifests()
    if source not in installed and source not in CONTRACT_SOURCES:
        known = ", ".join(installed) or "none"
        raise typer.BadParameter(
            f"unknown source {source!r}; installed sources: {known}", param_hint="SOURCE"
        )
    return source


def _fail(message: str, code: int = 1) -> typer.Exit:
    _error_line(message)
    return typer.Exit(code)


def _open() -> tuple[Warehouse, CoreSettings]:
    core = load_settings(CoreSettings)
    wh = open_warehouse(load_settings(WarehouseSettings), core)
    return wh, core


def _ready() -> tuple[Warehouse, CoreSettings]:
    """Open the warehouse and apply pending migrations (every command may be the first)."""
    wh, core = _open()
    if pending(wh):
        apply_migrations(wh)
    return wh, core


def _version(value: bool) -> None:
    if not value:
        return
    try:
        found = package_version(DISTRIBUTION)
    except PackageNotFoundError:
        found = "unknown (not installed as a package)"
    sys.stdout.write(f"zakaz {found}\n")
    raise typer.Exit(0)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at DEBUG")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="print the version and exit", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    configure_logging("DEBUG" if verbose else "WARNING")


@app.command()
def migrate() -> None:
    """Create or upgrade every table and view.

    Idempotent: safe to run on every start.
    """
    try:
        wh, _ = _open()
        report = apply_migrations(wh)
    except ZakazError as exc:
        raise _fail(str(exc)) from exc
    if report.applied:
        out.print(f"applied {len(report.applied)} migrations: {', '.join(report.applied)}")
    if report.cities_upserted or report.cities_retracted:
        out.print(
            f"dim_city: {report.cities_upserted} aliases written, {report.cities_retracted} removed"
        )
    if not report.changed:
        out.print(f"up to date ({wh.display})")


@app.command()
def run(
    source: SourceArg,
    since: Annotated[str | None, _day_option("the first day, Moscow time")] = None,
    to: Annotated[str | None, _day_option("the last day (default: today)")] = None,
    days: Annotated[
        int | None, typer.Option(metavar="N", min=1, help="the last N days", show_default=False)
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="read and transform, write nothing")
    ] = False,
) -> None:
    """One load of SOURCE, inline; prints a JSON summary.

    Exit 0 on success, 1 on failure, 130 or 143 if stopped. While `zakaz up` runs on this
    warehouse, the run is queued on its worker instead, and this command waits for it and
    prints the same summary.
    """
    _known(source)
    with handling_signals() as signals:
        try:
            request = RunRequest(_date(since, "--since"), _date(to, "--to"), days, dry_run)
            manifest = get_manifest(source)
            remote = control.running()
            if remote is not None:
                _run_through(remote, source, request)
                return
            wh, core = _ready()
            summary = execute(manifest, request, wh=wh, core=core, trigger="cli")
        except Interrupted as exc:
            raise _fail(str(exc), exc.exit_code) from exc
        except ZakazError as exc:
            raise _fail(str(exc)) from exc
        _print_json(summary.to_dict())
        if signals.signum is not None:
            raise typer.Exit(signals.exit_code)
        if not summary.ok:
            raise typer.Exit(1)


@app.command()
def backfill(
    source: SourceArg,
    since: Annotated[str, _day_option("the first day, Moscow time")],
    to: Annotated[str, _day_option("the last day")],
    restart: Annotated[
        bool, typer.Option("--restart", help="redo chunks that already succeeded")
    ] = False,
) -> None:
    """SOURCE over a long range, in day chunks; resumable.

    Shows a progress bar; run the same command again to resume after a stop or a failure.
    """
    _known(source)
    first, last = _date(since, "--since"), _date(to, "--to")
    if first is None or last is None:
        raise _fail("--since and --to are required")
    if first > last:
        raise _fail(f"--since {first} is after --to {last}")
    resume = f"zakaz backfill {source} --since {first} --to {last}"
    with handling_signals() as signals:
        try:
            RunRequest(since=first, to=last)  # the whole range within the bounds every run has
            manifest = get_manifest(source)
            wh, core = _ready()
            windows = chunks(first, last, manifest.backfill_chunk_days)
            done = set() if restart else _succeeded_windows(wh, source)
            failed = _backfill_chunks(manifest, windows, done, wh=wh, core=core, title=resume)
        except Interrupted as exc:
            err.print(_resume_hint(resume), highlight=False, soft_wrap=True)
            raise _fail(str(exc), exc.exit_code) from exc
        except ZakazError as exc:
            raise _fail(str(exc)) from exc
        _print_json(
            {
                "source": source,
                "chunks": len(windows),
                "failed": len(failed),
                "skipped": len([w for w in windows if w in done]),
            }
        )
        if signals.signum is not None:
            err.print(_resume_hint(resume), highlight=False, soft_wrap=True)
            raise typer.Exit(signals.exit_code)
        if failed:
            raise typer.Exit(1)


def _backfill_chunks(
    manifest: SourceManifest,
    windows: list[tuple[date, date]],
    done: set[tuple[date, date]],
    *,
    wh: Warehouse,
    core: CoreSettings,
    title: str,
) -> list[RunSummary]:
    """Run the chunks not in `done`; stops after the chunk a stop signal interrupted."""
    failed: list[RunSummary] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task(title.removeprefix("zakaz backfill "), total=len(windows))
        for a, b in windows:
            if (a, b) in done:
                progress.advance(task)
                continue
            summary = execute(
                manifest, RunRequest(since=a, to=b), wh=wh, core=core, trigger="backfill"
            )
            if not summary.ok:
                failed.append(summary)
                progress.console.print(
                    f"[red]{a}…{b}: {escape(summary.message)}[/red]", highlight=False
                )
            if isinstance(summary.error, Interrupted) or interrupted() is not None:
                break
            progress.advance(task)
    return failed


def _resume_hint(command: str) -> str:
    return (
        f"stopped; to resume, run the same command again: {command} "
        "(chunks that succeeded are skipped)"
    )


def _succeeded_windows(wh: Warehouse, source: str) -> set[tuple[date, date]]:
    rows = wh.rows(
        "SELECT params FROM meta_job_runs WHERE job = {job:String} AND status = 'success'",
        {"job": source},
    )
    found = set()
    for (params,) in rows:
        try:
            p = json.loads(params)
            if p.get("since") and p.get("to"):
                found.add((date.fromisoformat(p["since"]), date.fromisoformat(p["to"])))
        except (ValueError, TypeError, AttributeError):
            continue
    return found


@app.command()
def check(
    as_json: Annotated[bool, typer.Option("--json", help="print results as JSON")] = False,
) -> None:
    """Run the data-quality checks.

    Exit 1 if a check of severity `error` fails.
    """
    try:
        remote = control.running()
        if remote is not None:
            results = [CheckResult(**r) for r in remote.get("/local/check")]
        else:
            wh, _ = _ready()
            results = run_checks(wh, manifests().values())
    except ZakazError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        _print_json([r.__dict__ for r in results])
    else:
        # Names whole on one line; the detail wraps; nothing is cut short with an ellipsis.
        table = Table(
            title="zakaz check",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, 1, 0, 0),
        )
        table.add_column("check", no_wrap=True)
        for col in ("severity", "result"):
            table.add_column(col, overflow="fold")
        table.add_column("detail", overflow="fold")
        for r in results:
            mark = (
                "[green]ok[/green]"
                if r.ok
                else ("[red]FAIL[/red]" if r.severity == "error" else "[yellow]warn[/yellow]")
            )
            table.add_row(Text(r.name), r.severity, mark, Text(r.message))
        _terminal().print(table)
    if any(r.fails_command for r in results):
        raise typer.Exit(1)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Last run, freshness and queue state of every source.

    Times are Moscow time; --json gives every field, moments in ISO 8601 with +03:00.
    """
    try:
        remote = control.running()
        if remote is not None:
            rows = [control.status_from_json(r) for r in remote.get("/local/status")]
            where = f"{remote.get('/local/ping')['warehouse']}, through zakaz up (pid {remote.pid})"
            redis_url = "the redis of zakaz up"
        else:
            wh, core = _ready()
            rows = source_statuses(
                wh,
                manifests().values(),
                core.redis_url,
                redis_expected="redis_url" in core.model_fields_set,
            )
            where = wh.display
            redis_url = core.redis_url
    except ZakazError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        _print_json([r.__dict__ for r in rows])
        return
    console = _terminal()
    console.print(
        status_view(rows, where=where, redis_url=redis_url, width=console.width, today=today_msk())
    )


@app.command()
def demo() -> None:
    """What `make demo` runs: every source once against the sandbox.

    Starts the bundled sandbox upstreams, runs every source once, the checks, and prints the
    sales / spend / ROMI summary.
    """
    from zakaz_common.demo import run_demo

    configure_logging("ERROR")
    try:
        wh, core = _open()
        # Piped output gets rich's 80 columns; the summary tables read better wider.
        console = out if out.is_terminal else Console(width=150)
        result = run_demo(wh, core, console, workdir=core.data_dir / "demo-secrets")
    except ZakazError as exc:
        raise _fail(str(exc)) from exc
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def sql(
    query: Annotated[
        str,
        typer.Argument(
            metavar="QUERY", help='one read-only statement, e.g. "SELECT * FROM v_romi_kpi"'
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print rows as JSON objects")] = False,
) -> None:
    """Print the rows of one read-only query on the warehouse.

    SELECT, SHOW, DESCRIBE, EXISTS; nothing that writes.
    """
    try:
        remote = control.running()
        if remote is not None:
            result = remote.post("/local/sql", {"query": query})
        else:
            wh, _ = _ready()
            result = control.run_read_only(wh, query)
    except ZakazError as exc:
        raise _fail(str(exc)) from exc
    columns, rows = result["columns"], result["rows"]
    if as_json:
        _print_json([dict(zip(columns, row, strict=True)) for row in rows])
    else:
        table = Table(show_lines=False)
        for name in columns:
            # A value too wide for the terminal wraps; it is never cut short with an ellipsis.
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*(Text(_cell(v)) for v in row))
        _terminal().print(table)
        err.print(f"{len(rows)} rows" + (" (cut short)" if result.get("truncated") else ""))


@app.command()
def up(
    sandbox: Annotated[
        bool,
        typer.Option("--sandbox", help="against the bundled sandbox upstreams (no credentials)"),
    ] = False,
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="address to listen on")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="N", help="port of the status page and every API")
    ] = 8080,
) -> None:
    """The whole platform in one process; Ctrl-C stops it.

    Scheduler, workers, control APIs and health, with a private redis-server.
    """
    from zakaz_common.up import UpOptions, serve_platform

    configure_logging("WARNING")
    try:
        serve_platform(UpOptions(host=host, port=port, sandbox=sandbox), out)
    except ZakazError as exc:
        raise _fail(str(exc)) from exc


#: Seconds between two looks at a run queued on a running `zakaz up`.
REMOTE_POLL_SECONDS = 0.5


def _run_through(remote: control.Control, source: str, request: RunRequest) -> None:
    """Queue the run on the running `zakaz up`, wait for it, print its summary."""
    body = {
        "source": source,
        "since": request.since.isoformat() if request.since else None,
        "to": request.to.isoformat() if request.to else None,
        "days": request.days,
        "dry_run": request.dry_run,
    }
    run_id = remote.post("/local/runs", body)["run_id"]
    err.print(f"queued on zakaz up (pid {remote.pid}) as run {run_id}; waiting…", highlight=False)
    while True:
        if interrupted() is not None:
            err.print(f"stopped waiting; run {run_id} goes on in zakaz up", highlight=False)
            raise typer.Exit(1)
        state = remote.get(f"/local/runs/{run_id}")
        if state["state"] in {"finished", "failed", "unknown"}:
            break
        time.sleep(REMOTE_POLL_SECONDS)
    summary = state["summary"] or {"source": source, "run_id": run_id, "status": "error"}
    _print_json(summary)
    if summary.get("status") not in {"success", "dry_run"}:
        raise typer.Exit(1)


@app.command("gmail-auth")
def gmail_auth(
    port: Annotated[
        int, typer.Option(metavar="N", help="local port for the OAuth redirect (0: any free one)")
    ] = 0,
    browser: Annotated[
        bool,
        typer.Option(
            "--browser/--no-browser",
            help="open the consent page in a browser (the default), or only print its address",
            show_default=False,
        ),
    ] = True,
) -> None:
    """One-time Gmail consent; writes GMAIL_DIR/token.json.

    Runs the OAuth flow; the token file is written with mode 600.
    """
    try:
        from zakaz_gmail.oauth import gmail_auth as consent
        from zakaz_gmail.settings import get_settings
    except ImportError as exc:
        raise _fail(f"the gmail source is not installed in this environment: {exc}") from exc
    try:
        path = consent(get_settings().gmail_dir, port=port, open_browser=browser)
    except ZakazError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"token written to {path}")


@app.command("backup")
def backup_command(
    keep: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=1,
            help=f"backups to keep  [default: ZAKAZ_BACKUP_KEEP, else {DEFAULT_KEEP}]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Back up the warehouse and keep the newest N backups.

    A ClickHouse BACKUP to the backup disk.
    """
    from zakaz_common import backup as backups

    try:
        wh, _ = _ready()
        name = backups.backup(wh, keep=keep if keep is not None else backups.keep_setting())
        listed = backups.list_backups(wh)
    except ZakazError as exc:
        raise _fail(str(exc)) from exc
    _print_json({"backup": name, "kept": [b.name for b in listed]})


@app.command("restore")
def restore_command(
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="backup to restore; omit to list them")
    ] = None,
    into: Annotated[
        str | None, typer.Option(metavar="DATABASE", help="restore into this database (a drill)")
    ] = None,
) -> None:
    """Restore a backup, or list the backups.

    The current state is backed up first, so a restore can be undone.
    """
    from zakaz_common import backup as backups

    try:
        wh, _ = _open()
        if name is None:
            _print_json(
                [
                    {"name": b.name, "created_at": b.created_at, "size_bytes": b.size_bytes}
                    for b in backups.list_backups(wh)
                ]
            )
            return
        undo = backups.restore(wh, name, database=into)
    except ZakazError as exc:
        raise _fail(str(exc)) from exc
    _print_json({"restored": name, "into": into or wh.database, "undo_backup": undo})


@app.command()
def serve(
    service: Annotated[
        str,
        typer.Argument(metavar="SERVICE", help="a source name, health, scheduler or sandbox"),
    ],
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="address to listen on")] = "0.0.0.0",  # noqa: S104
    port: Annotated[int, typer.Option(metavar="N", help="port to listen on")] = 8000,
) -> None:
    """Run one service natively, exactly as its container does."""
    configure_logging("INFO")
    try:
        if service == "health":
            from zakaz_health.serve import serve as serve_health

            serve_health(host=host, port=port)
        elif service == "scheduler":
            from zakaz_common.scheduler import serve_scheduler

            serve_scheduler()
        elif service == "sandbox":
            from zakaz_sandbox.serve import serve as serve_sandbox

            serve_sandbox(host=host, port=port)
        else:
            from zakaz_common.worker import serve_source

            serve_source(get_manifest(service), host=host, port=port)
    except ImportError as exc:
        raise _fail(f"{service} is not installed in this environment: {exc}") from exc
    except ZakazError as exc:
        raise _fail(str(exc)) from exc


def _terminal() -> Console:
    """A console of this invocation: it reads COLUMNS now, not when the module was imported."""
    return Console()


def _cell(value: Any) -> str:
    """A value of `zakaz sql` as text; a moment in the same form as in JSON."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return iso_msk(value)
    return str(value)


def _json_default(value: Any) -> Any:
    """JSON for what `json` does not know: every moment as aware Moscow ISO 8601."""
    if isinstance(value, datetime):
        return iso_msk(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=_json_default, indent=2) + "\n")
    sys.stdout.flush()


def main() -> None:
    """Entry point of the `zakaz` command."""
    app()
