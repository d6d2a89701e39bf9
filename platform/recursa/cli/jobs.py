"""`recursa submit` and `recursa jobs`: Ray jobs on a cluster, with its auth token."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import typer

from recursa.cli.app import app, console, jobs_app

ADDRESS_OPTION = typer.Option("http://127.0.0.1:8265", "--address", envvar="RAY_ADDRESS",
                              help="The cluster's job server: the dashboard address of its head node.")


@app.command("submit")
def submit(
    spec: Path = typer.Argument(..., help="A job spec (jobs/<name>.yaml)."),
    address: str = ADDRESS_OPTION,
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once submitted instead of streaming the logs."),
) -> None:
    """Submit a job spec to a Ray cluster with its auth token; stream the logs, exit 0 only if it succeeds."""
    from ray.job_submission import JobStatus

    from recursa.core.jobs import follow, job_server, load_job_spec
    from recursa.core.jobs import submit as submit_job

    job, working_dir = load_job_spec(spec)
    with job_server(address) as client:
        job_id = submit_job(client, job, working_dir)
        console.print(f"submitted {job_id} to {address}")
        if no_wait:
            return
        status = follow(client, job_id, _write_log)
    console.print(f"{job_id}: {status.value}")
    if status != JobStatus.SUCCEEDED:
        raise typer.Exit(1)


@jobs_app.command("list")
def jobs_list(address: str = ADDRESS_OPTION) -> None:
    """The cluster's jobs, newest first."""
    from rich.table import Table

    from recursa.core.jobs import job_server

    with job_server(address) as client:
        jobs = sorted(client.list_jobs(), key=lambda job: job.start_time or 0, reverse=True)
    table = Table("submission id", "status", "started", "entrypoint", title=f"Ray jobs at {address}")
    for job in jobs:
        started = datetime.fromtimestamp(job.start_time / 1000).strftime("%Y-%m-%d %H:%M:%S") if job.start_time else "-"
        table.add_row(job.submission_id or job.job_id or "-", job.status.value, started, job.entrypoint)
    console.print(table)


@jobs_app.command("status")
def jobs_status(job_id: str = typer.Argument(..., help="The submission id."), address: str = ADDRESS_OPTION) -> None:
    """A job's status, and the cluster's message about it."""
    from recursa.core.jobs import job_server

    with job_server(address) as client:
        info = client.get_job_info(job_id)
    console.print(f"{job_id}: {info.status.value}" + (f" ({info.message})" if info.message else ""))


@jobs_app.command("logs")
def jobs_logs(
    job_id: str = typer.Argument(..., help="The submission id."),
    address: str = ADDRESS_OPTION,
    follow_logs: bool = typer.Option(False, "--follow", help="Keep streaming until the job ends."),
) -> None:
    """A job's logs (driver stdout and stderr)."""
    from recursa.core.jobs import follow, job_server

    with job_server(address) as client:
        if follow_logs:
            follow(client, job_id, _write_log)
        else:
            _write_log(client.get_job_logs(job_id))


@jobs_app.command("stop")
def jobs_stop(job_id: str = typer.Argument(..., help="The submission id."), address: str = ADDRESS_OPTION) -> None:
    """Ask the cluster to stop a running job."""
    from recursa.core.jobs import job_server

    with job_server(address) as client:
        stopped = client.stop_job(job_id)
    console.print(f"{job_id}: {'stopping' if stopped else 'not running'}")


def _write_log(text: str) -> None:
    """Job output verbatim (no rich markup), as it arrives."""
    sys.stdout.write(text)
    sys.stdout.flush()
