"""`recursa doctor`: the hardware profile recursa sizes its defaults by."""

from __future__ import annotations

import os

import typer

from recursa.cli.app import app, console
from recursa.core.config import ConfigError


@app.command("doctor")
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
    cluster: bool = typer.Option(False, "--cluster", help="Profile the Ray cluster in RAY_ADDRESS, not this machine."),
) -> None:
    """Detect CPUs, memory and GPUs, and print the defaults recursa uses there (configs override each)."""
    from recursa.core.hardware import HardwareProfile, cluster_hardware, detect_hardware, profile_for

    if cluster:
        import ray

        try:
            ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), log_to_driver=False)
        except ConnectionError as error:
            raise ConfigError(f"cluster: no running Ray cluster to attach to ({error})") from None
    profile = profile_for(*(cluster_hardware() if cluster else detect_hardware()))
    if as_json:
        print(profile.model_dump_json(indent=2))
        return
    from rich.table import Table

    table = Table("setting", "value", "set in config", title="recursa doctor: " + ("this Ray cluster" if cluster
                                                                                  else "this machine"))
    for name, field in HardwareProfile.model_fields.items():
        table.add_row(name, str(getattr(profile, name)), field.description)
    console.print(table)
