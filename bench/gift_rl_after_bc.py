"""What PPO does to the behaviour-cloned gift policy, under a few PPO settings at quickstart scale.

Each variant trains the quickstart config (same data, BC warm start and seed) with its PPO
settings changed, then evaluates the final policy on the held-out users. For each it reports the
sampled episode return and the policy's entropy over the first and the last 3 PPO iterations
(`return_last > return_first` is RL improving on BC), the held-out reward as a share of the
oracle's, and the wall time. This is the measurement behind the quickstart's PPO settings.

    PYTHONPATH=platform .venv/bin/python bench/gift_rl_after_bc.py [--variants a,b] [--iterations 40] [--out FILE] [--quick]

About 7 minutes per variant on 2 cores; prints a table and writes JSON (default
bench/results/gift_rl_after_bc.json).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from recursa.core.runtime import init_ray
from recursa.gift.config import BCSettings, EvalSettings, PPOSettings
from recursa.gift.data import generate_gift_data, write_gift_data
from recursa.gift.evaluate import evaluate_with_baselines, load_policy_module, module_policy
from recursa.gift.quickstart import QUICKSTART
from recursa.gift.report import training_summary
from recursa.gift.train import train_gift

console = Console(width=140)
ENTROPY_OFF_AT = 20_000  # env steps: about the first half of the quickstart's PPO
VARIANTS: dict[str, dict] = {
    "entropy 0.01": {"entropy_coeff": 0.01},
    "entropy 0": {"entropy_coeff": 0.0},
    "entropy 0.01 to 0": {"entropy_coeff": [(0, 0.01), (ENTROPY_OFF_AT, 0.0)]},
    "entropy 0 lr 2e-4": {"entropy_coeff": 0.0, "lr": 2e-4},
    "value warm-up": {"bc": {"value_warmup_episodes": 500}},
    "value warm-up entropy 0": {"entropy_coeff": 0.0, "bc": {"value_warmup_episodes": 500}},
    "KL to BC 0.5 decaying": {"bc_kl_coeff": 0.5},
    "KL to lagging 0.5 ema 0.2": {"bc_kl_coeff": 0.5, "bc_kl_until": 10**9, "bc_kl_ema": 0.2},
    "entropy ceiling 0.7 to 0.25": {"entropy_target": [(0, 0.7), (60_000, 0.25)]},
    "entropy ceiling 0.5": {"entropy_target": 0.5},
    "KL to BC 0.5 decaying entropy 0": {"bc_kl_coeff": 0.5, "entropy_coeff": 0.0},
}


def run_variant(name: str, update: dict, iterations: int, data_dir: Path, runs_dir: Path, quick: bool) -> dict:
    """Train one variant of the quickstart and evaluate its policy on the held-out users. `update`
    gives PPO settings (over the defaults: plain PPO), BC settings under "bc" and other training
    settings under "config"."""
    ppo_update = {key: value for key, value in update.items() if key not in ("bc", "config")}
    bc = BCSettings(episodes=200, epochs=1) if quick else QUICKSTART.bc
    config = QUICKSTART.model_validate({
        **QUICKSTART.model_dump(), "name": name.replace(" ", "_").replace("-", "_").replace(",", ""),
        "runs_dir": str(runs_dir), "iterations": iterations, "time_budget_s": None,
        "ppo": PPOSettings(**ppo_update).model_dump(),
        "bc": bc.model_copy(update=update.get("bc", {})).model_dump(),
        "env": QUICKSTART.env.model_copy(update={"data_dir": str(data_dir)}).model_dump(),
        **({"eval": EvalSettings(users=40, every=QUICKSTART.eval.every).model_dump()} if quick else {}),
        **update.get("config", {}),
    })
    started = time.perf_counter()
    result = train_gift(config)
    wall_seconds = time.perf_counter() - started
    module = load_policy_module(result.run_dir / "policy")
    results = evaluate_with_baselines(config.env, module_policy(module), config.eval.users, config.eval.seed)
    curve_columns = [c for c in ("iteration", "env_steps", "time_this_iter_s", "episode_return_mean", "entropy",
                                 "eval_to_oracle") if c in result.metrics]
    return {"variant": name, "ppo": config.ppo.model_dump(mode="json"), "iterations": len(result.metrics),
            "env_steps": result.env_steps, **training_summary(result.metrics),
            "held_out_to_oracle": results["policy"]["normalized_to_oracle"],
            "bc": result.bc, "wall_seconds": wall_seconds, "module": module, "config": config,
            "curve": result.metrics[curve_columns].to_dict("list")}


def run_variants(argv: list[str] | None, description: str, variants: dict[str, dict], default_out: str,
                 separator: str = ",", measure=None) -> tuple[list[dict], Path]:
    """Parse the command line (--variants, --iterations, --out, --quick), train each chosen variant
    on the same generated data, and return the rows (with `measure(row)`'s figures added, given the
    trained module and config) and the output path."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--variants", default=separator.join(variants),
                        help=f"separated by {separator!r}, of: {'; '.join(variants)}")
    parser.add_argument("--iterations", type=int, default=QUICKSTART.iterations, help="PPO iterations per variant")
    parser.add_argument("--out", default=default_out, help="JSON output file")
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.variants.split(separator)]
    unknown = [name for name in names if name not in variants]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {list(variants)}")
    iterations = 3 if args.quick else args.iterations
    init_ray()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        env = QUICKSTART.env
        write_gift_data(generate_gift_data(env.num_items, env.num_users, seed=env.data_seed), data_dir)
        for name in names:
            row = run_variant(name, variants[name], iterations, data_dir, Path(scratch) / "runs", args.quick)
            row.update(measure(row) if measure else {})
            rows.append({key: value for key, value in row.items() if key not in ("module", "config")})
            console.print(f"{name}: return {row['return_first']:.3f} -> {row['return_last']:.3f}, "
                          f"held-out {row['held_out_to_oracle']:.3f} of oracle, {row['wall_seconds']:.0f} s")
    return rows, Path(args.out)


def write_results(out: Path, benchmark: str, rows: list[dict]) -> None:
    """The rows as the benchmark's JSON."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": benchmark, "variants": rows}, indent=2))
    console.print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    rows, out = run_variants(argv, __doc__.splitlines()[0], VARIANTS, "bench/results/gift_rl_after_bc.json")
    table = Table(title="PPO after behaviour cloning (first and last 3 iterations)")
    for column in ("variant", "return first", "return last", "entropy first", "entropy last", "held-out/oracle", "wall s"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for row in rows:
        table.add_row(row["variant"], *(f"{row[key]:.3f}" for key in
                                        ("return_first", "return_last", "entropy_first", "entropy_last",
                                         "held_out_to_oracle")), f"{row['wall_seconds']:.0f}")
    console.print(table)
    write_results(out, "gift_rl_after_bc", rows)


if __name__ == "__main__":
    main()
