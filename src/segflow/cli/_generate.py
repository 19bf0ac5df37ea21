"""``segflow generate``: write the demo customer base (a thin layer over segflow.datasets)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from segflow.cli._common import DATE, JsonOption, console, print_json, progress, user_errors


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("generate")(generate)


def generate(
    out_dir: Path = typer.Argument(..., help="Folder to write the demo files into."),
    customers: int = typer.Option(10_000, "--customers", "-n", min=1, help="Number of customers."),
    months: int = typer.Option(24, "--months", "-m", min=3, max=240, help="Months of data (3..240)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Random seed; same seed, same files."),
    start: dt.date = typer.Option(
        "2024-01-01", "--start", parser=DATE, help="First day of the data YYYY-MM-DD (a 1st)."
    ),
    formats: str = typer.Option(
        "csv,parquet", "--formats", help="Comma-separated file formats: csv, parquet."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Generate realistic demo data (customers, orders, web events, campaigns, surveys).

    Customers follow latent behavioural groups that migrate month to month; the ground truth
    (groups, transition matrix, campaign effects, injected defects) is written to OUT_DIR/truth.
    """
    from segflow.datasets import generate_demo

    with user_errors():
        with progress(disable=json_output) as bar:
            task = bar.add_task("generating customers", total=customers)

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            ds = generate_demo(
                out_dir, customers=customers, months=months, seed=seed, start=str(start),
                formats=[f.strip() for f in formats.split(",") if f.strip()], progress=step,
            )
        if json_output:
            print_json(ds.to_dict())
            return
        rows = ", ".join(f"{n:,} {t}" for t, n in ds.rows.items())
        console.print(f"wrote {rows} to {ds.out_dir} in {ds.seconds:.1f} s")
        console.print(
            f"{sum(ds.defects.values()):,} injected defects and the ground truth are in "
            f"{ds.out_dir / 'truth'}"
        )
