"""``segflow campaign effect|audience|uplift|playbook``: campaign read-outs and targeting.

``effect`` reads out an experiment from a customer-level file (CSV/Parquet: one row per
customer with the arm, outcomes and attributes) or from the store's campaign exposures;
``audience`` builds and exports a target list with a random hold-out; ``uplift`` fits an
uplift model on a customer-level file and reports its Qini curve on held-out customers;
``playbook`` prints the suggested action per segment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from segflow.cli._common import (
    DATE,
    Choice,
    JsonOption,
    ProjectDirOption,
    Table,
    console,
    open_project,
    print_json,
    print_labelled,
    refuse_on_spark,
    scheme_segments,
    stdout,
    user_errors,
)
from segflow.cli._export import PII_CHOICES, PII_HELP, PII_ID_HELP, PiiOption
from segflow.cli._files import (
    canonical_ids,
    is_id_column,
    null_tokens,
    read_user_csv,
    read_user_parquet,
)
from segflow.errors import InputError, about_file

campaign_app = typer.Typer(
    help="Campaign effects by segment, migration lift, uplift and target audiences.",
    no_args_is_help=True,
)


#: What ``campaign audience`` reads from the store (on Spark: copied from the warehouse).
AUDIENCE_TABLES = ("segment_spells", "segment_snapshots", "customer_scores")


def register(app: typer.Typer) -> None:
    """Add the ``campaign`` command group to the root app."""
    app.add_typer(campaign_app, name="campaign")


@contextlib.contextmanager
def _warnings_to_console() -> Iterator[list[warnings.WarningMessage]]:
    """Show library warnings (dropped customers, cut-short windows) as one line each, after
    the block; the block gets the list they are recorded in (for a --json document)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        yield caught
    for w in caught:
        if issubclass(w.category, UserWarning):
            print_labelled("warning", w.message)


def _user_messages(caught: list[warnings.WarningMessage]) -> list[str]:
    """The messages of the user warnings recorded so far, each once, in order."""
    out: list[str] = []
    for w in caught:
        if issubclass(w.category, UserWarning) and str(w.message) not in out:
            out.append(str(w.message))
    return out


def read_customer_file(path: Path) -> Any:
    """A CSV or Parquet file as an Ibis table on an in-memory DuckDB (aggregation runs there)."""
    import ibis

    if not path.exists():
        raise InputError("file not found", file=str(path))
    from segflow.store import interruptible

    con = interruptible(ibis.duckdb.connect())  # Ctrl-C stops its queries (cli._interrupt)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            table = read_user_parquet(con, path)
            return canonical_ids(table, [c for c in table.columns if is_id_column(c)])
        if suffix in (".csv", ".txt", ".tsv"):
            # identifier columns (customer_id, ...) as text; NA, null, ... as missing values
            return read_user_csv(con, path, null_values=null_tokens())
    except InputError:
        raise
    except Exception as exc:  # DuckDB's reader names the line and the problem
        from segflow.cli._files import reader_error

        raise InputError(f"cannot read as a table: {reader_error(exc)}", file=str(path)) from exc
    raise InputError("expected a .csv or .parquet file", file=str(path))


def _parse_split(split: list[str]) -> dict[str, float] | None:
    """The ``--split ARM=SHARE`` options as ``{arm: share}``; an :class:`InputError` for an
    item without ``=`` and a number, or an arm given twice (compared trimmed, as the arm
    values are: the last one won, or the other arm was said to lack a share)."""
    from segflow.campaigns._arms import clean_arm

    if not split:
        return None
    out: dict[str, float] = {}
    for item in split:
        arm, sep, share = item.partition("=")
        try:
            value = float(share)
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"--split takes ARM=SHARE (e.g. treatment=0.9), not {item!r}")
        if any(clean_arm(arm) == clean_arm(seen) for seen in out):
            raise InputError(f"--split gives the arm {clean_arm(arm)!r} twice; give each arm "
                             "once")
        out[arm] = value
    return out


#: ``campaign effect``'s options that only one mode reads (Python name -> option).
FILE_MODE_ONLY = {"arm_col": "--arm-col", "outcome": "--outcome"}
STORE_MODE_ONLY = {"project": "--project", "scheme": "--scheme", "window_days": "--window-days"}


def refuse_untaken(ctx: typer.Context, options: dict[str, str], why: str) -> None:
    """An :class:`InputError` (one line) naming the ``options`` typed on the command line
    that this use of the command does not read (they were once ignored without a word):
    ``--scheme: an option of store mode (--campaign); file mode reads ...``."""
    from segflow.cli._secrets import typed

    given = [opt for name, opt in options.items() if typed(ctx, name)]
    if given:
        raise InputError(f"{', '.join(given)}: {why}")


@campaign_app.command("effect")
def effect(
    ctx: typer.Context,
    responses: Path = typer.Option(None, "--responses", help="Customer-level CSV/Parquet file: one row per customer with arm, outcomes, attributes."),
    arm_col: str = typer.Option("arm", "--arm-col", help="Column holding the arm (file mode)."),
    control: str = typer.Option("control", "--control", help="Arm value of the control group."),
    outcome: list[str] = typer.Option([], "--outcome", help="Outcome column (0/1 = rate, else mean); repeat for several (file mode)."),
    by: list[str] = typer.Option([], "--by", help="Break the effect down by this column; repeat. Store mode: a scheme, a customers column or 'tenure'."),
    project: Path = ProjectDirOption,
    campaign: str = typer.Option(None, "--campaign", help="Campaign id in the store's campaign_exposures (store mode)."),
    scheme: str = typer.Option(None, "--scheme", help="Segment scheme for the breakdown and the migration lift (store mode)."),
    window_days: int = typer.Option(30, "--window-days", min=1, help="Store mode: outcomes = purchases/revenue in the N days after exposure."),
    level: float = typer.Option(0.95, "--level", min=0.5, max=0.999, help="Confidence level of the intervals."),
    correction: str = typer.Option("holm", "--correction", parser=Choice("holm", "bh", "none"), help="Multiple-comparison correction across segments: holm, bh or none."),
    split: list[str] = typer.Option([], "--split", help="Designed arm share ARM=SHARE (repeat), to check the split (both modes)."),
    as_json: bool = JsonOption,
) -> None:
    """Lift vs control per arm and per segment, with intervals, p-values and MDE.

    File mode: --responses FILE --arm-col COL --control VALUE --outcome COL [--by COL].
    Store mode: --project DIR --campaign ID [--scheme NAME] [--by NAME] [--window-days N].
    Both: --control, --level, --correction, --split. An option of the other mode is an error.
    `segflow campaign list` shows the campaigns in the store.
    """
    from segflow.campaigns import campaign_effect, campaign_report

    if responses is not None and not outcome:  # a usage error (exit status 2), as Click's own
        raise typer.BadParameter("file mode (--responses) needs at least one outcome column",
                                 param_hint="'--outcome'")
    with user_errors(), _warnings_to_console() as caught:
        if correction not in ("holm", "bh", "none"):
            raise InputError(f"--correction must be holm, bh or none, not {correction!r}")
        if responses is None and campaign is None:
            raise InputError("give --responses FILE (a customer-level file) or --campaign ID (the store)")
        if responses is not None and campaign is not None:
            raise InputError("give --responses FILE (a customer-level file) or --campaign ID "
                             "(the store), not both")
        if responses is not None:
            refuse_untaken(ctx, STORE_MODE_ONLY, "store mode only (--campaign); file mode "
                           "(--responses) reads the file's columns, not a project")
        else:
            refuse_untaken(ctx, FILE_MODE_ONLY, "file mode only (--responses); store mode "
                           "(--campaign) reads the outcomes purchased and revenue and the "
                           "exposures' arm")
        expected_split = _parse_split(split)
        if responses is not None:
            table = read_customer_file(responses)
            rep = campaign_effect(table, arm_col=arm_col, control=control, outcomes=outcome,
                                  by=by, level=level, correction=correction,  # type: ignore[arg-type]
                                  expected_split=expected_split, source=str(responses))
            payload: dict[str, Any] = rep.to_dict()
            report, migration, units = rep, None, None
        else:
            from segflow.project import Project

            refuse_on_spark(project, "segflow campaign effect --campaign",
                            "`segflow report` and `segflow serve` show the latest run's "
                            "campaign read-outs")
            with Project.open_reading(project) as proj:
                full = campaign_report(proj.store, campaign, scheme, control=control,
                                       window_days=window_days, level=level, by=by,
                                       correction=correction,  # type: ignore[arg-type]
                                       expected_split=expected_split)
                currency = proj.settings.project.currency
            # revenue (net, in the project's currency) and purchased, both in the window
            payload = {**full.to_dict(), "currency": currency}
            report, migration = full.effect, full.migration
            units = _StoreUnits(currency, window_days)
            for note in full.notes:
                print_labelled("note", note)
        if as_json:  # the warnings too: customers left out, outcomes cut short
            print_json({**payload, "warnings": _user_messages(caught)})
            return
        _print_effect(report, units)
        if migration is not None:
            _print_migration(migration)


def _isna(value: object) -> bool:
    import pandas as pd  # pandas loads only when a command prints (fast --help)

    return bool(pd.isna(value))


#: Decimals of money amounts per customer (mean revenue, its lift and MDE), as the
#: project's other per-customer amounts (segflow.segments._scores.CURRENCY_DECIMALS).
MONEY_DECIMALS = 2


class _StoreUnits:
    """What the store-mode outcomes are: ``purchased`` (0/1) and ``revenue`` (net, in the
    project's currency), both in the ``window_days`` days after each customer's exposure."""

    def __init__(self, currency: str, window_days: int) -> None:
        self.currency = currency
        self.window = f"{window_days} days after exposure"

    def money(self, outcome: str) -> str | None:
        return self.currency if outcome == "revenue" else None


def _fmt(value: float, kind: str, signed: bool = False) -> str:
    """A rate in % (a difference of rates in percentage points), anything else (a mean,
    its difference) to :data:`MONEY_DECIMALS` decimals with thousands separators."""
    if _isna(value):
        return "–"
    if kind == "rate":
        shown = round(value * 100, 2) + 0.0  # no "-0.00"
        return f"{shown:+.2f} pp" if signed else f"{shown:.2f}%"
    shown = round(value, MONEY_DECIMALS) + 0.0
    return f"{shown:+,.{MONEY_DECIMALS}f}" if signed else f"{shown:,.{MONEY_DECIMALS}f}"


def _print_effect(rep: Any, units: _StoreUnits | None = None) -> None:
    """One table per (outcome, breakdown). In store mode the titles name the window and the
    revenue columns the project's currency (as ``segflow segment`` and ``migrate`` do)."""
    t = rep.table
    for (outcome_name, by_name), sub in t.groupby(["outcome", "by"], sort=False):
        kind = sub.kind.iloc[0]
        cur = units.money(outcome_name) if units is not None else None
        what = "response rate" if kind == "rate" else "mean per customer"
        if cur:
            what = f"{cur}, {what}"
        if units is not None:
            what += f", {units.window}"
        where = "all customers" if by_name == "(all)" else f"by {by_name}"
        table = Table(title=f"{outcome_name} ({what}), {where}: lift vs {rep.control!r}, "
                      f"{rep.level:.0%} interval, p adjusted ({rep.correction})",
                      title_justify="left")
        unit = f" ({cur})" if cur else ""
        value_col = "rate" if kind == "rate" else f"mean{unit}"
        cols = ("segment", "arm", "n", value_col, f"lift{unit} \\[interval]", "rel.", "p adj",
                f"MDE{unit}")
        for col in cols:
            table.add_column(col, justify="left" if col in ("segment", "arm") else "right")
        notes = []
        for r in sub.itertuples():  # printing the small result table, not data rows
            lift = "" if r.is_control else (
                f"{_fmt(r.lift_abs, kind, True)} [{_fmt(r.lift_abs_low, kind, True)}, "
                f"{_fmt(r.lift_abs_high, kind, True)}]")
            rel = "" if r.is_control or _isna(r.lift_rel) else f"{r.lift_rel:+.1%}"
            padj = "" if _isna(r.p_adjusted) else f"{r.p_adjusted:.3g}" + ("*" if r.significant else "")
            # the MDE is a difference (percentage points for a rate), like the lift
            mde = "" if r.is_control else _fmt(r.mde_abs, kind, False).replace("%", " pp")
            seg = "" if by_name == "(all)" else r.segment
            table.add_row(seg, r.arm, f"{int(r.n):,}", _fmt(r.value, kind), lift, rel, padj, mde)
            if r.note:
                notes.append(f"{seg or 'all'} / {r.arm}: {r.note}")
        stdout.print(table)
        for note in dict.fromkeys(notes):
            console.print(f"  [yellow]note[/] {note}", highlight=False)


def _print_migration(m: Any) -> None:
    table = Table(title=f"Migration {m.scheme} {m.before} → {m.after}: share of each arm "
                  f"(difference vs {m.control!r})", title_justify="left")
    for col in ("arm", "movement", "customers", "share", "difference", "interval", "p"):
        table.add_column(col)
    for r in m.shares.itertuples():
        diff = "" if _isna(r.diff) else f"{r.diff * 100:+.2f} pp"
        ci = "" if _isna(r.diff_low) else f"[{r.diff_low * 100:+.2f}, {r.diff_high * 100:+.2f}] pp"
        p = "" if _isna(r.p_value) else f"{r.p_value:.3g}"
        table.add_row(r.arm, r.movement, str(r.customers), f"{r.share:.1%}", diff, ci, p)
    stdout.print(table)


@campaign_app.command("list")
def list_campaigns(project: Path = ProjectDirOption, as_json: bool = JsonOption) -> None:
    """List the campaigns in the store: first and last exposure, customers per arm."""
    from segflow.campaigns import campaigns_summary

    with user_errors():
        with open_project(project, ("campaign_exposures",)) as proj:  # on Spark: a copy
            frame = campaigns_summary(proj.store)
        if as_json:
            print_json({"data": frame.to_dict(orient="records"), "count": len(frame)})
            return
        table = Table(title="Campaigns in the store", title_justify="left")
        for col in frame.columns:
            table.add_column(col)
        for row in frame.itertuples(index=False):
            table.add_row(*map(str, row))
        stdout.print(table)


@campaign_app.command("audience")
def audience(
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .csv or .parquet."),
    project: Path = ProjectDirOption,
    customers: Path = typer.Option(None, "--customers", help="Use this customer-level CSV/Parquet (e.g. uplift scores) instead of the store."),
    snapshot: dt.date | None = typer.Option(None, "--snapshot", parser=DATE, help="Snapshot date YYYY-MM-DD (default: the latest)."),
    segment: list[str] = typer.Option([], "--segment", help="Keep customers in SCHEME=SEGMENT; repeat (OR within a scheme, AND across)."),
    where: str = typer.Option(None, "--where", help="SQL condition over the customer columns, e.g. \"clv__clv_12m > 200\"."),
    value: str = typer.Option(None, "--value", help="Column with each customer's expected value (e.g. a CLV score)."),
    holdout: float = typer.Option(0.1, "--holdout", min=0.0, max=0.99, help="Share held out at random as control."),
    seed: int = typer.Option(0, "--seed", help="Seed of the hold-out draw."),
    action_from: str = typer.Option(None, "--action-from", help="Segment column for playbook actions (default: the first --segment scheme)."),
    playbook: Path = typer.Option(None, "--playbook", help="Playbook TOML (default: the bundled one)."),
    name: str = typer.Option("audience", "--name", help="Audience name."),
    pii: str = typer.Option("hash", "--pii", parser=Choice(*PII_CHOICES), help=PII_HELP + PII_ID_HELP.rstrip(".")
                            + " (a --customers file's ids too, with the secret key of the --project)."),
    as_json: bool = JsonOption,
) -> None:
    """Build a target audience from segments, scores and rules; export it with a hold-out.

    Columns available to --where and --value: the segment of each scheme (named after the
    scheme, e.g. rfm), its rank (rfm__rank), and each stored score as MODEL__SCORE; with
    --customers, the file's columns. Personal columns (email, phone, name, address,
    postcode...) are written hashed by default (email as email_sha256), as `segflow export`
    writes them; --pii mask, omit or include (in clear) to choose. --where sees them in clear.
    A customer id that is an e-mail address or a phone number is written as the project's
    pseudonymous key (pid-...), also from a --customers file (the key of the --project), unless
    --pii include.
    """
    from segflow._rows import as_numbers, check_one_row_per_id
    from segflow.campaigns import build_audience, column_name, customer_view, known_segments
    from segflow.cli._customer_file import refuse_unusable_numbers

    with user_errors(), _warnings_to_console():
        segments: dict[str, list[str]] = {}
        for scheme_name, seg in scheme_segments(segment, project if customers is None else None):
            segments.setdefault(column_name(scheme_name) if customers is None else scheme_name,
                                []).append(seg)
        action_col = action_from or (next(iter(segments)) if segments else None)
        kwargs = dict(where=where, segments=segments, value=value, holdout=holdout, seed=seed,
                      playbook=playbook, action_from=action_col, name=name, pii=pii)
        if customers is not None:
            table = read_customer_file(customers)
            if "customer_id" in table.columns:  # (else build_audience names the column)
                # one row per customer: a repeated id was in the target and in the hold-out
                check_one_row_per_id(table, "customer_id", str(customers))
            if value is not None and value in table.columns:  # summed: inf made the total inf
                numbers = as_numbers(table, value, source=str(customers),
                                     what=f"the value column {value!r}")  # ('inf' is text)
                refuse_unusable_numbers(numbers, customers,
                                        skip=[c for c in table.columns if c != value])
            with about_file(customers):  # an engine's error names the file
                aud = build_audience(table, source=str(customers), **kwargs)  # type: ignore[arg-type]
            _key_members(aud, pii, project, source=str(customers))  # the project's keys
        else:
            # on Spark: a copy of the warehouse's assignments and scores
            with open_project(project, AUDIENCE_TABLES) as proj:
                names = known_segments(proj.store) if segments else None
                aud = build_audience(customer_view(proj.store, snapshot), segment_names=names,
                                     **kwargs)  # type: ignore[arg-type]
                # ids that are e-mails: the exports' keys (on Spark too)
                _key_members(aud, pii, project, store_path=proj.directory / proj.settings.project.store)
        path = aud.export(out)
        summary = {**aud.summary(), "file": str(path)}
        if as_json:
            print_json(summary)
            return
        stdout.print(f"audience {name!r}: {summary['size']} customers ({summary['target']} target, "
                      f"{summary['holdout']} hold-out) written to {path}", highlight=False)
        if "expected_value_total" in summary:
            stdout.print(f"expected value: {summary['expected_value_total']:,.2f} in total, "
                          f"{summary['expected_value_mean']:,.2f} per customer", highlight=False)
        for action, n in summary.get("actions", {}).items():
            stdout.print(f"  {action}: {n}", highlight=False)


def _key_members(aud: Any, pii: str, project: Path, *, source: str | None = None,
                 store_path: Path | None = None) -> None:
    """The audience's ids that are e-mails or phone numbers as the exports' pseudonymous
    keys (segflow.cli._pseudonyms.key_ids: the project's secret), said once on stderr;
    as they are under ``include``."""
    import pyarrow as pa

    from segflow.cli._pseudonyms import key_ids

    if pii == "include" or "customer_id" not in aud.members:
        return
    ids = pa.Table.from_pandas(aud.members[["customer_id"]], preserve_index=False)
    keyed = key_ids(ids, pii, project, source=source, store_path=store_path)
    if keyed is not ids:
        aud.members["customer_id"] = keyed["customer_id"].to_pylist()


@campaign_app.command("uplift")
def uplift(
    ctx: typer.Context,
    responses: Path = typer.Option(..., "--responses", help="Customer-level CSV/Parquet file of a past experiment."),
    arm_col: str = typer.Option("arm", "--arm-col", help="Column holding the arm."),
    control: str = typer.Option("control", "--control", help="Arm value of the control group."),
    outcome: str = typer.Option(..., "--outcome", help="Outcome column (0/1 response or an amount)."),
    feature: list[str] = typer.Option(..., "--feature", help="Pre-treatment attribute used by the model; repeat."),
    treated: str = typer.Option(None, "--treated", help="Treated arm (default: all non-control arms pooled)."),
    method: str = typer.Option("two_model", "--method", parser=Choice("two_model", "class_transformation"), help="two_model or class_transformation (0/1 outcomes)."),
    test_size: float = typer.Option(0.3, "--test-size", min=0.05, max=0.9, help="Share of customers held out for the Qini curve."),
    seed: int = typer.Option(0, "--seed", help="Seed of the train/test split and the model."),
    score: Path = typer.Option(None, "--score", help="Customer file to score, with --scores-out (default: --responses)."),
    scores_out: Path = typer.Option(None, "--scores-out", help="Write the scored customers (column uplift) to this CSV/Parquet."),
    pii: str = PiiOption,
    project: Path = typer.Option(Path("."), "--project", "-p", show_default=True, help=(
        "(With --scores-out) the project whose secret key writes customer ids that are e-mails "
        "or phone numbers as pseudonymous keys (pid-...), as its exports do.")),
    as_json: bool = JsonOption,
) -> None:
    """Fit an uplift model (expected lift per customer); report its Qini curve and AUUC on
    held-out customers, and optionally score customers for targeting (--where "uplift > 0").

    --scores-out writes the scored file's columns and uplift; its personal columns (email,
    phone, name, address, postcode...) hashed by default, as `segflow export` writes them
    (--pii mask, omit or include in clear), and a customer id that is an e-mail address or a
    phone number as the pseudonymous key (pid-...) of the --project, unless --pii include.
    """
    from segflow.campaigns import export_table, fit_uplift
    from segflow.campaigns._customers import refuse_repeated_customers

    with user_errors(), _warnings_to_console():
        if method not in ("two_model", "class_transformation"):
            raise InputError(f"--method must be two_model or class_transformation, not {method!r}")
        if scores_out is None:
            refuse_untaken(ctx, {"score": "--score", "pii": "--pii", "project": "--project"},
                           "only with --scores-out (they choose what it writes)")
        table = read_customer_file(responses)
        frame = table.to_pandas()
        with about_file(responses):  # the models' own checks know no file
            res = fit_uplift(frame, arm_col=arm_col, control=control, outcome=outcome,
                             features=feature, treated=treated,
                             method=method,  # type: ignore[arg-type]
                             test_size=test_size, random_state=seed, source=str(responses))
        payload = {"scores": res.scores, "deciles": res.deciles.to_dict(orient="records")}
        if scores_out is not None:
            scored_file, scored = responses, table
            if score is not None:  # one row per customer, as --responses (fit_uplift checks it)
                scored_file, scored = score, read_customer_file(score)
                refuse_repeated_customers(scored, source=str(score))
            payload["scores_file"] = str(export_table(
                _scored(res.model, scored, list(feature), pii, source=str(scored_file),
                        project=project),
                scores_out, private=pii == "include"))
            payload["pii"] = pii
        if as_json:
            print_json(payload)
            return
        sc = res.scores
        stdout.print(f"{method} uplift model on {sc['n_train']} customers; held-out "
                      f"{sc['n_test']}: Qini coefficient {sc['qini_coefficient']:.4g} "
                      f"(0 = random), AUUC {sc['auuc']:.4g} vs {sc['auuc_random']:.4g} at random",
                      highlight=False)
        table = Table(title="Held-out customers by predicted uplift (decile 1 = highest)",
                      title_justify="left")
        for col in ("decile", "customers", "predicted lift", "observed lift"):
            table.add_column(col, justify="right")
        for r in res.deciles.itertuples():
            table.add_row(str(r.decile), str(r.customers), f"{r.predicted_lift:+.4g}",
                          f"{r.observed_lift:+.4g}")
        stdout.print(table)
        if "scores_file" in payload:
            console.print(f"scores written to {payload['scores_file']}", highlight=False)


def _scored(model: Any, table: Any, features: list[str], pii: str, *,
            source: str | None = None, project: Path = Path(".")) -> Any:
    """The customers of ``table`` (Ibis) with their ``uplift`` from ``model``, as an Arrow
    table: its personal columns under ``pii`` (segflow.exports.protect_columns), in the
    engine, and its ids that are e-mails or phone numbers as the pseudonymous keys of
    ``project`` (segflow.cli._pseudonyms.key_ids; the id column as campaign_effect finds
    it), the model fed the values in clear. Both are read in the table's order (DuckDB keeps
    a file's row order in a query without ORDER BY)."""
    import ibis
    import pyarrow as pa

    from segflow.campaigns._customers import customer_column
    from segflow.cli._pseudonyms import key_ids
    from segflow.exports import protect_columns

    if "uplift" in table.columns:  # a file scored before: its scores replaced, as they were
        table = table.drop("uplift")
    predicted = model.predict(table.to_pandas()[features])
    id_col = customer_column(table.columns)
    if id_col is not None and pii != "include":  # keyed first: no content check masks them
        data = table.to_pyarrow()
        keyed = key_ids(data, pii, project, columns=[id_col], source=source)
        table = table if keyed is data else ibis.memtable(keyed)
    out = protect_columns(table, pii, source=source).to_pyarrow()
    return out.append_column("uplift", pa.array(predicted, pa.float64()))


@campaign_app.command("promotions")
def promotions(
    scheme: str = typer.Option(..., "--scheme", help="Segment scheme."),
    project: Path = ProjectDirOption,
    snapshot: dt.date | None = typer.Option(None, "--snapshot", parser=DATE, help="Snapshot date YYYY-MM-DD (default: the latest of the scheme)."),
    window_days: int = typer.Option(365, "--window-days", min=1, help="Transactions in the N days before the snapshot."),
    as_json: bool = JsonOption,
) -> None:
    """Promotion sensitivity: share of each segment's purchases and revenue made with a
    promotion code, and the share of buyers who used one."""
    from segflow.campaigns import promotion_sensitivity
    from segflow.project import Project

    with user_errors(), _warnings_to_console():
        refuse_on_spark(project, "segflow campaign promotions",
                        "it reads the transactions, which stay in the warehouse")
        with Project.open_reading(project) as proj:
            dates = proj.snapshot_dates(scheme)
            if not dates:
                raise InputError(f"no assignments stored for scheme {scheme!r}; run `segflow run` first")
            snap = snapshot or dates[-1]
            res = promotion_sensitivity(proj.store, scheme, snap, window_days=window_days)
        if as_json:
            print_json(res.to_dict())
            return
        table = Table(title=f"Promotion share by {scheme} segment, {window_days} days before {snap}",
                      title_justify="left")
        for col in ("segment", "buyers", "transactions", "with promo", "interval", "revenue share", "buyers using"):
            table.add_column(col, justify="left" if col == "segment" else "right")
        for r in res.table.itertuples():
            table.add_row(str(r.segment), f"{int(r.buyers):,}", f"{int(r.transactions):,}",
                          _pct(r.promo_share), f"[{_pct(r.promo_share_low)}, {_pct(r.promo_share_high)}]",
                          _pct(r.promo_revenue_share), _pct(r.promo_buyer_share))
        stdout.print(table)


def _pct(value: float) -> str:
    return "–" if _isna(value) else f"{value:.1%}"


@campaign_app.command("playbook")
def playbook_cmd(
    playbook: Path = typer.Option(None, "--playbook", help="Playbook TOML (default: the bundled one)."),
    as_json: bool = JsonOption,
) -> None:
    """Show the suggested action per segment (retain, win back, upsell, convert, nurture)."""
    from segflow.campaigns import load_playbook

    with user_errors():
        pb = load_playbook(playbook)
        frame = pb.to_pandas()
        if as_json:
            print_json({"path": pb.path, "data": frame.to_dict(orient="records")})
            return
        table = Table(title=f"Playbook {pb.path}", title_justify="left")
        for col in ("action", "segments", "suggestion"):
            table.add_column(col)
        for (action, suggestion), rows in frame.groupby(["action", "suggestion"], sort=False):
            table.add_row(action, ", ".join(rows.segment_pattern), suggestion)
        stdout.print(table)
