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

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.table import Table

from gift_rl_after_bc import console, run_variant
from recursa.core.runtime import init_ray
from recursa.gift.data import generate_gift_data, write_gift_data
from recursa.gift.evaluate import episode_returns, module_policy
from recursa.gift.quickstart import QUICKSTART

VARIANTS: dict[str, dict] = {  # the quickstart's PPO settings, recursion and depth varied
    name: {**QUICKSTART.ppo.model_dump(), "config": {"recursion": recursion, "model": {"T": cycles}}}
    for name, recursion, cycles in (("per step, T=2", "per_step", 2), ("across steps, T=1", "across_steps", 1),
                                    ("across steps, T=2", "across_steps", 2))
}
THROUGHPUT_USERS = 200


def decisions_per_second(row: dict) -> float:
    """Greedy decisions per second of the trained module on held-out users, one at a time."""
    config = row["config"]
    policy = module_policy(row["module"])
    decisions = 0

    def counting(env, observation):
        nonlocal decisions
        decisions += 1
        return policy(env, observation)

    started = time.perf_counter()
    episode_returns(config.env, counting, THROUGHPUT_USERS, config.eval.seed)
    return decisions / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=";".join(VARIANTS), help=f"separated by ';', of: {'; '.join(VARIANTS)}")
    parser.add_argument("--iterations", type=int, default=QUICKSTART.iterations, help="PPO iterations per variant")
    parser.add_argument("--out", default="bench/results/gift_recursion.json", help="JSON output file")
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.variants.split(";")]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    iterations = 3 if args.quick else args.iterations
    init_ray()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        env = QUICKSTART.env
        write_gift_data(generate_gift_data(env.num_items, env.num_users, seed=env.data_seed), data_dir)
        for name in names:
            row = run_variant(name, VARIANTS[name], iterations, data_dir, Path(scratch) / "runs", args.quick)
            row["decisions_per_s"] = decisions_per_second(row)
            row["cycles_per_decision"] = row["config"].model.T
            rows.append({key: value for key, value in row.items() if key not in ("module", "config")})
            console.print(f"{name}: held-out {row['held_out_to_oracle']:.3f} of oracle, {row['wall_seconds']:.0f} s")
    table = Table(title="TRM recursion per step or across steps (quickstart, same iterations)")
    for column in ("variant", "held-out/oracle", "env steps", "train s", "decisions/s", "cycles/decision",
                   "return first", "return last"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for row in rows:
        table.add_row(row["variant"], f"{row['held_out_to_oracle']:.3f}", str(row["env_steps"]),
                      f"{row['wall_seconds']:.0f}", f"{row['decisions_per_s']:.0f}", str(row["cycles_per_decision"]),
                      f"{row['return_first']:.3f}", f"{row['return_last']:.3f}")
    console.print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "gift_recursion", "variants": rows}, indent=2))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
