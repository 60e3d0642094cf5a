"""`gpulease`: the command line. Admin commands work on the store; the rest talk to the API like any client.

Admin commands run the same use cases as the API, in a Runtime of their own, as the local operator ("cli"):
whoever holds the database URL runs the facility. They are an entry point, so they read the settings from the
environment (GPULEASE_*) and hand them to that Runtime.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, NoReturn, cast

import httpx
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gpulease.observability import configure_logging
from gpulease.services.context import Actor, Role
from gpulease.services.errors import ServiceError
from gpulease.services.limits import CPU_MODEL
from gpulease.settings import Settings, get_settings

app = typer.Typer(
    help="gpulease: rent out GPU compute with export-control compliance built in.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
nodes_app = typer.Typer(help="Inventory: nodes and their GPUs.", no_args_is_help=True)
prices_app = typer.Typer(help="The price book.", no_args_is_help=True)
customers_app = typer.Typer(help="Customers and their KYC.", no_args_is_help=True)
leases_app = typer.Typer(help="Leases.", no_args_is_help=True)
invoices_app = typer.Typer(help="Invoices and usage.", no_args_is_help=True)
lists_app = typer.Typer(help="Restricted-party lists.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
reviews_app = typer.Typer(help="The compliance review queue.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhooks: where lease and budget events are delivered.", no_args_is_help=True)
for sub, name in (
    (db_app, "db"),
    (keys_app, "keys"),
    (nodes_app, "nodes"),
    (prices_app, "prices"),
    (customers_app, "customers"),
    (leases_app, "leases"),
    (invoices_app, "invoices"),
    (lists_app, "lists"),
    (audit_app, "audit"),
    (reviews_app, "reviews"),
    (webhooks_app, "webhooks"),
):
    app.add_typer(sub, name=name)

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


# --------------------------------------------------------------------------------------------- store side


if TYPE_CHECKING:
    from gpulease.runtime import Runtime

ADMIN = Actor(Role.OPERATOR, name="cli")
# Screening, list loads and the compliance file are the compliance role's (README, "Roles"): the local CLI, which
# holds the database itself, acts as a compliance officer for them.
COMPLIANCE_ADMIN = Actor(Role.COMPLIANCE, name="cli")


def _store_ready() -> Settings:
    """The settings, with the embedded store created (or brought up to date) on first use, in a data folder made
    for it; a database named by GPULEASE_DATABASE_URL is migrated by `gpulease db upgrade` only."""
    from gpulease.store.db import upgrade

    settings = get_settings()
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings.db_url)
    return settings


def _runtime() -> Runtime:
    """A Runtime for one admin command. It does not supervise runs: stopping them is the server's job."""
    from gpulease.runtime import Runtime

    return Runtime(_store_ready(), supervises_runs=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (Alembic) at GPULEASE_DATABASE_URL."""
    from gpulease.store.db import upgrade

    url = get_settings().db_url
    upgrade(url)
    console.print(f"schema up to date at [bold]{_redact(url)}[/]")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="operator | compliance | customer")],
    customer: Annotated[int | None, typer.Option(help="customer id (customer keys)")] = None,
    label: Annotated[str | None, typer.Option(help="a note to recognise the key by")] = None,
) -> None:
    """Create an API key and print it (alone: it is shown only this once)."""
    from gpulease.services import keys

    rt = _runtime()
    try:
        key = rt.perform(keys.create_key, actor=ADMIN, role=role, customer_id=customer, label=label)
    except ServiceError as e:
        _fail(e.detail)
    finally:
        rt.close()
    typer.echo(key)


def _can_listen(host: str, port: int) -> None:
    """Refuse, with a sentence, an address the server could not listen on: before anything is set up or printed."""
    import errno
    import socket

    if not 1 <= port <= 65535:
        _fail(f"--port must be between 1 and 65535, got {port}")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        _fail(f"cannot listen on {host!r}: {getattr(e, 'strerror', None) or e}")
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(addr)
        except OSError as e:
            why = "it is in use by another program" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
            _fail(f"cannot listen on {host} port {port}: {why}. Choose another port with --port (make demo PORT=8001)")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    upgrade_db: Annotated[bool, typer.Option("--upgrade-db/--no-upgrade-db", help="run migrations first")] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="server processes sharing the port (PostgreSQL only): one Python process uses one core at most",
        ),
    ] = 1,
) -> None:
    """Run the API server, the dashboard and the lease clock."""
    import uvicorn

    from gpulease.api.app import create_app
    from gpulease.runtime import Runtime
    from gpulease.services import screening
    from gpulease.store.db import upgrade

    _can_listen(host, port)
    settings = get_settings()
    if workers > 1 and not settings.db_url.startswith("postgresql"):
        _fail(
            "--workers above 1 needs PostgreSQL (GPULEASE_DATABASE_URL=postgresql://…): SQLite has one writer at a "
            "time and no way to tell the other processes what changed"
        )
    if upgrade_db:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings.db_url)
    rt = Runtime(settings)
    with rt.work() as w:
        screening.seed_bundled_lists(w.session, w.now)
    configure_logging(settings.log_json)
    if workers == 1:
        uvicorn.run(create_app(rt), host=host, port=port, log_config=None)
        return
    # Each worker is a `gpulease serve` of its own on a socket of its own on the port (api/listen.py): uvicorn's
    # process manager starts them and starts a dead one again; its own calendars kept in step by NOTIFY, one of
    # them holding the lease clock (docs/deploy.md).
    rt.close()
    import socket

    from uvicorn.supervisors import Multiprocess

    from gpulease.api.listen import ReusePort

    config = uvicorn.Config(
        "gpulease.api.app:worker_app", factory=True, workers=workers, host=host, port=port, log_config=None
    )
    Multiprocess(config, sockets=[cast("socket.socket", ReusePort(host, port))]).run()


DEMO_KEYS_FILE = "demo-keys.json"  # in the data folder: the demo's keys, so that a second run shows the same ones


def _kept_demo_keys(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _keep_demo_keys(path: Path, demo_keys: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(demo_keys, f, indent=2)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Seed a demo facility (16x8 A100-80GB, 4x8 H100, 2 CPU nodes of 192 cores), the bundled lists; print keys; serve.

    The keys are kept in the data folder (demo-keys.json, readable by its owner only): a second run on the same
    folder shows the same keys, and says which ones it had to make anew."""
    import uvicorn

    from gpulease.api.app import create_app
    from gpulease.runtime import Runtime
    from gpulease.services import customers, screening
    from gpulease.services import demo as demo_svc
    from gpulease.services.context import SYSTEM
    from gpulease.store.db import upgrade

    _can_listen(host, port)  # before anything is made or printed
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)
    rt = Runtime(settings)
    with console.status("loading the bundled restricted-party lists…"):
        with rt.work() as w:
            screening.seed_bundled_lists(w.session, w.now)
        rt.screening.index()
    kept_at = settings.data_dir / DEMO_KEYS_FILE
    with rt.work() as w:
        seeded = demo_svc.seed_facility(w)
        customer_id = customers.seed_demo_customers(w) if seeded else customers.first_cleared_customer(w)
        customer_name = (
            None if customer_id is None else customers.get_customer(w, actor=SYSTEM, customer_id=customer_id).legal_name
        )
        issued = demo_svc.demo_keys(w, customer_id, _kept_demo_keys(kept_at))
    _keep_demo_keys(kept_at, issued.keys)
    base = f"http://{host}:{port}"
    table = Table(title="gpulease demo", show_header=False)
    table.add_row("database", _redact(settings.db_url))
    table.add_row("API", f"{base}/api/v1  (OpenAPI: /openapi.json, docs: /docs)")
    table.add_row("dashboard", f"{base}/")
    for role, key in issued.keys.items():
        whose = f" for customer {customer_id} ({customer_name})" if role == "customer" else ""
        state = "new" if role in issued.minted else "kept from an earlier run"
        table.add_row(f"{role} key", f"{key}  [dim]{state}{escape(whose)}[/]")
    console.print(table)
    if not issued.minted:
        console.print(f"[dim]the same keys as the last run on this data folder ({kept_at})[/]")
    elif len(issued.minted) < len(issued.keys):
        console.print(f"new keys for: {', '.join(issued.minted)} (the kept ones no longer worked)")
    console.print(
        "Try: [bold]curl -H 'Authorization: Bearer <operator key>' "
        f"'{base}/api/v1/availability?gpu_model=A100-80GB&gpu_count=8'[/]  (the customer quickstart: README.md)"
    )
    configure_logging(settings.log_json)
    uvicorn.run(create_app(rt), host=host, port=port, log_config=None)


@app.command()
def tick() -> None:
    """Advance every lease to the current time once (the server does this every second)."""
    from gpulease.runtime import Runtime

    rt = Runtime(_store_ready())  # the clock's own step: it also stops runs of leases it closed
    r = rt.tick()
    console.print(f"started {r.started}, ended {r.ended}, expired {r.expired}")
    rt.close()


@lists_app.command("load")
def lists_load(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="list files: consolidated.csv/.json, sdn.csv or cons_prim.csv (their alias and address files "
            "beside them are picked up), UN XML, dpl.txt",
            exists=True,
            dir_okay=False,
        ),
    ],
    allow_shrink: Annotated[
        bool, typer.Option("--allow-shrink", help="load even if it removes many of a list's entries or empties it")
    ] = False,
    partial: Annotated[
        bool, typer.Option("--partial", help="accept an OFAC sdn.csv/cons_prim.csv without its alias/address files")
    ] = False,
    published: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="the lists' publication date, if the files lack it")
    ] = None,
) -> None:
    """Load newer list files atomically, then re-screen every customer."""
    from gpulease.compliance.lists.changes import ListShrinkError
    from gpulease.compliance.model import ListFormatError
    from gpulease.services import screening

    rt = _runtime()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as bar:
        task = bar.add_task("reading", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        try:
            result = rt.perform(
                screening.load_lists,
                actor=COMPLIANCE_ADMIN,
                paths=[str(f) for f in files],
                progress=progress,
                on_phase=lambda p: bar.update(task, description=p),
                allow_partial=partial,
                allow_shrink=allow_shrink,
                max_shrink=rt.settings.lists_max_shrink,
                published=published.date() if published else None,
            )
        except ListFormatError as e:
            bar.stop()
            rt.close()
            _fail(f"{e} — nothing was changed; the lists in force stay in force")
        except ListShrinkError as e:
            bar.stop()
            rt.close()
            _fail(f"refused: {e}\nnothing was changed; give --allow-shrink to load it anyway")
        except ServiceError as e:
            bar.stop()
            rt.close()
            _fail(e.detail)
    console.print(
        f"list version [bold]{result.version_id}[/] in force: {sum(result.counts.values())} entries ("
        + ", ".join(f"{k} {n}" for k, n in sorted(result.counts.items()))
        + ")"
    )
    for change in result.changes:
        console.print(f"  {change.describe(shown=5)}")
    for source in result.sources:
        for gap in source.get("missing_entry_rows") or ():
            console.print(
                f"  [yellow]warning[/] {source['source']}: {gap['rows']} {gap['kind']} rows in {gap['file']} name "
                f"{len(gap['entry_numbers'])} entries missing from the primary file (not one publication)"
            )
        if source.get("source") == "enrichment" and source.get("unresolved"):
            console.print(
                f"  [yellow]warning[/] enrichment: {source['unresolved']} aliases name no listed entry: "
                + "; ".join(source.get("unresolved_names") or [])
            )
    console.print(
        f"re-screened {result.rescreened} customers; {len(result.newly_hit)} newly hit"
        + (f" (customers {', '.join(str(c) for c in result.newly_hit)})" if result.newly_hit else "")
        + f"; {result.suspended_leases} leases suspended"
    )
    rt.close()


@lists_app.command("status")
def lists_status() -> None:
    """Each list in force with its publication date (warned when old), then every version and its sources."""
    from gpulease.services import screening

    rt = _runtime()
    max_age = rt.settings.lists_max_age_days
    with rt.work() as w:
        today = w.now.date()
        versions = [
            (v.id, v.in_force, v.loaded_at, dict(v.counts), list(v.sources), screening.list_status(v, today, max_age))
            for v in screening.list_versions(w, actor=ADMIN)
        ]
    rt.close()
    if not versions:
        _fail(
            f"no lists loaded yet in the store at {_redact(rt.settings.db_url)}: run `gpulease serve`/`demo` (they "
            "load the bundled lists) or `gpulease lists load`. This command reads the store itself, not the server "
            "at GPULEASE_API_URL: a server with another store is read with GPULEASE_DATA_DIR or "
            "GPULEASE_DATABASE_URL set as the server has them"
        )
    current = next((v for v in versions if v[1]), versions[0])
    t = _plain_table(f"lists in force (version {current[0]})")
    for col in ("list", "entries", "source", "published", "age"):
        t.add_column(col, justify="right" if col == "entries" else "left", no_wrap=col != "source")
    stale = 0
    for r in current[5]:
        stale += bool(r.warning)
        age = "unknown" if r.published is None else f"{r.age_days} days"
        t.add_row(
            r.list, f"{r.entries:,}", r.source, r.published or "unknown", f"[yellow]{age}[/]" if r.warning else age
        )
    console.print(t)
    if stale:  # one sentence for all of them, not the same advice on every row
        console.print(
            f"[yellow]{stale} of {len(current[5])} lists were published more than {max_age} days ago or on an "
            "unknown date: load the current publications (`gpulease lists load FILE…`)[/]"
        )
    t = _plain_table("restricted-party list versions")
    for col in ("version", "in force", "loaded (UTC)", "entries"):
        t.add_column(col, no_wrap=True)
    t.add_column("files", overflow="fold")
    for vid, in_force, loaded_at, counts, sources, _ in versions:
        t.add_row(
            str(vid),
            "yes" if in_force else "",
            _when(loaded_at, seconds=False),
            f"{sum(counts.values()):,}",
            ", ".join(_source_file(x) for x in sources),
        )
    console.print(t)


def _source_file(source: dict[str, Any]) -> str:
    """A source's files by their main file's name: "bundled:ofac-sdn-2023-12/sdn.csv, …/add.csv, …" → "sdn.csv
    (+3)", its alias, address and remarks files counted."""
    files = [f.strip() for f in str(source.get("file") or source.get("source") or "").split(", ")]
    name = files[0].removeprefix("bundled:").rsplit("/", 1)[-1]
    return name + (f" (+{len(files) - 1})" if len(files) > 1 else "")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="a checkpoint file kept elsewhere (`gpulease audit checkpoint` output or a copy of the data "
            "folder's audit-checkpoints.jsonl); repeatable",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    public_key: Annotated[
        list[str] | None,
        typer.Option("--public-key", help="a trusted key, as `gpulease audit public-key` prints it; repeatable"),
    ] = None,
) -> None:
    """Check the hash chain and every signed checkpoint; exit 1 naming the first broken record or reason."""
    from rich.markup import escape

    from gpulease.services import audit_trail

    rt = _runtime()
    try:
        result = rt.perform(
            audit_trail.verify,
            actor=ADMIN,
            log=rt.audit_log,
            files=checkpoint or [],
            public_keys=public_key or [],
        )
    except ServiceError as e:
        _fail(e.detail)
    finally:
        rt.close()
    if result.ok:
        more = f", {result.pending} more waiting to be sealed" if result.pending else ""
        console.print(
            f"[green]audit chain intact[/]: {result.records} records{more}; "
            f"{result.checkpoints} signed checkpoint{'' if result.checkpoints == 1 else 's'} agree"
        )
        if result.checkpoints and not result.signatures_checked:
            err.print(
                "[yellow]warning:[/] checkpoint signatures were not checked: no signing key in the data folder "
                "and no --public-key"
            )
        return
    where = f" at record {result.broken_seq}" if result.broken_seq else ""
    err.print(f"[bold red]audit chain broken[/]{where}: {escape(result.problem or '')}", soft_wrap=True)
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON line instead of the signed note")] = False,
) -> None:
    """Seal what has committed and print the signed checkpoint of the head; keep it somewhere else."""
    from gpulease.services import audit_trail

    rt = _runtime()
    try:
        cp = audit_trail.checkpoint(actor=ADMIN, log=rt.audit_log)
    except ServiceError as e:
        _fail(e.detail)
    finally:
        rt.close()
    typer.echo(cp.to_json() if as_json else cp.note().rstrip("\n"))


@audit_app.command("public-key")
def audit_public_key() -> None:
    """Print the key that checkpoints are signed with, for `gpulease audit verify --public-key` elsewhere."""
    from gpulease.services import audit_trail

    rt = _runtime()
    try:
        typer.echo(audit_trail.public_key(actor=ADMIN, log=rt.audit_log))
    except ServiceError as e:
        _fail(e.detail)
    finally:
        rt.close()


@app.command()
def screen(
    name: Annotated[str, typer.Argument(help="the name to screen, any script")],
    country: Annotated[str | None, typer.Option(help="ISO country code, e.g. CN")] = None,
    address: Annotated[str | None, typer.Option(help="address or city")] = None,
    date_of_birth: Annotated[
        str | None, typer.Option("--date-of-birth", help="an individual's date of birth, YYYY-MM-DD or YYYY")
    ] = None,
    nationality: Annotated[str | None, typer.Option(help="an individual's nationality, ISO code")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON like POST /api/v1/screen")] = False,
) -> None:
    """Screen one name against the lists in force (the bundled lists if none were loaded)."""
    from gpulease.services.screening import screen_name

    rt = _runtime()
    try:
        result = rt.perform(  # the lists in force; the bundled ones are seeded on first use
            screen_name,
            actor=COMPLIANCE_ADMIN,
            name=name,
            country=country,
            address=address,
            date_of_birth=date_of_birth,
            nationality=nationality,
        )
    except ServiceError as e:
        _fail(e.detail)
    finally:
        rt.close()
    body = result.to_dict()
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    colour = {"cleared": "green", "review": "yellow", "denied": "red"}[body["decision"]]
    console.print(f"[bold {colour}]{body['decision']}[/] {escape(name)}")
    for reason in body["reasons"]:
        console.print(f"  {escape(reason)}", soft_wrap=True)
    for h in body["hits"]:
        _print_hit(h)


def _print_hit(h: dict[str, Any]) -> None:
    """One list hit as a compliance officer reads it: the entry and the name that matched, the outcome and the
    rule behind it, what the listing means (programmes, Federal Register notice, licence requirement and policy),
    what tells the listed party apart (addresses, identifiers, birth dates, nationalities), and why it matched."""
    console.print()
    console.print(
        f"[bold]{escape(h['list'])} {escape(h['entry_id'])}[/] {escape(h['name'])}: score {h['score']:.1f}",
        soft_wrap=True,
    )
    t = Table(show_header=False, box=None, pad_edge=False, padding=(0, 1))
    t.add_column(style="dim", no_wrap=True)
    t.add_column(overflow="fold")
    enrichment = h.get("enrichment") or {}
    matched = f"{h['matched_name']!r} ({h['matched_kind']})"
    if enrichment:
        matched += f": {enrichment.get('kind')}, source {enrichment.get('source_url')} ({enrichment.get('note')})"
    rows: list[tuple[str, str | None]] = [
        ("list", h.get("list_name")),
        ("matched", matched),
        ("outcome", f"{h['outcome']}: {h['rule']}"),
        ("restriction", h.get("restriction")),
        ("programmes", ", ".join(h.get("programs") or [])),
        ("Federal Register", h.get("federal_register")),
        ("listed on", h.get("listing_date")),
        ("licence", h.get("license_requirement")),
        ("licence policy", h.get("license_policy")),
        ("addresses", "; ".join(_address(a) for a in h.get("addresses") or [])),
        ("identifiers", "; ".join(_identifier(i) for i in h.get("identifiers") or [])),
        ("born", ", ".join(h.get("dates_of_birth") or [])),
        ("nationality", ", ".join(h.get("nationalities") or [])),
        ("why", "\n".join(h.get("reasons") or [])),
        ("source", h.get("source_url")),
    ]
    for label, value in rows:
        if value:
            t.add_row(label, escape(str(value)))
    console.print(t)


def _address(a: dict[str, Any]) -> str:
    return ", ".join(str(a[k]) for k in ("street", "city", "state", "postal_code", "country") if a.get(k))


def _identifier(i: dict[str, Any]) -> str:
    return f"{i.get('kind')} {i.get('value')}" + (f" ({i['country']})" if i.get("country") else "")


def _names_dialect(header: str) -> str:
    """The delimiter of a CSV of names, from its header line: a comma, or the semicolon or tab that spreadsheets
    write where the comma is the decimal separator ("Name;Country" from a German or French Excel)."""
    fields = {d: [c.strip().strip('"').lower() for c in header.split(d)] for d in (",", ";", "\t")}
    for d, cols in fields.items():
        if "name" in cols:
            return d
    return ","


class NamesCsv(NamedTuple):
    rows: list[dict[str, str]]
    fieldnames: list[str]  # the header as written
    columns: dict[str, str]  # "name" (and "country" when there is one) → the column holding it
    delimiter: str


def _read_names_csv(infile: Path) -> NamesCsv:
    """The rows of a CSV of names (the csv module's dialect: a field holding a comma is quoted), the header as
    written, its delimiter, and which columns are `name` and `country` (told by name whatever the case and
    spacing: "Name", " Country "); or `error: …` naming the line that cannot be read: a row with more fields than
    the header (an unquoted comma), a quote left open, bytes that are not UTF-8."""
    rows: list[dict[str, str]] = []
    reader: csv.DictReader[str] | None = None
    try:
        with infile.open(newline="", encoding="utf-8-sig") as f:
            delimiter = _names_dialect(f.readline())
            f.seek(0)  # utf-8-sig skips a byte-order mark again
            reader = csv.DictReader(f, delimiter=delimiter)
            fieldnames = list(reader.fieldnames or [])
            columns = {c.strip().lower(): c for c in reversed(fieldnames)}  # the first of two "name" columns
            if "name" not in columns:
                _fail(f"{infile} has no 'name' column in its first line (columns: {', '.join(fieldnames) or 'none'})")
            for row in reader:
                extra = row.pop(None, None)
                if extra:
                    sep = "a semicolon" if delimiter == ";" else "a tab" if delimiter == "\t" else "a comma"
                    _fail(
                        f"{infile}, line {reader.line_num}: {len(fieldnames) + len(extra)} fields where the header "
                        f"has {len(fieldnames)}; a name holding {sep} must be in double quotes "
                        '(e.g. "Acme, Inc.",US)'
                    )
                rows.append({k: v or "" for k, v in row.items()})
    except UnicodeDecodeError as e:
        line = 1 + e.object[: e.start].count(b"\n") if isinstance(e.object, bytes) else None
        _fail(f"{infile}{f', line {line}' if line else ''}: not UTF-8 text ({e.reason})")
    except csv.Error as e:
        _fail(f"{infile}, line {reader.line_num if reader else 1}: {e}")
    except OSError as e:
        _fail(f"cannot read {infile}: {e.strerror or e}")
    return NamesCsv(rows, fieldnames, {k: columns[k] for k in ("name", "country") if k in columns}, delimiter)


@app.command("screen-file")
def screen_file(
    infile: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="CSV with a name column (and country): comma, semicolon or tab separated"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="where to write the results CSV")],
) -> None:
    """Screen every row of a CSV (column name, optional country); adds decision, top_score, top_entry, top_list."""
    from gpulease.services.screening import screen_row

    rows, fieldnames, columns, delimiter = _read_names_csv(infile)
    try:
        f = out.open("w", newline="", encoding="utf-8")
    except OSError as e:
        _fail(f"cannot write {out}: {e.strerror or e}")
    rt = _runtime()
    index = rt.screening.index()
    rt.close()
    fields = [*fieldnames, "decision", "top_score", "top_entry", "top_list"]
    counts: dict[str, int] = {}
    with (
        f,
        Progress(TextColumn("screening"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err) as bar,
    ):
        w = csv.DictWriter(f, fieldnames=fields, delimiter=delimiter)  # opens in the spreadsheet it came from
        w.writeheader()
        task = bar.add_task("screening", total=len(rows))
        for row in rows:
            res = screen_row(index, {k: row[c] for k, c in columns.items()})
            counts[res["decision"]] = counts.get(res["decision"], 0) + 1
            w.writerow({**row, **res})
            bar.advance(task)
    console.print(f"{len(rows)} names screened → {out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


# --------------------------------------------------------------------------------------------- API side


class Api:
    def __init__(self) -> None:
        self.url = os.environ.get("GPULEASE_API_URL", "http://127.0.0.1:8000").rstrip("/")
        key = (os.environ.get("GPULEASE_API_KEY") or "").strip()
        if not key or any(c.isspace() for c in key):
            _fail("set GPULEASE_API_KEY (and GPULEASE_API_URL if the server is not at http://127.0.0.1:8000)")
        self.client = httpx.Client(
            base_url=self.url + "/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    RETRIES = 4  # after a dropped connection, a timeout, a 5xx, a 429 or an idempotent request still in progress

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """One API call. Changes carry an Idempotency-Key, so retrying them after a failure is safe."""
        headers = dict(kw.pop("headers", None) or {})
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            headers.setdefault("Idempotency-Key", f"cli-{uuid.uuid4()}")
        r: httpx.Response | None = None
        for attempt in range(self.RETRIES + 1):
            try:
                r = self.client.request(method, path, headers=headers, **kw)
            except httpx.InvalidURL as e:
                _fail(f"that cannot be asked of the API: {e}")
            except httpx.ConnectError:
                if attempt == self.RETRIES:
                    _fail(f"cannot reach the gpulease server at {self.url}; is `gpulease serve` running?")
            except httpx.TransportError as e:
                if attempt == self.RETRIES:
                    _fail(f"the connection to {self.url} failed: {e}")
            else:
                retry_in_progress = r.status_code == 409 and "idempotency-in-progress" in r.text
                if r.status_code < 500 and r.status_code != 429 and not retry_in_progress:
                    break
                if attempt == self.RETRIES:
                    break
            time.sleep(min(8.0, float(r.headers.get("retry-after", 0)) if r is not None else 0) or 0.5 * 2**attempt)
        assert r is not None
        if r.status_code >= 400:
            try:
                p = r.json()
            except ValueError:
                _fail(f"HTTP {r.status_code}: {r.text}")
            _fail(f"{p.get('title', 'Error')} ({r.status_code}): {p.get('detail', r.text)}")  # with the earliest start
        if r.headers.get("content-type", "").startswith("application/json"):
            return r.json()
        return r.text


# Short headers for long field names (the JSON keeps the names): a header wider than its values would be cut.
_HEADERS = {
    "cancel_free_hours": "free (h)",  # cancelling is free until this many hours before the start
    "currency": "ccy",
    "cancel_fee_fraction": "late fee",
    "preemption_notice_s": "notice (s)",
    "compliance_status": "compliance",
    "customer_id": "customer",
}


def _plain_table(title: str | None = None) -> Table:
    """The CLI's tables: no frame, one space between columns, so a row reads at 80 columns instead of being cut
    to "fra1-a10…"."""
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=0)


def _print_table(rows: list[dict[str, Any]], cols: list[str], title: str | None = None) -> None:
    t = _plain_table(title)
    for c in cols:
        t.add_column(_HEADERS.get(c, c))
    for r in rows:  # times (created_at, next_attempt_at, …) as every other table writes them, not raw ISO 8601
        t.add_row(*[_when(r.get(c)) if c.endswith("_at") and r.get(c) else _cell(r.get(c)) for c in cols])
    console.print(t)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return ", ".join(_cell(x) for x in v)
    if isinstance(v, dict):
        return " ".join(f"{k}={_cell(x)}" for k, x in v.items())
    return str(v)


JsonOpt = Annotated[bool, typer.Option("--json", help="print the API's JSON")]
CustomerIdArg = Annotated[int, typer.Argument(help="the customer's id (`gpulease customers list`)")]
MyCustomerArg = Annotated[int | None, typer.Argument(help="customer id (default: a customer key's own)")]
LeaseIdArg = Annotated[int, typer.Argument(help="the lease's id (`gpulease leases list`)")]
NodeIdArg = Annotated[int, typer.Argument(help="the node's id (`gpulease nodes list`)")]
KeyIdArg = Annotated[int, typer.Argument(help="the key's id (`gpulease keys list`)")]
ReviewIdArg = Annotated[int, typer.Argument(help="the review's id (`gpulease reviews list`)")]
WebhookIdArg = Annotated[int, typer.Argument(help="the webhook's id (`gpulease webhooks list`)")]
# The KYC fields `customers add` and `customers update` take, each said once.
LocalNameOpt = Annotated[str | None, typer.Option(help="the legal name in the home country's script, e.g. 科大讯飞")]
AddressOpt = Annotated[str | None, typer.Option(help="registered address (street, city, country)")]
IncorporatedOpt = Annotated[str | None, typer.Option(help="date of incorporation, YYYY-MM-DD (a red-flag input)")]
EmailDomainOpt = Annotated[str | None, typer.Option(help="the domain the customer writes from, e.g. example.com")]
WebsiteOpt = Annotated[str | None, typer.Option(help="the customer's website, e.g. https://example.com")]
ParentOpt = Annotated[str | None, typer.Option(help="the legal name of the parent company, screened too")]
EndUseOpt = Annotated[str | None, typer.Option(help="what the compute is for, in a sentence (a red-flag input)")]
RequestedGpusOpt = Annotated[int | None, typer.Option(help="GPUs it expects to use (a red-flag input)")]


def _out(
    data: Any, as_json: bool, cols: list[str], title: str | None = None, shape: Callable[[Any], Any] | None = None
) -> None:
    """The API's JSON as is, or a table (after `shape` makes its cells readable)."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    data = shape(copy.deepcopy(data)) if shape else data
    _print_table(data if isinstance(data, list) else [data], cols, title)


NODE_COLS = ["id", "site", "cluster", "name", "GPUs", "state", "backend"]
CPU_NODE_COLS = ["id", "site", "cluster", "name", "GPUs", "CPUs", "state", "backend"]


def _print_nodes(data: Any, as_json: bool) -> None:
    """Nodes as a table; where a node's CPUs are described, a CPUs column too (leasable cores of all)."""
    rows = data if isinstance(data, list) else [data]
    cols = CPU_NODE_COLS if any(r.get("cpu_cores") for r in rows) else NODE_COLS

    def shape(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in rows:
            r["GPUs"] = f"{r['gpu_count']}×{r['gpu_model']}" if r["gpu_count"] else "none"
            r["CPUs"] = f"{r['leasable_cores']}/{r['cpu_cores']}c {r['cpu_model']}" if r.get("cpu_cores") else ""
        return rows

    _out(data if as_json else rows, as_json, cols, shape=shape)


@nodes_app.command("add")
def nodes_add(
    site: Annotated[str, typer.Argument(help="the site (building) it stands in; made on first use")],
    cluster: Annotated[str, typer.Argument(help="its cluster at that site; made on first use")],
    name: Annotated[str, typer.Argument(help="the node's host name, unique in the cluster")],
    gpu_model: Annotated[str | None, typer.Argument(help="its GPUs' model; none for a CPU node")] = None,
    gpu_count: Annotated[int, typer.Option(help="GPUs on the node")] = 8,
    backend: Annotated[str, typer.Option(help="what runs the customers' work there: local | ray | slurm")] = "local",
    cpu_model: Annotated[str | None, typer.Option(help="its CPUs' model (a CPU node, or a GPU node's CPUs)")] = None,
    cpu_cores: Annotated[int | None, typer.Option(help="physical cores, all sockets together")] = None,
    memory_gib: Annotated[int | None, typer.Option(help="memory, GiB")] = None,
    sockets: Annotated[int | None, typer.Option(help="default: cores / the model's cores per socket")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a GPU node, or a CPU node (--cpu-model, --cpu-cores, --memory-gib and no GPU model); its site and
    cluster are created on first use."""
    body: dict[str, Any] = {"site": site, "cluster": cluster, "name": name, "backend": backend}
    if gpu_model is not None:
        body.update(gpu_model=gpu_model, gpu_count=gpu_count)
    for k, v in (("cpu_model", cpu_model), ("cpu_cores", cpu_cores), ("memory_gib", memory_gib), ("sockets", sockets)):
        if v is not None:
            body[k] = v
    _print_nodes(Api().call("POST", "/nodes", json=body), as_json)


@nodes_app.command("list")
def nodes_list(
    gpu_model: Annotated[str | None, typer.Option(help="only nodes with GPUs of this model")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The inventory: every node with its GPUs (or CPUs), state and backend."""
    _print_nodes(Api().call("GET", "/nodes", params={"gpu_model": gpu_model} if gpu_model else {}), as_json)


@nodes_app.command("drain")
def nodes_drain(node_id: NodeIdArg, as_json: JsonOpt = False) -> None:
    """No new leases on this node; running leases run to their end."""
    _print_nodes(Api().call("POST", f"/nodes/{node_id}/drain"), as_json)


@nodes_app.command("state")
def nodes_state(
    node_id: NodeIdArg,
    state: Annotated[str, typer.Argument(help="available | draining | down")],
    reason: Annotated[str | None, typer.Option(help="why (marking down: in the alert and the lease events)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a node available, drain it, or mark it down (its leases are moved to free GPUs or ended)."""
    body: dict[str, Any] = {"state": state}
    if reason is not None:
        body["reason"] = reason
    data = Api().call("PUT", f"/nodes/{node_id}/state", json=body)
    _print_nodes(data, as_json)
    if not as_json and (data.get("moved") or data.get("ended")):
        console.print(f"leases moved to other GPUs: {data['moved'] or 'none'}; ended: {data['ended'] or 'none'}")


@nodes_app.command("down")
def nodes_down(
    node_id: NodeIdArg,
    reason: Annotated[str | None, typer.Option(help="why: in the alert and the lease events")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A node failed: move its leases to free GPUs of the same model, or end them (interruptible ones end)."""
    nodes_state(node_id, "down", reason=reason, as_json=as_json)


@nodes_app.command("remove")
def nodes_remove(node_id: NodeIdArg) -> None:
    """Take a node out of the inventory (refused while it holds live leases)."""
    Api().call("DELETE", f"/nodes/{node_id}")
    console.print(f"node {node_id} removed")


PRICE_COLS = [
    "model",
    "plan",
    "rate",
    "unit",
    "currency",
    "cancel_free_hours",
    "cancel_fee_fraction",
    "preemption_notice_s",
]


@prices_app.command("list")
def prices_list(as_json: JsonOpt = False) -> None:
    """The price book: every model's rate per plan, its cancellation terms and preemption notice."""
    _out(Api().call("GET", "/prices"), as_json, PRICE_COLS, "price book", shape=_price_rows)


def _price_rows(data: Any) -> Any:
    for r in data if isinstance(data, list) else [data]:
        r["model"] = r.get("gpu_model") or r.get("cpu_model")
        if r.get("gib_rate") not in (None, "0.00"):
            r["rate"] = f"{r['rate']} (+ {r['gib_rate']}/GiB)"
    return data


@prices_app.command("set")
def prices_set(
    model: Annotated[str, typer.Argument(help="a GPU model, or a CPU model (priced per core)")],
    plan: Annotated[str, typer.Argument(help="on_demand | reserved | long_term | interruptible")],
    rate: Annotated[str, typer.Argument(help="a decimal such as 2.50, in the plan's unit (long_term: per month)")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code of the rate")] = "USD",
    gib_rate: Annotated[str | None, typer.Option(help="a CPU model: per GiB of memory, in the rate's unit")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a rate: per GPU-hour for a GPU model, per core-hour for a CPU model (per GPU- or core-month for
    long_term). New leases only."""
    key = "cpu_model" if re.fullmatch(CPU_MODEL, model) else "gpu_model"
    body: dict[str, Any] = {key: model, "plan": plan, "rate": rate, "currency": currency}
    if gib_rate is not None:
        body["gib_rate"] = gib_rate
    _out(Api().call("PUT", "/prices", json=body), as_json, PRICE_COLS, shape=_price_rows)


CUSTOMER_COLS = ["id", "legal_name", "local_name", "country", "compliance_status"]


@customers_app.command("add")
def customers_add(
    legal_name: Annotated[
        str, typer.Argument(help="the registered legal name, in Latin script (--local-name: the other)")
    ],
    country: Annotated[str, typer.Argument(help="ISO 3166-1 alpha-2 country of incorporation, e.g. US, SG, DE")],
    local_name: LocalNameOpt = None,
    address: AddressOpt = None,
    incorporated_on: IncorporatedOpt = None,
    email_domain: EmailDomainOpt = None,
    website: WebsiteOpt = None,
    parent: ParentOpt = None,
    owner: Annotated[list[str] | None, typer.Option(help="NAME=PERCENT, repeatable")] = None,
    end_use: EndUseOpt = None,
    requested_gpus: RequestedGpusOpt = None,
    officer: Annotated[
        list[str] | None, typer.Option(help="NAME[;DATE_OF_BIRTH[;NATIONALITY]], an individual officer, repeatable")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a customer with its KYC; it is screened at once."""
    owners = []
    for o in owner or []:
        name, _, pct = o.rpartition("=")
        try:
            share = float(pct)
        except ValueError:
            share = None
        if not name or share is None:
            _fail(f'--owner takes NAME=PERCENT, e.g. "Acme Holdings LLC=60", got {o!r}')
        owners.append({"name": name, "percent": share})
    body = {
        "legal_name": legal_name,
        "country": country,
        "local_name": local_name,
        "address": address,
        "incorporated_on": incorporated_on,
        "email_domain": email_domain,
        "website": website,
        "parent": parent,
        "owners": owners,
        "end_use": end_use,
        "requested_gpus": requested_gpus,
        "officers": [_person(f) for f in officer or []],
    }
    _out(
        Api().call("POST", "/customers", json={k: v for k, v in body.items() if v not in (None, [])}),
        as_json,
        CUSTOMER_COLS,
    )


def _person(text: str) -> dict[str, str]:
    name, dob, nationality = [*text.split(";"), "", ""][:3]
    out = {"name": name.strip()}
    if dob.strip():
        out["date_of_birth"] = dob.strip()
    if nationality.strip():
        out["nationality"] = nationality.strip()
    return out


@customers_app.command("list")
def customers_list(as_json: JsonOpt = False) -> None:
    """Customers with their compliance status (a customer key sees itself)."""
    _out(Api().call("GET", "/customers"), as_json, CUSTOMER_COLS)


@customers_app.command("screening")
def customers_screening(customer_id: CustomerIdArg, as_json: JsonOpt = False) -> None:
    """Why a customer has its compliance status: hits, ownership paths, red flags."""
    data = Api().call("GET", f"/customers/{customer_id}/screening")
    if as_json or "name_hits" not in data:  # a customer's own key sees its status only
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    console.print(
        f"customer {data['customer_id']}: [bold]{escape(data['compliance_status'])}[/] "
        f"(screened {_when(data['at'])}, list version {data.get('list_version')})"
    )
    _print_screening(data)


def _when(value: Any, seconds: bool = True) -> str:
    """A time (the API's ISO 8601 string, or a datetime) as a person reads it: ISO 8601 in UTC, to the second
    (or the minute)."""
    if value is None or value == "":
        return ""
    return _moment(value).strftime("%Y-%m-%d %H:%M:%SZ" if seconds else "%Y-%m-%d %H:%MZ")


def _moment(value: Any) -> datetime:
    """The API's ISO 8601 string (or a datetime) as a UTC datetime."""
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).astimezone(UTC)


@customers_app.command("compliance-file")
def customers_compliance_file(
    customer_id: CustomerIdArg, out: Annotated[Path | None, typer.Option(help="write the JSON here")] = None
) -> None:
    """Compliance role: the customer's compliance file (KYC, screenings with list versions, decisions with
    licences and approvers, red flags, ownership, threshold reports, audit entries) as JSON."""
    text = json.dumps(Api().call("GET", f"/customers/{customer_id}/compliance-file"), indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n")
        console.print(f"compliance file of customer {customer_id} → {out}")


def _lease_end(r: dict[str, Any], seconds: bool = True) -> str:
    """When the lease ended (once it has: its real end, not what was booked), else its booked end."""
    if r.get("ended_at"):
        return _when(r["ended_at"], seconds)
    return "open-ended" if r.get("end") is None else _when(r["end"], seconds)


def _gpus_where(r: dict[str, Any]) -> str:
    by_node: dict[str, list[int]] = {}
    for g in r.get("gpus", []):
        by_node.setdefault(g["node"], []).append(g["index"])
    # "node GPUs 0-3", not Slurm's "node[0-3]", which reads as a range of host names
    return ", ".join(f"{node} GPU{'s' if len(ix) > 1 else ''} {_ranges(ix)}" for node, ix in by_node.items())


def _print_leases(data: Any, as_json: bool, title: str | None = None) -> None:
    """Leases as a table that reads at 80 columns: one line each, times in UTC; `leases show` has the rest."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    rows = data if isinstance(data, list) else [data]
    t = _plain_table(title)
    t.add_column("id", justify="right", no_wrap=True)
    t.add_column("cust", justify="right", no_wrap=True)
    t.add_column("GPUs", no_wrap=True)
    t.add_column("plan", overflow="fold")
    t.add_column("state", overflow="fold")
    t.add_column("start (UTC)", no_wrap=True)
    t.add_column("end (UTC)", no_wrap=True)
    for r in rows:
        t.add_row(
            str(r["id"]),
            str(r["customer_id"]),
            _what(r),
            r["plan"].replace("_", "-"),
            r["state"],
            _when(r["start"], seconds=False),
            _lease_end(r, seconds=False),
        )
    console.print(t)


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def _seconds(text: str) -> int:
    """A duration as people write it (45m, 8h, 2d, 1h30m, 90s, or plain seconds) in seconds."""
    t = text.strip().lower().replace(" ", "")
    if t.isdigit():
        return int(t)
    m = _DURATION.fullmatch(t)
    if not t or m is None or not any(m.groups()):
        _fail(f"cannot read the duration {text!r}: write it as 45m, 8h, 2d, 1h30m or a number of seconds")
    days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _what(r: dict[str, Any]) -> str:
    """What a lease rents, short: 8×A100-80GB, or 16c EPYC-9654 (cores of a CPU model)."""
    if r.get("resource") == "cpu":
        return f"{r['cpu_cores']}c {r['cpu_model'] or 'CPU'}"
    return f"{r['gpu_count']}×{r['gpu_model']}"


def _ranges(indices: list[int]) -> str:
    """[0,1,2,3,6] -> '0-3,6'"""
    out: list[str] = []
    for i in sorted(indices):
        if out and "-" not in out[-1].split(",")[-1] and int(out[-1]) == i - 1:
            out[-1] = f"{out[-1]}-{i}"
        elif out and "-" in out[-1] and int(out[-1].split("-")[1]) == i - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ",".join(out)


@leases_app.command("create")
def leases_create(
    gpu_model: Annotated[str | None, typer.Argument(help="GPUs of this model; none with --cpu-cores")] = None,
    gpu_count: Annotated[int | None, typer.Argument(help="how many GPUs")] = None,
    plan: Annotated[str, typer.Option(help="on_demand | reserved | long_term | interruptible")] = "on_demand",
    start: Annotated[str, typer.Option(help='"now", "asap" or ISO 8601 with offset')] = "now",
    end: Annotated[str | None, typer.Option(help="ISO 8601 with offset; none: open-ended (on_demand)")] = None,
    customer: Annotated[int | None, typer.Option(help="operators: whose lease (a customer key books its own)")] = None,
    duration_s: Annotated[int | None, typer.Option(help="how long, in seconds, instead of --end")] = None,
    duration: Annotated[
        str | None, typer.Option(help="how long, instead of --end or --duration-s: 45m, 8h, 2d, 1h30m or seconds")
    ] = None,
    max_wait_s: Annotated[
        int | None, typer.Option(help="with --start asap: give up after this many seconds in the queue")
    ] = None,
    cpu_cores: Annotated[int | None, typer.Option(help="a CPU lease: this many cores of one node")] = None,
    memory_gib: Annotated[int | None, typer.Option(help="a CPU lease's memory (default: the cores' share)")] = None,
    cpu_model: Annotated[str | None, typer.Option(help="a CPU lease's CPU model (default: any)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Book GPUs (GPU_MODEL GPU_COUNT) or CPU cores (--cpu-cores, with --memory-gib and --cpu-model)."""
    body: dict[str, Any] = {"plan": plan, "start": start, **_resource(gpu_model, gpu_count, cpu_cores)}
    if duration is not None:
        if duration_s is not None:
            _fail("give --duration or --duration-s, not both")
        duration_s = _seconds(duration)
    for k, v in (
        ("end", end),
        ("customer_id", customer),
        ("duration_s", duration_s),
        ("max_wait_s", max_wait_s),
        ("memory_gib", memory_gib),
        ("cpu_model", cpu_model),
    ):
        if v is not None:
            body[k] = v
    _print_leases(Api().call("POST", "/leases", json=body), as_json)


@leases_app.command("list")
def leases_list(
    state: Annotated[str | None, typer.Option(help="only leases in this state, e.g. active, queued, ended")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Leases, oldest first (a customer key sees its own)."""
    _print_leases(Api().call("GET", "/leases", params={"state": state} if state else {}), as_json)


@leases_app.command("show")
def leases_show(lease_id: LeaseIdArg, as_json: JsonOpt = False) -> None:
    """The lease, with its cost so far, elapsed and remaining time, and its final cost once ended."""
    data = Api().call("GET", f"/leases/{lease_id}")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    q = data["quote"]
    currency = q["currency"]
    t = Table(title=f"lease {data['id']}", show_header=False, box=box.SIMPLE, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    t.add_row("customer", str(data["customer_id"]))
    if data.get("resource") == "cpu":
        t.add_row("cores", f"{data['cpu_cores']} {data['cpu_model'] or ''} cores, {data['memory_gib']} GiB")
        cpus = ", ".join(f"{h['node']} cores {h['cpuset']}" for h in data.get("cores", []))
    else:
        t.add_row("GPUs", f"{data['gpu_count']}× {data['gpu_model']}")
        cpus = ", ".join(f"{h['node']} cores {h['cpuset']}" for h in data.get("cores", []) if h["cores"])
    t.add_row("plan", data["plan"])
    t.add_row("state", data["state"] + (f" ({data['state_reason']})" if data.get("state_reason") else ""))
    t.add_row("start", _when(data["start"]))
    booked_end = "open-ended" if data["end"] is None else _when(data["end"])
    t.add_row("end", booked_end if not data.get("ended_at") else f"{_when(data['ended_at'])} (ended)")
    if data.get("activated_at"):
        t.add_row("started", _when(data["activated_at"]))
    if data.get("preempt_at"):
        t.add_row("preempted at", _when(data["preempt_at"]))
    t.add_row("where", _gpus_where(data) or cpus or "not placed")
    if cpus and data.get("resource") != "cpu":
        t.add_row("cores", cpus)
    unit = q["unit"].replace("gpu_", "GPU-").replace("core_", "core-")
    memory_rate = f" (+ {q['gib_rate']} per GiB)" if q.get("gib_rate") not in (None, "0.00") else ""
    t.add_row("rate", f"{q['rate']} {currency} per {unit}{memory_rate}")
    t.add_row("booked", _when(data["created_at"]))
    console.print(t)
    cost = f"{data['cost_so_far']} {currency}" + ("" if data["final_cost"] is None else " (final)")
    # not started and not closed (a closed lease has a final cost): as the dashboard's lease page tells it
    if not data.get("activated_at") and not data.get("ended_at") and data["final_cost"] is None:
        console.print(_not_started(data, q))
        return
    if data["final_cost"] is not None or data.get("ended_at"):
        remaining = f"none: {data['state']}"  # ended, cancelled, preempted…
    else:
        remaining = "open-ended" if data["remaining_s"] is None else _duration(data["remaining_s"])
    console.print(f"cost so far {cost} · ran {_duration(data['elapsed_s'])} · remaining {remaining}")
    if data.get("resource", "gpu") == "gpu" and data.get("activated_at"):
        use = Api().call("GET", f"/leases/{lease_id}/gpu-usage")
        if use["readings"]:  # hosts without NVML record none: nothing to say on every lease
            console.print(
                f"GPU use (last {_duration(int((_moment(use['until']) - _moment(use['since'])).total_seconds()))}): "
                f"mean {use['mean_utilization_pct']:.0f}% · peak memory {use['peak_memory_mib']:,} MiB per GPU"
            )


def _not_started(data: dict[str, Any], q: dict[str, Any]) -> str:
    """A lease that has not started yet: when it starts, for how long, what it is expected to cost and until when
    it can be cancelled free (what a customer holding a reservation wants to know, rather than "ran 0h00m00s")."""
    if data["state"] == "queued":  # no GPUs yet: it starts when they free up, or gives up at queued_until
        until = f" until {_when(data['queued_until'])}" if data.get("queued_until") else ""
        parts = ["not started", f"waiting in the queue for GPUs{until}"]
    elif data["state"] == "pending_compliance":
        parts = ["not started", "waiting for a compliance review", f"asked from {_when(data['start'])}"]
    else:
        parts = ["not started", f"starts {_when(data['start'])}"]
    parts.append("open-ended" if data["remaining_s"] is None else f"booked for {_duration(data['remaining_s'])}")
    if q.get("estimated_total") is not None:
        parts.append(f"estimated {q['estimated_total']} {q['currency']}")
    free_h, fee = q.get("cancel_free_hours"), q.get("cancel_fee_fraction")
    # as domain/pricing.cancellation_fee_applies: only a window billed whole, with an end, carries a fee
    whole = q.get("plan") in ("reserved", "long_term") and data["end"] is not None
    if whole and free_h is not None and fee is not None and Decimal(fee) > 0:
        free_until = _moment(data["start"]) - timedelta(hours=free_h)
        parts.append(f"free to cancel until {_when(free_until)}, then {Decimal(fee) * 100:.0f}% of the window")
    return " · ".join(parts)


def _duration(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h}h{rest // 60:02d}m{rest % 60:02d}s"


@leases_app.command("events")
def leases_events(lease_id: LeaseIdArg, as_json: JsonOpt = False) -> None:
    """What happened to the lease, oldest first: its changes of state, moves off failed nodes, extensions, holds,
    each with who did it and why."""
    data = Api().call("GET", f"/leases/{lease_id}/events")
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    t = _plain_table(f"lease {lease_id}")
    t.add_column("at (UTC)", no_wrap=True)
    t.add_column("state", no_wrap=True)
    t.add_column("by", no_wrap=True)
    t.add_column("why", ratio=1)
    for e in data:  # the state it went to (it came from the row above): each row reads on one or two lines
        t.add_row(_when(e["at"]), e["to_state"], e["actor"] or "", escape(e.get("reason") or ""))
    console.print(t)


@leases_app.command("end")
def leases_end(lease_id: LeaseIdArg, as_json: JsonOpt = False) -> None:
    """End a lease now and stop its runs: pay-as-you-go plans are billed to this second, reserved windows whole (a
    lease not started yet is cancelled)."""
    _print_leases(Api().call("POST", f"/leases/{lease_id}/end"), as_json)


@leases_app.command("cancel")
def leases_cancel(lease_id: LeaseIdArg, as_json: JsonOpt = False) -> None:
    """Cancel a lease before it starts: its GPUs are freed; a reserved window may carry a late-cancellation fee."""
    _print_leases(Api().call("POST", f"/leases/{lease_id}/cancel"), as_json)


@leases_app.command("extend")
def leases_extend(
    lease_id: LeaseIdArg,
    end: Annotated[str, typer.Option(help="new end, ISO 8601 with offset")],
    as_json: JsonOpt = False,
) -> None:
    """Move the lease's end later on the same GPUs (refused where someone else has them before the new end)."""
    _print_leases(Api().call("POST", f"/leases/{lease_id}/extend", json={"end": end}), as_json)


def _resource(gpu_model: str | None, gpu_count: int | None, cpu_cores: int | None) -> dict[str, Any]:
    """GPUs (a model and a count) or CPU cores, never both: the request's resource."""
    if cpu_cores is not None:
        if gpu_model is not None or gpu_count is not None:
            _fail("give GPU_MODEL GPU_COUNT or --cpu-cores, not both")
        return {"cpu_cores": cpu_cores}
    if gpu_model is None or gpu_count is None:
        _fail("give GPU_MODEL GPU_COUNT (GPUs) or --cpu-cores (a CPU lease)")
    return {"gpu_model": gpu_model, "gpu_count": gpu_count}  # both given: _fail did not return


@app.command()
def availability(
    gpu_model: Annotated[str | None, typer.Argument(help="GPUs of this model; none with --cpu-cores")] = None,
    gpu_count: Annotated[int | None, typer.Argument(help="how many GPUs")] = None,
    start: Annotated[str, typer.Option(help='"now" or ISO 8601 with offset')] = "now",
    end: Annotated[str | None, typer.Option(help="ISO 8601 with offset; with it, each plan's total")] = None,
    cpu_cores: Annotated[int | None, typer.Option(help="CPU cores of one node instead of GPUs")] = None,
    memory_gib: Annotated[int | None, typer.Option(help="with --cpu-cores: memory, GiB")] = None,
    cpu_model: Annotated[str | None, typer.Option(help="with --cpu-cores: a CPU model (default: any)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Is the capacity free (GPUs, or CPU cores), at what price, and from when."""
    params: dict[str, Any] = {"start": start, **_resource(gpu_model, gpu_count, cpu_cores)}
    for k, v in (("end", end), ("memory_gib", memory_gib), ("cpu_model", cpu_model)):
        if v:
            params[k] = v
    data = Api().call("GET", "/availability", params=params)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    what = f"{gpu_count}× {gpu_model}"
    if cpu_cores is not None:
        what = f"{cpu_cores} {data.get('cpu_model') or cpu_model or 'CPU'} cores"
        if data.get("memory_gib"):
            what += f" with {data['memory_gib']} GiB"
    if data["available"]:
        console.print(f"{what}: [green]available[/] from {_when(data['earliest_start'])}")
    else:  # the reason states the earliest start that fits, when there is one
        why = escape(data["reason"] or "")
        console.print(f"{what}: [red]not available[/]: {why}", soft_wrap=True)
    if data["quotes"]:
        _print_table(
            [{"plan": k, **q} for k, q in data["quotes"].items()],
            ["plan", "rate", "unit", "currency", "estimated_total"],
        )


@invoices_app.command("show")
def invoices_show(
    customer_id: MyCustomerArg = None,
    period: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month, UTC)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The month's invoice: a line per lease, the total, and what running leases have accrued so far."""
    api = Api()
    customer_id = _my_customer(api, customer_id)
    data = api.call("GET", f"/customers/{customer_id}/invoices", params={} if period is None else {"period": period})
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _print_table(
        data["lines"],
        ["lease_id", "description", "seconds", "amount"],
        title=f"invoice {data['period']} customer {customer_id}",
    )
    console.print(f"[bold]total {data['total']} {data['currency']}[/]")
    if data["accrued_lines"]:
        _print_table(
            data["accrued_lines"],
            ["lease_id", "description", "seconds", "amount"],
            title="running leases: accrued this month, not on the invoice yet",
        )
        console.print(f"accrued so far {data['accrued_total']} {data['currency']} (not final)")


@invoices_app.command("verify")
def invoices_verify(period: Annotated[str | None, typer.Option(help="YYYY-MM; default: all")] = None) -> None:
    """Recompute every usage record from the lease event log; exit 1 if any differs."""
    from gpulease.services import billing

    rt = _runtime()
    try:
        problems = rt.perform(billing.verify_usage, actor=ADMIN, period=period)
    except ServiceError as e:
        _fail(e.detail)
    finally:
        rt.close()
    if not problems:
        console.print("[green]usage records match the event log[/]")
        return
    for p in problems:
        err.print(f"[red]{p}[/]")
    raise typer.Exit(1)


@invoices_app.command("usage")
def invoices_usage(
    where: Annotated[
        list[str],
        typer.Argument(
            metavar="[CUSTOMER] FILE",
            help="the customer id (default: a customer key's own), then the CSV file to write",
            show_default=False,
        ),
    ],
    period: Annotated[str | None, typer.Option(help="YYYY-MM (default: every period)")] = None,
) -> None:
    """Export usage records as CSV."""
    # One argument: the file, for the key's own customer (as `invoices show` and `spend`); two: customer, file.
    if len(where) == 1:
        customer, out = None, Path(where[0])
    elif len(where) == 2 and where[0].isdigit():
        customer, out = int(where[0]), Path(where[1])
    elif len(where) == 2:
        _fail(f"the customer is a number (`gpulease customers list`), got {where[0][:40]!r}")
    else:
        _fail("give [CUSTOMER] FILE: the file to write, after the customer id if the key sees several customers")
    api = Api()
    customer_id = _my_customer(api, customer)
    text = api.call("GET", f"/customers/{customer_id}/usage.csv", params={"period": period} if period else {})
    try:
        out.write_text(text)
    except (OSError, ValueError) as e:  # no such folder, no permission, a NUL in the name
        _fail(f"cannot write {str(out)[:200]!r}: {e}")
    n = max(0, text.count(chr(10)) - 1)
    console.print(f"{n} usage record{'' if n == 1 else 's'} of customer {customer_id} → {out}")


@reviews_app.command("list")
def reviews_list(
    status: Annotated[str, typer.Option(help="open | awaiting_second_approval | approved | denied | all")] = "open",
    as_json: JsonOpt = False,
) -> None:
    """The compliance review queue, oldest first."""

    def shape(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in rows:
            r["opened (UTC)"] = _when(r["created_at"], seconds=False)
        return rows

    _out(
        Api().call("GET", "/reviews", params={"status": status}),
        as_json,
        ["id", "kind", "customer_id", "status", "opened (UTC)", "summary"],
        shape=shape,
    )


def _print_screening(sc: dict[str, Any]) -> None:
    """A screening as a compliance officer reads it: the outcome and its reasons, each name's hits with the list
    entry, the name that matched and why, ownership paths to listed parties, red flags."""
    console.print(f"[bold]screening: {escape(str(sc.get('status')))}[/]")
    for reason in sc.get("reasons", []):
        console.print(f"  {escape(reason)}", soft_wrap=True)
    for n in sc.get("name_hits", []):
        console.print(f"[bold]{escape(n['role'])}[/] {escape(n['name'])}: [bold]{escape(n['decision'])}[/]")
        for h in n.get("hits", []):
            kind = f" ({h['matched_kind']})" if h.get("matched_kind") else ""
            console.print(
                f"  {escape(h['list'])} {escape(h['entry_id'])} {escape(h['name'])}, score {h['score']:.0f}, "
                f"matched {escape(h['matched_name'])!r}{escape(kind)}",
                soft_wrap=True,
            )
            for reason in h.get("reasons", []):
                console.print(f"    · {escape(reason)}", soft_wrap=True)
    paths = (sc.get("ownership") or {}).get("paths", [])
    if paths:
        console.print("[bold]ownership[/]")
        for p in paths:
            console.print(f"  {escape(p['description'])}", soft_wrap=True)
    flags = sc.get("red_flags", [])
    if flags:
        console.print("[bold]red flags[/]")
        for f in flags:
            console.print(f"  {escape(f['rule'])} ({escape(f['severity'])}): {escape(f['evidence'])}", soft_wrap=True)


@reviews_app.command("show")
def reviews_show(review_id: ReviewIdArg, as_json: JsonOpt = False) -> None:
    """One review item as a compliance officer reads it before deciding: each name's hits with their list entry,
    the name that matched and why; ownership paths to listed parties; red flags; what an approval needs."""
    data = Api().call("GET", f"/reviews/{review_id}")
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    t = Table(title=f"review {data['id']}", show_header=False, box=box.SIMPLE, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    t.add_row("customer", str(data["customer_id"]))
    t.add_row("kind", data["kind"])
    t.add_row("status", data["status"])
    t.add_row("summary", data["summary"])
    t.add_row("opened", _when(data["created_at"]))
    if data["licence_needed_for"]:
        t.add_row("licence needed", ", ".join(data["licence_needed_for"]) + " (and a second compliance officer)")
    for d in data["decisions"]:
        t.add_row("decision", f"{d['decision']} by {d['by']} at {_when(d['at'])}: {d.get('comment') or ''}")
    if data.get("comment"):
        t.add_row("comment", data["comment"])
    console.print(t)
    sc = data["details"].get("screening")
    if not isinstance(sc, dict):
        console.print(escape(json.dumps(data["details"], indent=2, ensure_ascii=False)))
        return
    _print_screening(sc)


@reviews_app.command("decide")
def reviews_decide(
    review_id: ReviewIdArg,
    decision: Annotated[str, typer.Argument(help="approve | deny")],
    comment: Annotated[str, typer.Option(help="why (kept in the audit log)")],
    licence_authority: Annotated[str | None, typer.Option(help="licence or exception: issuing authority")] = None,
    licence_number: Annotated[str | None, typer.Option(help="licence or exception: number")] = None,
    licence_expires: Annotated[str | None, typer.Option(help="licence expiry, YYYY-MM-DD")] = None,
    licence_scope: Annotated[str | None, typer.Option(help="what the licence covers")] = None,
) -> None:
    """Approve or deny (read it first with `reviews show`).

    Clearing a strong blocking-list hit needs the licence options and a second, different compliance officer: the
    first approval leaves the review awaiting_second_approval."""
    body: dict[str, Any] = {"decision": decision, "comment": comment}
    if licence_number:
        body["licence"] = {
            "authority": licence_authority,
            "number": licence_number,
            "expires_on": licence_expires,
            "scope": licence_scope,
        }
    data = Api().call("POST", f"/reviews/{review_id}/decision", json=body)
    console.print(f"review {review_id}: {data['status']}")
    if data.get("licence_needed_for") and data["status"] == "awaiting_second_approval":
        console.print("a second, different compliance officer must approve it too")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    lease_id: Annotated[int, typer.Argument(help="an active lease of yours")],
    follow: Annotated[bool, typer.Option("--follow/--detach", help="stream logs until the run ends")] = True,
    cwd: Annotated[str | None, typer.Option(help="the run's working directory on the node")] = None,
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable")] = None,
) -> None:
    """Run a command on the lease's GPUs: gpulease run LEASE -- cmd args…"""
    command = list(ctx.args)
    if not command:
        _fail("give the command after --, e.g. gpulease run 12 -- python train.py")
    bad = [e for e in env or [] if "=" not in e or e.startswith("=")]
    if bad:
        _fail(f"--env takes KEY=VALUE, got {bad[0]!r}")
    api = Api()
    body: dict[str, Any] = {"command": command, "env": dict(e.split("=", 1) for e in env or [])}
    if cwd:
        body["cwd"] = cwd
    data = api.call("POST", f"/leases/{lease_id}/runs", json=body)
    run_id = data["id"]
    err.print(f"run {run_id} on lease {lease_id}: {data['state']}")
    if not follow:
        typer.echo(run_id)
        return
    _follow(api, lease_id, run_id)


def _follow(api: Api, lease_id: int, run_id: str) -> None:
    """Print the run's log as it grows until the run ends; exit with its exit code."""
    offset = 0
    while True:
        r = api.client.get(f"/leases/{lease_id}/runs/{run_id}/logs", params={"offset": offset, "follow": "false"})
        if r.status_code == 200 and r.content:
            sys.stdout.buffer.write(r.content)
            sys.stdout.flush()
            offset += len(r.content)
        status = api.call("GET", f"/leases/{lease_id}/runs/{run_id}")
        if status["state"] in ("succeeded", "failed", "stopped"):
            r = api.client.get(f"/leases/{lease_id}/runs/{run_id}/logs", params={"offset": offset, "follow": "false"})
            sys.stdout.buffer.write(r.content)
            sys.stdout.flush()
            err.print(f"run {run_id}: {status['state']} (exit code {status['exit_code']})")
            raise typer.Exit(
                status["exit_code"]
                if isinstance(status["exit_code"], int) and status["exit_code"] >= 0
                else (0 if status["state"] == "succeeded" else 1)
            )
        time.sleep(1)


@app.command()
def runs(lease_id: Annotated[int, typer.Argument(help="a lease of yours")], as_json: JsonOpt = False) -> None:
    """The runs on a lease: id, command, state, times (UTC), exit code."""
    data = Api().call("GET", f"/leases/{lease_id}/runs")
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    t = _plain_table(f"runs on lease {lease_id}")
    t.add_column("run", no_wrap=True)
    t.add_column("state", no_wrap=True)
    t.add_column("exit", justify="right", no_wrap=True)
    t.add_column("started (UTC)", no_wrap=True)
    t.add_column("command", no_wrap=True)
    room = max(console.width - 53, 20)  # what the id, state, exit and start leave at one space between columns
    for r in data:
        # One line per run: a long command (a `python -c` program) is cut with "…"; `--json` has it whole.
        command = " ".join(shlex.join(r["command"]).split())
        t.add_row(
            r["id"],
            r["state"],
            "" if r["exit_code"] is None else str(r["exit_code"]),
            _when(r["started_at"]),
            escape(command if len(command) <= room else command[: room - 1] + "…"),
        )
    console.print(t)


@app.command()
def logs(
    lease_id: Annotated[int, typer.Argument(help="the lease the run is on")],
    run_id: Annotated[str, typer.Argument(help="the run's id (`gpulease runs LEASE`)")],
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="keep printing until the run ends")] = False,
) -> None:
    """A run's stdout and stderr; with --follow, until it ends (exit status: the run's)."""
    import re

    from gpulease.services.limits import RUN_ID_PATTERN

    if re.fullmatch(RUN_ID_PATTERN, run_id) is None:
        _fail(f"a run id is 16 hex digits (`gpulease runs {lease_id}` lists them), got {run_id[:40]!r}")
    api = Api()
    if follow:
        _follow(api, lease_id, run_id)
        return
    text = api.call("GET", f"/leases/{lease_id}/runs/{run_id}/logs", params={"follow": "false"})
    sys.stdout.write(text if isinstance(text, str) else json.dumps(text))
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------- spend, limits


def _my_customer(api: Api, customer_id: int | None) -> int:
    """The customer given, or a customer key's own."""
    if customer_id is not None:
        return customer_id
    visible = api.call("GET", "/customers")
    if len(visible) != 1:
        _fail("give the customer id (an operator key sees every customer)")
    return int(visible[0]["id"])


@app.command()
def spend(
    customer_id: MyCustomerArg = None,
    period: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Month-to-date spend: billed, accrued by running leases, the forecast to the month's end, the limit."""
    api = Api()
    cid = _my_customer(api, customer_id)
    data = api.call("GET", f"/customers/{cid}/spend", params={"period": period} if period else {})
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    cur = data["currency"]
    t = Table(title=f"spend {data['period']} customer {cid}", show_header=False)
    t.add_row("billed (on record)", f"{data['billed']} {cur}")
    t.add_row("accrued (running, not final)", f"{data['accrued']} {cur}")
    t.add_row("month to date", f"[bold]{data['month_to_date']} {cur}[/]")
    t.add_row("forecast to month end", f"{data['forecast']} {cur}")
    limit = "none" if data["limit"] is None else f"{data['limit']} {cur} ({data['percent_of_limit']}% used)"
    t.add_row("monthly limit", limit)
    console.print(t)
    if data["leases"]:
        rows = [  # short headers: the table fits 80 columns
            {
                "lease": x["lease_id"],
                "rents": _what(x) if x["gpu_model"] else "CPU cores",
                "plan": x["plan"].replace("_", "-"),
                "state": x["state"],
                "billed": x["billed"],
                "accrued": x["accrued"],
                "now": "running" if x["running"] else "",
            }
            for x in data["leases"]
        ]
        _print_table(rows, list(rows[0]))
    console.print(f"[dim]forecast: {escape(data['forecast_method'])}[/]", soft_wrap=True)


@customers_app.command("limits")
def customers_limits(customer_id: CustomerIdArg, as_json: JsonOpt = False) -> None:
    """The customer's monthly spend limit and GPU quota per model."""
    _out(
        Api().call("GET", f"/customers/{customer_id}/limits"),
        as_json,
        ["customer_id", "monthly_spend_limit", "gpu_quota"],
    )


@customers_app.command("set-limits")
def customers_set_limits(
    customer_id: CustomerIdArg,
    spend_limit: Annotated[str | None, typer.Option(help="monthly spend limit, e.g. 5000.00")] = None,
    no_spend_limit: Annotated[bool, typer.Option("--no-spend-limit", help="remove the spend limit")] = False,
    quota: Annotated[
        list[str] | None, typer.Option(help="MODEL=GPUS held at once, repeatable; GPUS empty: none")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Operator: change the spend limit and quotas; what is not given stays as it is."""
    api = Api()
    now = api.call("GET", f"/customers/{customer_id}/limits")
    limit = None if no_spend_limit else (spend_limit if spend_limit is not None else now["monthly_spend_limit"])
    quotas = dict(now["gpu_quota"])
    for q in quota or []:
        model, sep, count = q.partition("=")
        if not sep or not model or (count and not count.isdigit()):
            _fail(f"--quota takes MODEL=GPUS, got {q!r}")
        if count:
            quotas[model] = int(count)
        else:
            quotas.pop(model, None)
    body = {"monthly_spend_limit": limit, "gpu_quota": quotas}
    data = api.call("PUT", f"/customers/{customer_id}/limits", json=body)
    _out(data, as_json, ["customer_id", "monthly_spend_limit", "gpu_quota"])


@customers_app.command("update")
def customers_update(
    customer_id: CustomerIdArg,
    address: AddressOpt = None,
    legal_name: Annotated[str | None, typer.Option(help="the new legal name")] = None,
    local_name: LocalNameOpt = None,
    country: Annotated[str | None, typer.Option(help="ISO 3166-1 alpha-2 country of incorporation")] = None,
    website: WebsiteOpt = None,
    email_domain: EmailDomainOpt = None,
    parent: ParentOpt = None,
    end_use: EndUseOpt = None,
    requested_gpus: RequestedGpusOpt = None,
    owner: Annotated[list[str] | None, typer.Option(help="NAME=PERCENT, repeatable: replaces the owners")] = None,
    contact: Annotated[
        list[str] | None, typer.Option(help='"Name <email>" or "Name <email> role", repeatable: replaces the contacts')
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change contacts, address or declarations; a change to anything screening reads screens again."""
    body: dict[str, Any] = {}
    for k, v in (
        ("address", address),
        ("legal_name", legal_name),
        ("local_name", local_name),
        ("country", country),
        ("website", website),
        ("email_domain", email_domain),
        ("parent", parent),
        ("end_use", end_use),
        ("requested_gpus", requested_gpus),
    ):
        if v is not None:
            body[k] = v
    if owner is not None:
        body["owners"] = []
        for o in owner:
            name, _, pct = o.rpartition("=")
            try:
                body["owners"].append({"name": name, "percent": float(pct)})
            except ValueError:
                _fail(f"--owner takes NAME=PERCENT, got {o!r}")
    if contact is not None:
        body["contacts"] = []
        for c in contact:
            name, lt, rest = c.partition("<")
            email, gt, role = rest.partition(">")
            if not lt or not gt:
                _fail(f'--contact takes "Name <email>" (optionally followed by a role), got {c!r}')
            body["contacts"].append({"name": name.strip(), "email": email.strip(), "role": role.strip() or None})
    if not body:
        _fail("nothing to change: give --address, --contact, … ")
    _out(Api().call("PATCH", f"/customers/{customer_id}", json=body), as_json, [*CUSTOMER_COLS, "address"])


# --------------------------------------------------------------------------------------------- self-service keys

KEY_COLS = ["id", "prefix", "role", "customer_id", "label", "created_at", "revoked_at"]


@keys_app.command("list")
def keys_list(
    customer: Annotated[int | None, typer.Option(help="staff: one customer's keys")] = None, as_json: JsonOpt = False
) -> None:
    """Keys through the API: a customer's own; every key for operators and compliance. Never a secret."""
    _out(Api().call("GET", "/keys", params={"customer_id": customer} if customer else {}), as_json, KEY_COLS)


def _issued(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    err.print(f"key {data['id']} ({data['role']}{', ' + data['label'] if data['label'] else ''}): shown this once")
    typer.echo(data["key"])


@keys_app.command("new")
def keys_new(
    label: Annotated[str | None, typer.Option(help="a name to recognise the key by")] = None,
    role: Annotated[str | None, typer.Option(help="operators: operator | compliance | customer")] = None,
    customer: Annotated[int | None, typer.Option(help="operators: the customer of a customer key")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A new key through the API (a customer: for itself); prints the secret alone, this once."""
    body: dict[str, Any] = {"label": label, "role": role, "customer_id": customer}
    _issued(Api().call("POST", "/keys", json={k: v for k, v in body.items() if v is not None}), as_json)


@keys_app.command("rotate")
def keys_rotate(
    key_id: KeyIdArg,
    grace: Annotated[int, typer.Option(help="seconds the old secret keeps working (at most 7 days)")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """A new secret in place of a key; the old one stops after --grace seconds. Prints the new secret alone."""
    _issued(Api().call("POST", f"/keys/{key_id}/rotate", json={"grace_s": grace}), as_json)


@keys_app.command("rename")
def keys_rename(
    key_id: KeyIdArg,
    label: Annotated[str, typer.Argument(help="the new name to recognise the key by")],
    as_json: JsonOpt = False,
) -> None:
    """Give a key a new label; its secret is unchanged."""
    _out(Api().call("PATCH", f"/keys/{key_id}", json={"label": label}), as_json, KEY_COLS)


@keys_app.command("revoke")
def keys_revoke(key_id: KeyIdArg, as_json: JsonOpt = False) -> None:
    """The key stops working now (customers: their own keys; operators: any)."""
    _out(Api().call("DELETE", f"/keys/{key_id}"), as_json, KEY_COLS)


# --------------------------------------------------------------------------------------------- notifications

WEBHOOK_COLS = ["id", "customer_id", "url", "events", "description", "created_at"]


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="where deliveries are POSTed, https://…")],
    event: Annotated[list[str] | None, typer.Option(help="an event to deliver, repeatable (default: all)")] = None,
    description: Annotated[str | None, typer.Option(help="a note to recognise the webhook by")] = None,
    customer: Annotated[int | None, typer.Option(help="operators: whose webhook")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Deliver events to URL; prints the signing secret, this once (docs/webhooks.md checks it)."""
    body: dict[str, Any] = {"url": url, "events": event or ["*"], "description": description}
    if customer is not None:
        body["customer_id"] = customer
    data = Api().call("POST", "/webhooks", json=body)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    err.print(f"webhook {data['id']} → {data['url']} for {', '.join(data['events'])}; its signing secret:")
    typer.echo(data["secret"])


@webhooks_app.command("list")
def webhooks_list(as_json: JsonOpt = False) -> None:
    """Webhooks and the events each receives."""
    _out(Api().call("GET", "/webhooks"), as_json, WEBHOOK_COLS)


@webhooks_app.command("rm")
def webhooks_rm(webhook_id: WebhookIdArg) -> None:
    """Delete a webhook: nothing more is delivered to it."""
    Api().call("DELETE", f"/webhooks/{webhook_id}")
    console.print(f"webhook {webhook_id} deleted")


@webhooks_app.command("test")
def webhooks_test(webhook_id: WebhookIdArg) -> None:
    """Send a webhook.test delivery; see how it went with `gpulease webhooks deliveries ID`."""
    data = Api().call("POST", f"/webhooks/{webhook_id}/test")
    console.print(f"test delivery {data['delivery_id']} queued")


@webhooks_app.command("deliveries")
def webhooks_deliveries(webhook_id: WebhookIdArg, as_json: JsonOpt = False) -> None:
    """The delivery log, newest first."""
    _out(
        Api().call("GET", f"/webhooks/{webhook_id}/deliveries"),
        as_json,
        ["id", "event", "state", "attempts", "last_status", "last_error", "created_at", "next_attempt_at"],
    )


@app.command()
def notifications(
    customer: Annotated[int | None, typer.Option(help="staff: whose")] = None, as_json: JsonOpt = False
) -> None:
    """What the customer was told (lease started, ending soon, ended, on hold, budget thresholds, …)."""
    rows = Api().call("GET", "/notifications", params={"customer_id": customer} if customer else {})
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    t = _plain_table()
    t.add_column("at (UTC)", no_wrap=True)
    t.add_column("event", no_wrap=True)
    t.add_column("lease", justify="right", no_wrap=True)
    t.add_column("what", ratio=1)
    for n in rows:
        lease = "" if n.get("lease_id") is None else str(n["lease_id"])
        t.add_row(_when(n["at"], seconds=False), n["type"], lease, escape(_notice(n["type"], n.get("data") or {})))
    console.print(t)


def _notice(kind: str, d: dict[str, Any]) -> str:
    """A notification as a sentence (the JSON, `--json`, has every field)."""
    what = f"{d['gpu_count']}×{d['gpu_model']}" if d.get("gpu_count") and d.get("gpu_model") else "the lease"
    plan = (d.get("plan") or "").replace("_", "-")
    until = f"until {_when(d['end'], seconds=False)}" if d.get("end") else "open-ended"
    sentences = {
        "lease.started": f"{what} {plan} started, {until}",
        "queue.started": f"{what} {plan} placed from the queue, from {_when(d.get('start'), seconds=False)}",
        "queue.expired": f"{what} {plan}: no GPUs came free in time; the request expired",
        "lease.ending_soon": f"{what} ends at {_when(d.get('ends_at'), seconds=False)}"
        + (
            " (its window ends)"
            if d.get("cause") == "window_ends"
            else f" ({d.get('cause')})"
            if d.get("cause")
            else ""
        ),
        "lease.ended": f"{what} ended {_when(d.get('ended_at'), seconds=False)}"
        + (f"; final cost {d['final_cost']} {d.get('currency', '')}".rstrip() if d.get("final_cost") else ""),
        "lease.cancelled": f"{what} {plan} cancelled"
        + (
            f"; late-cancellation fee {d['final_cost']} {d.get('currency', '')}".rstrip()
            if d.get("final_cost") not in (None, "0.00", "0")
            else ""
        ),
        "lease.preemption_notice": f"{what} will be preempted at {_when(d.get('deadline'), seconds=False)}",
        "lease.on_hold": str(d.get("message") or "on hold"),
        "lease.hold_released": f"{what}: the hold is released, the lease is {d.get('state')}",
        "lease.node_failure": f"{what}: a node failed; "
        + ("moved to other GPUs, nothing else changes" if d.get("outcome") == "moved" else "the lease ended at it"),
        "budget.threshold": f"{d.get('percent')}% of the monthly limit spent in {d.get('period')}: "
        f"{d.get('spent')} of {d.get('monthly_spend_limit')}",
    }
    return sentences.get(kind) or " ".join(f"{k}={_cell(v)}" for k, v in d.items())


def main() -> None:
    """The `gpulease` program: the app, with a last line of defence against a traceback for a person to read
    (GPULEASE_DEBUG=1 shows it). Every known failure already ends in `error: …` inside the commands."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as e:
        if os.environ.get("GPULEASE_DEBUG"):
            raise
        if isinstance(e, SQLAlchemyError):
            err.print(
                "[bold red]error:[/] the database could not be used: is it reachable, and migrated "
                f"(`gpulease db upgrade`)? ({escape(type(e).__name__)}: {escape(str(e).splitlines()[0])})"
            )
        else:
            err.print(
                f"[bold red]error:[/] {escape(type(e).__name__)}: {escape(str(e))} "
                "(a bug: please report it; GPULEASE_DEBUG=1 shows where)"
            )
        sys.exit(1)


if __name__ == "__main__":
    main()
