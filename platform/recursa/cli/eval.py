"""`recursa eval`: held-out evaluation of gift policies, LLM agents and tool callers (BFCL), and no-call calibration."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from recursa.cli.app import console, eval_app
from recursa.cli.common import agent_format, fc_model_dir, known_agent_type, trace_store
from recursa.core.artifact import open_artifact
from recursa.core.config import ConfigError, load_config
from recursa.gift.config import MAX_CANDIDATES, MIN_CANDIDATES, GiftEnvConfig, TrainGiftConfig


@eval_app.command("gift")
def eval_gift(
    checkpoints: list[Path] = typer.Option(..., "--checkpoint", help="A gift policy directory (runs/<name>/policy) "
                                           "or its run; twice to compare two policies on the same users."),
    config: Path | None = typer.Option(None, "--config", help="The run's config (default: next to the checkpoint)."),
    candidates: list[int] = typer.Option([], "--candidates", min=MIN_CANDIDATES, max=MAX_CANDIDATES,
                                         help="Evaluate with K candidates instead of the config's (repeat for several)."),
    halting_threshold: float | None = typer.Option(
        None, "--halting-threshold", min=0.0, max=0.999,
        help="Also evaluate with recursion stopped by the Q head at this threshold (default: the policy's "
             "own, when its Q head was fitted; 0: off)."),
    seed: int = typer.Option(1234, "--seed", help="Seed of the held-out episodes."),
    users: int = typer.Option(400, "--users", min=1, help="Held-out users (one episode each)."),
    out: Path | None = typer.Option(None, "--out", help="Write the results as JSON here."),
) -> None:
    """Evaluate a policy on held-out users beside the random, no-tools, greedy and oracle baselines,
    at the config's number of candidates or at each `--candidates K`, with and without halting;
    or compare two policies."""
    if len(checkpoints) > 2:
        raise ConfigError("checkpoint: give one policy, or two to compare")
    policy_dirs = [open_artifact(checkpoint, expect="gift-policy").path for checkpoint in checkpoints]
    settings = load_config(config or _run_config_near(checkpoints[0]), TrainGiftConfig)
    from recursa.gift.evaluate import check_policy_fits, compare_policies, evaluate_with_baselines, module_policy
    from recursa.gift.halting import evaluate_halting
    from recursa.gift.policy_io import load_policy, saved_halting_threshold
    from recursa.gift.report import print_comparison, print_results

    modules = [load_policy(policy_dir)[0] for policy_dir in policy_dirs]
    for module in modules:
        check_policy_fits(module, settings.env)
    results: dict = {}
    for k in candidates or [settings.env.num_candidates]:
        env = GiftEnvConfig(**{**settings.env.model_dump(), "num_candidates": k})
        if len(modules) == 2:
            results[k] = compare_policies(env, module_policy(modules[0]), module_policy(modules[1]), users, seed)
            print_comparison(results[k], [str(c) for c in checkpoints], k, console)
        else:
            results[k] = evaluate_with_baselines(env, module_policy(modules[0]), users, seed)
            print_results(results[k], console, title=f"Gift recommendation, {k} candidates, held-out users")
            threshold = saved_halting_threshold(policy_dirs[0]) if halting_threshold is None else halting_threshold
            if threshold:
                halting = evaluate_halting(env, modules[0], threshold, users, seed, results[k]["policy"]["mean_reward"])
                results[k]["halting"] = halting
                console.print(f"halting at {threshold}: {halting['cycles_saved']:.0%} of the cycles saved, "
                              f"{halting['reward_kept']:.1%} of the reward kept")
    if out:
        out.write_text(json.dumps(results if candidates else results[settings.env.num_candidates], indent=2))


@eval_app.command("llm")
def eval_llm(
    adapter: Path | None = typer.Option(None, "--adapter", help="A LoRA adapter (default: the base alone)."),
    base: str | None = typer.Option(None, "--base", help="Base model (default: the one the adapter records)."),
    env: str = typer.Option("math", "--env", help="Action environment: math, or package.module:EnvClass."),
    episodes: int = typer.Option(200, "--episodes", min=1, help="Held-out problems."),
    seed: int = typer.Option(10_000, "--seed", help="Problem seed (keep it apart from training seeds)."),
    test_data: Path | None = typer.Option(None, "--test-data", help="A decision agent's test file instead of an "
                                          'environment: JSON lines {"state": ..., "ground_truth": ...}.'),
    agent_type: str | None = typer.Option(None, "--agent-type", help="With --test-data: the agent type (its prompt "
                                          "format and reward weights)."),
    mapping: Path | None = typer.Option(None, "--mapping", help="With --test-data: the decisions config (weights, "
                                        "formats)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="With --test-data: skip bad lines (else exit 2)."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1, help="With --test-data: tokens per decision."),
    out: Path | None = typer.Option(None, "--out", help="Write the report as JSON here."),
    traces: str | None = typer.Option(None, "--traces", help="Also store every episode as a trace here "
                                         "(a SQLite path or postgresql:// URL)."),
) -> None:
    """Accuracy, mean reward, format-error rate and sample errors of an LLM agent on held-out problems,
    or of a decision agent on a test file (beside its base model)."""
    from recursa.llm.config import LLMModelSettings
    from recursa.llm.models import adapter_base, load_causal_lm

    if base is None:
        if adapter is None:
            raise ConfigError("adapter: give --adapter, --base, or both")
        base = adapter_base(adapter)
    if test_data is not None:
        report = _eval_decisions(base, adapter, test_data, agent_type, mapping, skip_bad, max_new_tokens)
    else:
        from recursa.llm.actions import resolve_action_env
        from recursa.llm.evaluate import held_out_episodes, summarize

        try:
            env_class = resolve_action_env(env)
        except ValueError as error:
            raise ConfigError(f"env: {error}") from None
        model, tokenizer = load_causal_lm(LLMModelSettings(path=base), adapter=adapter, trainable=False)
        episodes_played = held_out_episodes(model, tokenizer, env_class, episodes, seed)
        if traces is not None:
            with trace_store(traces) as store:
                store.add_many([t.to_trace(agent_type=f"llm-{env_class.domain}") for t in episodes_played])
        report = summarize(episodes_played)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    console.print(report)


def _eval_decisions(base: str, adapter: Path | None, test_data: Path, agent_type: str | None,
                    mapping: Path | None, skip_bad: bool, max_new_tokens: int) -> dict:
    """The decision agent's figures on the test file: the base's, and the adapter's beside them."""
    from recursa.decisions.config import DecisionsConfig
    from recursa.decisions.evaluate import evaluate_model, evaluate_with_base, read_test_file
    from recursa.llm.config import LLMModelSettings
    from recursa.llm.models import load_causal_lm
    from recursa.traces.components import ComponentRewardCalculator

    if agent_type is None:
        raise ConfigError("agent-type: --test-data needs --agent-type")
    config = load_config(mapping, DecisionsConfig)
    agent_type = known_agent_type(config, agent_type)
    prompt_format = agent_format(config, agent_type)
    calculator = ComponentRewardCalculator(agent_type, config.weights_for(agent_type))
    if not test_data.is_file():
        raise ConfigError(f"test-data: file not found: {test_data}")
    try:
        examples, skipped = read_test_file(test_data, skip_bad)
    except ValueError as error:
        raise ConfigError(f"test-data: {error} (--skip-bad skips bad lines)") from None
    model, tokenizer = load_causal_lm(LLMModelSettings(path=base), adapter=adapter, trainable=False)
    report: dict = {"agent_type": agent_type, "test_data": str(test_data), "base_model": base,
                    "adapter": None if adapter is None else str(adapter), "skipped": skipped}
    if adapter is None:
        return {**report, "base": evaluate_model(model, tokenizer, examples, prompt_format, calculator,
                                                 max_new_tokens)}
    figures = evaluate_with_base(model, tokenizer, examples, prompt_format, calculator, max_new_tokens)
    return {**report, "base": figures["base"], "fine_tuned": figures["fine_tuned"]}


@eval_app.command("bfcl")
def eval_bfcl(
    checkpoint: Path | None = typer.Option(None, "--checkpoint",
                                           help="A tool-calling TRM: its model directory or its run."),
    model: str | None = typer.Option(None, "--model", help="An LLM: a directory, a .gguf file, a hub id, "
                                     "or a model name (smollm2-135m-instruct)."),
    adapter: Path | None = typer.Option(None, "--adapter", help="With --model: a LoRA adapter on top of it."),
    categories: str | None = typer.Option(None, "--categories", help="Comma-separated BFCL categories."),
    limit: int | None = typer.Option(None, "--limit", min=1,
                                     help="At most this many examples per category, spread over it."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="With --model: prompts per generation batch."),
    out: Path | None = typer.Option(None, "--out", help="Write the JSON report here, predictions.jsonl beside it."),
) -> None:
    """Score a tool caller (a TRM, or an LLM with its adapter) on BFCL with BFCL's AST rules."""
    from recursa.fc.bfcl import EVAL_CATEGORIES, print_bfcl

    if (checkpoint is None) == (model is None):
        raise ConfigError("give either --checkpoint (a tool-calling TRM) or --model (an LLM)")
    if adapter is not None and model is None:
        raise ConfigError("adapter: --adapter needs --model, the base it was trained on")
    chosen = tuple(c.strip() for c in categories.split(",")) if categories else EVAL_CATEGORIES
    unknown = sorted(set(chosen) - set(EVAL_CATEGORIES))
    if unknown:
        raise ConfigError(f"categories: unknown {', '.join(unknown)}; choose from {', '.join(EVAL_CATEGORIES)}")
    if model is not None:
        from recursa.llm.bfcl import evaluate_llm_bfcl
        from recursa.llm.config import LLMModelSettings

        report = evaluate_llm_bfcl(LLMModelSettings(path=model), adapter, chosen, limit, out, batch_size)
        print_bfcl(report, console)
        return
    from recursa.fc.artifact import load_fc_model
    from recursa.fc.bfcl import evaluate_bfcl

    trm, featurizer = load_fc_model(fc_model_dir(checkpoint))  # type: ignore[arg-type]
    print_bfcl(evaluate_bfcl(trm, featurizer, chosen, limit, out), console)


@eval_app.command("calibrate-fc")
def calibrate_fc(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A model directory (runs/<name>/model) or its run."),
    categories: str = typer.Option("live_simple,live_multiple,live_irrelevance", "--categories",
                                   help="BFCL development categories to calibrate on (never the non-live test)."),
) -> None:
    """Calibrate the call / no-call decision on BFCL's live categories; saved in the model."""
    model_dir = fc_model_dir(checkpoint)
    from recursa.fc.artifact import load_fc_model, set_no_call_bias
    from recursa.fc.bfcl import LIVE_CATEGORIES
    from recursa.fc.calibrate import calibrate_no_call
    from recursa.fc.data.formats import read_bfcl

    chosen = [c.strip() for c in categories.split(",")]
    if not set(chosen) <= set(LIVE_CATEGORIES):
        raise ConfigError(f"categories: calibrate on live categories only ({', '.join(LIVE_CATEGORIES)})")
    model, featurizer = load_fc_model(model_dir)
    examples = [e for category in chosen for e in read_bfcl(category)]
    result = calibrate_no_call(model, featurizer, examples)
    set_no_call_bias(model_dir, result["no_call_bias"])
    console.print(json.dumps(result, indent=2))


def _run_config_near(checkpoint: Path) -> Path | None:
    for parent in [checkpoint, *checkpoint.resolve().parents][:6]:
        if (parent / "config.yaml").is_file():
            return parent / "config.yaml"
    return None
