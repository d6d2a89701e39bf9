"""The TRM's recursion per step (all T cycles from the learned start at every step) against
recursion carried across steps (the policy's recurrent state; T cycles from the last step's carry).

Each variant trains the quickstart (same data, BC warm start, seed and number of PPO iterations),
then reports: the held-out reward as a share of the oracle's, the held-out curve against env steps
and against training wall time (`eval.every` = 5), and the greedy policy's decisions per second
in-process (torch, one observation at a time, as evaluation runs it) with its cycles per decision.

    PYTHONPATH=platform .venv/bin/python bench/gift_recursion.py [--variants a,b] [--iterations 40] [--out FILE] [--quick]

About 6 minutes per variant on 2 cores; prints a table and writes JSON (default
bench/results/gift_recursion.json).
"""

from __future__ import annotations

import time

from rich.table import Table

from gift_rl_after_bc import console, run_variants, write_results
from recursa.gift.evaluate import episode_returns, module_policy
from recursa.gift.quickstart import QUICKSTART

VARIANTS: dict[str, dict] = {  # the quickstart's PPO settings, recursion and depth varied
    name: {**QUICKSTART.ppo.model_dump(), "config": {"recursion": recursion, "model": {"T": cycles}}}
    for name, recursion, cycles in (("per step, T=2", "per_step", 2), ("across steps, T=1", "across_steps", 1),
                                    ("across steps, T=2", "across_steps", 2))
}
THROUGHPUT_USERS = 200


def speed(row: dict) -> dict:
    """Greedy decisions per second of the trained module on held-out users, one at a time, and the
    cycles it runs per decision."""
    config = row["config"]
    policy = module_policy(row["module"])
    decisions = 0

    def counting(env, observation):
        nonlocal decisions
        decisions += 1
        return policy(env, observation)

    started = time.perf_counter()
    episode_returns(config.env, counting, THROUGHPUT_USERS, config.eval.seed)
    return {"decisions_per_s": decisions / (time.perf_counter() - started), "cycles_per_decision": config.model.T}


def main(argv: list[str] | None = None) -> None:
    rows, out = run_variants(argv, __doc__.splitlines()[0], VARIANTS, "bench/results/gift_recursion.json",
                             separator=";", measure=speed)
    table = Table(title="TRM recursion per step or across steps (quickstart, same iterations)")
    for column in ("variant", "held-out/oracle", "env steps", "train s", "decisions/s", "cycles/decision",
                   "return first", "return last"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for row in rows:
        table.add_row(row["variant"], f"{row['held_out_to_oracle']:.3f}", str(row["env_steps"]),
                      f"{row['wall_seconds']:.0f}", f"{row['decisions_per_s']:.0f}", str(row["cycles_per_decision"]),
                      f"{row['return_first']:.3f}", f"{row['return_last']:.3f}")
    console.print(table)
    write_results(out, "gift_recursion", rows)


if __name__ == "__main__":
    main()
