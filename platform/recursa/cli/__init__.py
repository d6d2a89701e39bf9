"""The `recursa` command, one module per command group; each is thin and calls the products."""

from recursa.cli import data, decisions, doctor, eval, export, infer, jobs, llm, quickstart, serve, traces, train, tune
from recursa.cli.app import app, main

__all__ = [
           "app",
           "data",
           "decisions",
           "doctor",
           "eval",
           "export",
           "infer",
           "jobs",
           "llm",
           "main",
           "quickstart",
           "serve",
           "traces",
           "train",
           "tune",
]
