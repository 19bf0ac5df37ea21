"""``segflow export segments|audience``: CRM segment lists and audiences to CSV, Parquet or
Postgres, in full or as the changes since the last export, with webhooks per change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from segflow.cli._common import (
    DATE,
    Choice,
    JsonOption,
    ProjectDirOption,
    console,
    print_json,
    refuse_on_spark,
    scheme_segments,
    user_errors,
)
from segflow.errors import SegflowError

if TYPE_CHECKING:
    from segflow.exports import ExportResult

export_app = typer.Typer(
    help="Export segment lists and audiences to CSV, Parquet or Postgres (full or changes).",
)

ToOption = typer.Option(
    ..., "--to", "-o", help="A .csv or .parquet file, or a postgresql:// URL (with --table; its "
    "password from PGPASSWORD or ~/.pgpass, not in the URL: a command line is visible in ps)."
)
TableOption = typer.Option(None, "--table", help="Postgres table to write (with a postgresql:// --to).")
#: ``--pii``'s values: segflow.exports PII_POLICIES (not imported here: it imports Ibis,
#: and ``--help`` stays fast; tests/exports/test_exports_segments.py checks they are equal).
#: The option of every command writing customers' personal columns (``export segments``,
#: ``export audience``, ``campaign audience``, ``campaign uplift --scores-out``).
PII_CHOICES = ("hash", "mask", "omit", "include")
PII_HELP = ("Personal columns (email, phone, name, address, postcode...): hash (SHA-256), mask, "
            "omit, or include in clear.")
#: What ``--pii`` does to the ids of the store (docs/exports.md, "Customer ids that are ...").
PII_ID_HELP = (" A customer id that is (or holds) an e-mail address or a phone number is written "
               "as its pseudonymous key (pid-..., the same in every output of the project) unless include.")
PiiOption = typer.Option("hash", "--pii", parser=Choice(*PII_CHOICES), help=PII_HELP + PII_ID_HELP)


def register(app: typer.Typer) -> None:
    """Add ``export`` and its sub-commands to the root app."""
    app.add_typer(export_app, name="export")


@export_app.callback(invoke_without_command=True)
def _segment_list(
    ctx: typer.Context,
    out: Path = typer.Option(None, "--out", help="(Without a sub-command) CSV or Parquet file."),
    table_name: str = typer.Option(None, "--table", help="(Without a sub-command) a table of the store."),
    scheme: str = typer.Option(None, "--scheme", "-s", help="(Without a sub-command) scheme name."),
    as_of: dt.date | None = typer.Option(
        None, "--as-of", parser=DATE, help="(Without a sub-command) snapshot date YYYY-MM-DD."
    ),
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
    pii: str = typer.Option(
        "hash", "--pii", parser=Choice(*PII_CHOICES),
        help="(Without a sub-command) customer ids that are e-mails or phone numbers: written as "
        "pseudonymous keys (hash, mask, omit) or in clear (include)."),
) -> None:
    """Without a sub-command: the plain segment list (current and previous segment, last
    change, periods in segment) to a file or a store table, as before `export segments`."""
    if ctx.invoked_subcommand is not None:
        _refuse_group_options(ctx, ctx.invoked_subcommand)
        return
    from segflow.cli._migrate import export

    export(out=out, table_name=table_name, scheme=scheme, as_of=as_of, project_dir=project_dir,
           as_json=as_json, pii=pii)


#: The group's options (the plain list's) and what a sub-command takes in their place.
_GROUP_OPTIONS = {"scheme": ("--scheme", {"segments": "--scheme", "audience": "--segment SCHEME=SEGMENT"}),
                  "out": ("--out", {"segments": "--to", "audience": "--to"}),
                  "table_name": ("--table", {"segments": "--table", "audience": "--table"}),
                  "as_of": ("--as-of", {"segments": "--snapshot", "audience": "--snapshot"}),
                  "pii": ("--pii", {"segments": "--pii", "audience": "--pii"}),
                  "project_dir": ("--project", {"segments": "--project", "audience": "--project"}),
                  "as_json": ("--json", {"segments": "--json", "audience": "--json"})}


def _refuse_group_options(ctx: typer.Context, sub: str) -> None:
    """A usage error (one line, exit 2) when an option of the plain list was given before a
    sub-command (``export --pii include segments ...``): the sub-command would ignore it."""
    from segflow.cli._common import _UsageError

    for param, (option, instead) in _GROUP_OPTIONS.items():
        source = ctx.get_parameter_source(param)  # Typer's own Click: its enum, compared by name
        if source is not None and source.name != "DEFAULT":
            raise _UsageError(
                f"{option} before '{sub}' is an option of the plain list (`segflow export` without a "
                f"sub-command) and '{sub}' would ignore it: give {instead.get(sub, option)} after "
                f"'{sub}' (segflow export {sub} ... {instead.get(sub, option)} ...)", ctx=ctx)


def _warn_secrets(ctx: typer.Context, to: str | None, webhook: str | None = None) -> None:
    """Warn on stderr about a password in a ``--to`` URL or a token in a ``--webhook`` URL
    typed on the command line (segflow.cli._secrets)."""
    from segflow.cli import _secrets

    if to and _secrets.typed(ctx, "to") and _secrets.url_holds_secret(to):
        _secrets.warn("a password in the --to URL", "leave it out of the URL and set PGPASSWORD "
                      "or a ~/.pgpass line (libpq reads both)")
    if webhook and _secrets.typed(ctx, "webhook") and _secrets.url_holds_secret(webhook):
        _secrets.warn("a secret in the --webhook URL", "give the URL in the environment variable "
                      "SEGFLOW_WEBHOOK instead")


def _note_pseudonyms(n: int, store_path: str) -> None:
    """Say once, on stderr, that ``n`` customer ids were written as pseudonymous keys."""
    from segflow.exports._pseudonym import key_file, pseudonym_note

    if n:
        console.print(pseudonym_note(n, key_file(store_path)), highlight=False, soft_wrap=True,
                      markup=False)


@export_app.command("segments")
def segments(
    ctx: typer.Context,
    scheme: str = typer.Option(..., "--scheme", "-s", help="Scheme to export."),
    to: str = ToOption,
    table: str = TableOption,
    changes: bool = typer.Option(
        False, "--changes", help="Only customers whose segment changed since the last export "
        "of --name (the first one lists every customer as new)."),
    name: str = typer.Option(None, "--name", help="Export name keying the watermark (default: the scheme)."),
    resend: bool = typer.Option(
        False, "--resend", help="With --changes: write the last export of --name again (the same "
        "rows, snapshot and export id; webhooks with the same Idempotency-Keys), e.g. after "
        "the upload of its file failed. The watermark stays."),
    snapshot: dt.date | None = typer.Option(None, "--snapshot", parser=DATE,
                                            help="Snapshot date YYYY-MM-DD (default: the latest)."),
    pii: str = PiiOption,
    no_scores: bool = typer.Option(False, "--no-scores", help="Leave out the stored scores."),
    webhook: str = typer.Option(None, "--webhook", envvar="SEGFLOW_WEBHOOK", show_envvar=False,
                                help="POST each change to this URL (with --changes); a URL holding a "
                                "token is better given as the env SEGFLOW_WEBHOOK (not visible in ps)."),
    attempts: int = typer.Option(5, "--webhook-attempts", min=1, help="Attempts per webhook."),
    backoff: float = typer.Option(0.5, "--webhook-backoff", min=0.0,
                                  help="Seconds before the 2nd attempt, doubled each time."),
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Export the CRM segment list of a scheme: current and previous segment, change date,
    periods in segment, scores, personal columns (hashed by default)."""
    from segflow.exports import WebhookPolicy, export_segments
    from segflow.project import Project

    _warn_secrets(ctx, to, webhook)
    with user_errors():
        policy = WebhookPolicy(webhook, attempts=attempts, backoff=backoff) if webhook else None
        refuse_on_spark(project_dir, "segflow export segments",
                        "`segflow export --out FILE` writes the segment list")
        with Project.open(project_dir) as project:
            result = export_segments(
                project.store, scheme, to, mode="changes" if changes else "full", name=name,
                as_of=snapshot, pii=pii, scores=not no_scores, table=table, webhook=policy,
                resend=resend,
            )
            _note_pseudonyms(result.ids_pseudonymised, project.store.path)
        if as_json:
            print_json({**result.to_dict(), "watermark_moved": result.watermark_moved})
        else:
            console.print(_summary(result), highlight=False, markup=False)
            if webhook:
                before = (f", {result.webhooks_delivered_before} delivered before"
                          if result.webhooks_delivered_before else "")
                console.print(f"webhooks: {result.webhooks_delivered} delivered, "
                              f"{result.webhooks_failed} failed{before}", highlight=False)
        if result.webhooks_failed:
            sent = result.webhooks_failed + result.webhooks_delivered
            raise SegflowError(
                f"{result.webhooks_failed} of {sent} webhooks failed after {attempts} attempts; "
                f"see table webhook_deliveries (export {result.export_id}); the watermark did not "
                "move: run the same command again to retry (the same changes and Idempotency-Keys; "
                "the delivered ones are not sent again)"
            )


def _summary(result: ExportResult) -> str:
    """The one line saying what an export of segments wrote."""
    if result.mode != "changes":
        what = "full list"
    else:
        counts = ", ".join(f"{n} {k}" for k, n in result.changes.items())
        since = (f"changes since {result.since_snapshot}" if result.since_snapshot
                 else "first delta of the name, every customer")
        what = f"{since}: {counts}"
    again = " again" if result.resent else ""
    return (f"export {result.name!r}{again}: {result.rows:,} rows ({what}) of scheme "
            f"{result.scheme} at {result.snapshot_date} to {result.target}")


@export_app.command("audience")
def audience(
    ctx: typer.Context,
    to: str = ToOption,
    table: str = TableOption,
    segment: list[str] = typer.Option([], "--segment", help="Keep customers in SCHEME=SEGMENT; repeat."),
    where: str = typer.Option(None, "--where", help="SQL condition over the audience's columns: each scheme's segment (named after the scheme, e.g. rfm), its rank (rfm__rank) and each stored score (MODEL__SCORE)."),
    snapshot: dt.date | None = typer.Option(None, "--snapshot", parser=DATE,
                                            help="Snapshot date YYYY-MM-DD (default: the latest)."),
    holdout: float = typer.Option(0.1, "--holdout", min=0.0, max=0.99, help="Share held out at random."),
    seed: int = typer.Option(0, "--seed", help="Seed of the hold-out draw."),
    name: str = typer.Option("audience", "--name", help="Audience name."),
    pii: str = PiiOption,
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Export an audience (segments and/or a rule) with its hold-out flag; see also
    `segflow campaign audience`."""
    from segflow.campaigns import build_audience, column_name, customer_view, known_segments
    from segflow.exports import export_audience
    from segflow.project import Project

    _warn_secrets(ctx, to)
    with user_errors():
        segments: dict[str, list[str]] = {}
        for scheme_name, seg in scheme_segments(segment, project_dir):
            segments.setdefault(column_name(scheme_name), []).append(seg)
        refuse_on_spark(project_dir, "segflow export audience",
                        "`segflow campaign audience --out FILE` writes an audience")
        with Project.open(project_dir) as project:
            view = customer_view(project.store, snapshot)
            aud = build_audience(view, where=where, segments=segments, holdout=holdout,
                                 seed=seed, name=name, pii=pii,
                                 segment_names=known_segments(project.store) if segments else None)
            result = export_audience(project.store, aud, to, pii=pii, table=table)
            _note_pseudonyms(result.ids_pseudonymised, project.store.path)
        if as_json:
            print_json(result.to_dict())
            return
        s = aud.summary()
        console.print(f"audience {name!r}: {result.rows:,} customers ({s['target']} target, "
                      f"{s['holdout']} hold-out) to {result.target}", highlight=False)
