"""`recursa data`: generate the gift catalog and tool-calling examples, convert xLAM and ms-swift data."""

from __future__ import annotations

from pathlib import Path

import typer

from recursa.cli.app import console, data_app
from recursa.core.config import ConfigError


@data_app.command("gift")
def data_gift(
    out: Path = typer.Option(..., "--out", help="Directory for catalog.parquet and users_{train,test}.parquet."),
    items: int = typer.Option(600, min=50, help="Catalog size."),
    users: int = typer.Option(2000, min=20, help="Number of users (20% held out for test)."),
    seed: int = typer.Option(0, help="Seed; the same seed gives the same data."),
) -> None:
    """Generate the synthetic gift catalog and train/test users as Parquet."""
    from recursa.gift.data import generate_gift_data, write_gift_data

    paths = write_gift_data(generate_gift_data(items, users, seed=seed), out)
    for name, path in paths.items():
        console.print(f"{name:8s} {path}")


@data_app.command("fc")
def data_fc(
    out: Path = typer.Option(..., "--out", help="Output file (.parquet or .jsonl)."),
    examples: int = typer.Option(100_000, "--examples", min=1, help="Number of examples."),
    seed: int = typer.Option(0, help="Seed; the same seed gives the same examples."),
) -> None:
    """Generate function-calling training examples."""
    from recursa.fc.data.generator import generate_to_file

    console.print(f"wrote {generate_to_file(examples, seed, out)}")


@data_app.command("convert")
def data_convert(
    source: Path = typer.Argument(..., help="Input file (xLAM or ms-swift JSON)."),
    fmt: str = typer.Option(..., "--format", help="xlam or swift."),
    out: Path = typer.Option(..., "--out", help="Output file (.parquet or .jsonl)."),
) -> None:
    """Convert xLAM or ms-swift function-calling data to recursa's schema."""
    from recursa.fc.data.formats import read_swift_report, read_xlam_report
    from recursa.fc.data.store import write_examples

    readers = {"xlam": read_xlam_report, "swift": read_swift_report}
    if fmt not in readers:
        raise ConfigError(f"format: must be one of {', '.join(readers)}, got {fmt!r}")
    if not source.is_file():
        raise ConfigError(f"source: file not found: {source}")
    report = readers[fmt](source)
    write_examples(report.examples, out)
    console.print(f"wrote {len(report.examples)} examples to {out} ({len(report.skipped)} skipped)")
