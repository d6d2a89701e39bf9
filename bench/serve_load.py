"""Bounded load test of the gift recommender on Ray Serve, on 127.0.0.1.

Measured side by side in one run, each for a fixed time at a fixed concurrency:
  - without Ray: the model alone (fp32 against int8), the recommender called in-process, and the
    same recommender behind plain FastAPI + uvicorn (one process, no batching);
  - for each Serve mode (below), in a process of its own since Serve reads its mode from the
    environment at start-up: an echo deployment (Serve's own ceiling), the recommender endpoint
    (int8 ONNX policy, @serve.batch) at concurrency 1, 8 and 32, the fp32 export, batching off,
    and Serve's knobs: two replicas, a longer batch wait, a lower max_ongoing_requests, access
    logs off.

Serve modes (recursa.cli.serve.SERVE_MODES; `recursa serve --mode`):
  - default: Serve as it comes; requests go through Serve's Python HTTP proxy to the replica.
  - throughput: RAY_SERVE_THROUGHPUT_OPTIMIZED=1 (user code on the replica's event loop, gRPC
    from the proxy to replicas, buffered logs).
  - haproxy: the above plus RAY_SERVE_ENABLE_HA_PROXY=1: HAProxy takes the HTTP port and forwards
    to each replica's own HTTP server. Serve then binds replica ports and HAProxy's stats on every
    interface, so this mode runs in a private network namespace (`unshare -n`, root) where the
    only interface is loopback; without one it is skipped.

Writes JSON with ratios per mode and the load average, so a reader knows how busy the machine was.

    python bench/serve_load.py --export-dir runs/gift_export --out bench/results/serve_load.json
    python bench/serve_load.py --export-dir runs/gift_export --quick --out /tmp/serve_load_quick.json
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from recursa.cli.serve import SERVE_MODES

PORT, PLAIN_PORT = 8790, 8791
USERS = [{"budget": b, "age": a, "occasion": o, "relationship": r, "interests": i}
         for b, a, o, r, i in [(40.0, 30, "birthday", "friend", ["books", "music"]),
                               (120.0, 55, "anniversary", "partner", ["kitchen", "home"]),
                               (75.0, 12, "holiday", "child", ["toys", "games"]),
                               (200.0, 40, "wedding", "colleague", ["art", "fashion"])]]


def request_body(i: int) -> dict:
    return {"user": USERS[i % len(USERS)], "seed": i % 97}


async def _load(url: str, concurrency: int, seconds: float, body_of=request_body, count_tokens: bool = False) -> dict:
    """`concurrency` clients posting back to back for `seconds`; latency and errors of each call,
    and with `count_tokens` the completion tokens of OpenAI responses."""
    latencies, errors, count, tokens = [], 0, 0, 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def client(k: int) -> None:
            nonlocal errors, count, tokens
            i = k
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    async with session.post(url, json=body_of(i)) as response:
                        body = await response.read()
                        errors += response.status != 200
                        if count_tokens and response.status == 200:
                            tokens += json.loads(body)["usage"]["completion_tokens"]
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    errors += 1
                latencies.append(time.perf_counter() - start)
                count += 1
                i += concurrency

        began = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - began
    ms = np.asarray(latencies) * 1000
    return {"concurrency": concurrency, "seconds": round(elapsed, 2), "requests": count,
            "rps": round(count / elapsed, 1), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "error_rate": errors / max(count, 1), "errors": errors,
            **({"tokens_per_s": round(tokens / elapsed, 1)} if count_tokens else {})}


def measure(url: str, concurrency: int, seconds: float, body_of=request_body, count_tokens: bool = False) -> dict:
    """A bounded load at one concurrency, after a 1 s warm-up (connections, first batches)."""
    asyncio.run(_load(url, concurrency, 1.0, body_of))
    return asyncio.run(_load(url, concurrency, seconds, body_of, count_tokens))


def _plain_server(export_dir: str, port: int) -> None:
    """The recommender on plain FastAPI + uvicorn: one process, no Ray, no batching."""
    import uvicorn

    from recursa.gift.schemas import RecommendRequest, RecommendResponse
    from recursa.gift.serve_core import GiftRecommenderCore
    from recursa.serving.http import configure_guard, create_api

    core = GiftRecommenderCore(export_dir, "int8")
    configure_guard(None, 64 * 1024)
    api = create_api("plain", "reference server")

    @api.post("/recommend", response_model=RecommendResponse)
    async def recommend(request: RecommendRequest) -> RecommendResponse:
        return core.recommend([request])[0]

    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning")


def _wait_for(url: str, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.post(url, json=request_body(0), timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


def in_process(export_dir: str, seconds: float) -> dict:
    """Requests/s of the recommender core called directly, one request at a time, with the
    policy's halting (as served) and at full depth."""
    from recursa.gift.schemas import RecommendRequest
    from recursa.gift.serve_core import GiftRecommenderCore

    rates = {}
    for name, threshold in (("rps", None), ("rps_full_depth", 0.0)):
        core = GiftRecommenderCore(export_dir, "int8", halting_threshold=threshold)
        count, began = 0, time.perf_counter()
        while time.perf_counter() < began + seconds:
            core.recommend([RecommendRequest.model_validate(request_body(count))])
            count += 1
        rates[name] = round(count / (time.perf_counter() - began), 1)
    return rates


def model_only(export_dir: str, batch: int = 16, reps: int = 300) -> dict:
    """Observations per second of the fp32 and int8 exports at full depth on real observations, and
    of int8 with halting (when the policy's Q head was fitted) with the cycles it saved."""
    from recursa.gift.env import GiftRecommendationEnv
    from recursa.gift.onnx_policy import OnnxPolicy

    policies = {"fp32": OnnxPolicy(export_dir, "fp32", halting_threshold=0),
                "int8": OnnxPolicy(export_dir, "int8", halting_threshold=0)}
    halting = OnnxPolicy(export_dir, "int8")
    if halting.cycle_session is not None:
        policies["int8_halting"] = halting
    env = GiftRecommendationEnv(halting.env_config.model_copy(update={"split": "test"}).model_dump())
    observations = [env.reset(seed=i, options={"user_index": i})[0] for i in range(batch)]
    rates = {}
    for name, policy in policies.items():
        policy.act(observations)
        began = time.perf_counter()
        for _ in range(reps):
            policy.act(observations)
        rates[name] = round(reps * batch / (time.perf_counter() - began), 1)
    result = {"batch": batch, "observations_per_s": rates, "int8_over_fp32": round(rates["int8"] / rates["fp32"], 3)}
    if "int8_halting" in rates:
        cycles = halting.cycles_run / halting.decisions
        result["halting"] = {"threshold": halting.halting_threshold, "cycles_per_decision": round(cycles, 3),
                             "cycles_saved": round(1 - cycles / halting.cycles, 3),
                             "int8_halting_over_int8": round(rates["int8_halting"] / rates["int8"], 3)}
    return result


def serve_mode(export_dir: str, seconds: float, quick: bool) -> dict:
    """Every Serve scenario, in the mode this process's environment sets."""
    import ray
    from fastapi import FastAPI, Request
    from ray import serve

    from recursa.gift.serve import GiftRecommender

    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    url = f"http://127.0.0.1:{PORT}/recommend"
    echo_api = FastAPI()

    @serve.deployment(max_ongoing_requests=32, ray_actor_options={"num_cpus": 0.5})
    @serve.ingress(echo_api)
    class Echo:
        @echo_api.post("/recommend")
        async def echo(self, request: Request) -> dict:
            return await request.json()

    def recommender(precision="int8", max_batch_size=16, wait=0.002, replicas=1, max_ongoing=32, access_log=True):
        options = {"num_replicas": replicas, "max_ongoing_requests": max_ongoing,
                   "ray_actor_options": {"num_cpus": 0.5}, "logging_config": {"enable_access_log": access_log}}
        batching = {"max_batch_size": max_batch_size, "batch_wait_timeout_s": wait}
        return GiftRecommender.options(**options).bind(
            {"export_dir": export_dir, "precision": precision, "batching": batching})

    scenarios = {"echo_c8": Echo.bind(), "fp32_c8": recommender("fp32"), "unbatched_c8": recommender(max_batch_size=1)}
    if not quick:
        scenarios |= {"knob_2_replicas_c8": recommender(replicas=2),
                      "knob_wait_10ms_c8": recommender(wait=0.01),
                      "knob_max_ongoing_8_c8": recommender(max_ongoing=8, max_batch_size=8),
                      "knob_no_access_log_c8": recommender(access_log=False)}
    results: dict = {}
    try:
        for name, app in scenarios.items():
            serve.run(app, name="bench", route_prefix="/")
            results[name] = measure(url, 8, seconds)
            print(name, results[name], flush=True)
        serve.run(recommender(), name="bench", route_prefix="/")
        results["levels"] = [measure(url, c, seconds) for c in (1, 8, 32)]
        for level in results["levels"]:
            print("int8 batched", level, flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    return results


def run_mode(mode: str, args: argparse.Namespace) -> dict:
    """`serve_mode` in a child process with the mode's environment (HAProxy's in a private
    network namespace); {"skipped": why} when it cannot run here."""
    command = [sys.executable, __file__, "--export-dir", args.export_dir, "--seconds", str(args.seconds),
               "--serve-mode", mode, *(["--quick"] if args.quick else [])]
    if mode == "haproxy":
        if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
            return {"skipped": "needs root, unshare and ip for a private network namespace"}
        command = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]
    with tempfile.NamedTemporaryFile(suffix=".json") as part:
        command += ["--out", part.name]
        done = subprocess.run(command, env={**os.environ, **SERVE_MODES[mode]})
        if done.returncode != 0:
            return {"skipped": f"exited {done.returncode}"}
        return json.loads(Path(part.name).read_text())


def ratios(mode: dict, plain: dict, alone: dict) -> dict:
    """The issue's ratios for one Serve mode, from concurrency 8 unless named."""
    c8 = mode["levels"][1]
    return {
        "endpoint_over_echo_c8": round(c8["rps"] / mode["echo_c8"]["rps"], 3),
        "endpoint_over_fastapi_c8": round(c8["rps"] / plain["rps"], 3),
        "int8_over_fp32_endpoint_c8": round(c8["rps"] / mode["fp32_c8"]["rps"], 3),
        "batched_over_unbatched_c8": round(c8["rps"] / mode["unbatched_c8"]["rps"], 3),
        "endpoint_c1_over_in_process": round(mode["levels"][0]["rps"] / alone["rps"], 3),
        "errors_on_valid": sum(r["errors"] for key, r in mode.items() if key.endswith("_c8"))
        + sum(r["errors"] for r in mode["levels"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export-dir", default="runs/gift_export", help="`recursa export trm` output of a gift policy")
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per scenario")
    parser.add_argument("--quick", action="store_true", help="3 s per scenario, no knobs: a smoke run")
    parser.add_argument("--modes", default=",".join(SERVE_MODES), help="Serve modes to run, comma-separated")
    parser.add_argument("--serve-mode", choices=list(SERVE_MODES), help=argparse.SUPPRESS)  # the child's part
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.quick:
        args.seconds = 3.0
    export_dir = args.export_dir = str(Path(args.export_dir).resolve())
    if args.serve_mode:
        args.out.write_text(json.dumps(serve_mode(export_dir, args.seconds, args.quick)))
        return

    results: dict = {"seconds_per_scenario": args.seconds, "quick": args.quick, "cpus": os.cpu_count(),
                     "loadavg_start": os.getloadavg()}
    results["model_only"] = model_only(export_dir)
    results["in_process"] = in_process(export_dir, args.seconds)
    plain = multiprocessing.get_context("spawn").Process(target=_plain_server, args=(export_dir, PLAIN_PORT))
    plain.start()
    try:
        _wait_for(f"http://127.0.0.1:{PLAIN_PORT}/recommend")
        results["plain_fastapi_c8"] = measure(f"http://127.0.0.1:{PLAIN_PORT}/recommend", 8, args.seconds)
    finally:
        plain.terminate()
        plain.join()

    results["modes"] = {mode: run_mode(mode, args) for mode in args.modes.split(",")}
    for mode in results["modes"].values():
        if "skipped" not in mode:
            mode["ratios"] = ratios(mode, results["plain_fastapi_c8"], results["in_process"])
    default = results["modes"].get("default", {})
    results |= {"int8_over_fp32": results["model_only"]["int8_over_fp32"], "loadavg_end": os.getloadavg()}
    if "ratios" in default:  # the keys, for Serve as it comes
        results |= {"levels": default["levels"], **default["ratios"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    summary = {name: mode.get("ratios", mode) for name, mode in results["modes"].items()}
    print(json.dumps({"int8_over_fp32": results["int8_over_fp32"], "modes": summary}, indent=2))


if __name__ == "__main__":
    main()
