"""Label traces in the terminal: show each unlabelled trace, ask good or bad, save at once."""

from __future__ import annotations

from collections import Counter

import click
from rich.console import Console
from rich.markup import escape

from recursa.traces.models import ExecutionTrace
from recursa.traces.store import TraceStore

RESPONSE_CHARS = 500
ANSWERS = {"y": "good", "n": "bad", "s": "skipped"}


def label_interactively(
    store: TraceStore, console: Console, *, agent_type: str | None = None, limit: int | None = None
) -> Counter[str]:
    """Ask y (good) / n (bad) / s (skip) / q (quit) for each unlabelled trace, oldest first.

    A label, and the optional feedback typed after it, is saved before the next trace is shown.
    End of input quits like `q`. Returns how many traces were labelled good, bad or skipped.
    """
    counts: Counter[str] = Counter()
    pending = store.unlabelled(limit, agent_type=agent_type)
    for number, trace in enumerate(pending, start=1):
        console.rule(f"{number}/{len(pending)}")
        show_trace(trace, console)
        try:
            answer = click.prompt("good? y/n, s skip, q quit", type=click.Choice(["y", "n", "s", "q"]),
                                  show_choices=False)
            feedback = "" if answer in ("s", "q") else click.prompt(
                "feedback (enter for none)", default="", show_default=False).strip()
        except click.Abort:  # end of input
            break
        if answer == "q":
            break
        if answer != "s":
            store.set_label(trace.trace_id, answer == "y")
            if feedback:
                store.set_feedback(trace.trace_id, feedback)
        counts[ANSWERS[answer]] += 1
    return counts


def show_trace(trace: ExecutionTrace, console: Console) -> None:
    """The query, the tools used (with success), the answer (truncated) and the reward."""
    reward = "none" if trace.reward is None else f"{trace.reward:.3f}"
    console.print(f"[bold]{escape(trace.agent_type)}[/]  {trace.trace_id}  {trace.created_at:%Y-%m-%d %H:%M}  "
                  f"reward: {reward}")
    console.print(f"[bold]query:[/] {escape(trace.query)}")
    tools = ", ".join(
        f"{escape(call.name)} {'[green]ok[/]' if call.success else '[red]failed[/]'}" for call in trace.tool_calls
    )
    console.print(f"[bold]tools:[/] {tools or 'none'}")
    response = trace.final_response
    if len(response) > RESPONSE_CHARS:
        response = response[:RESPONSE_CHARS] + f"... ({len(trace.final_response)} chars)"
    console.print(f"[bold]response:[/] {escape(response)}")
