"""Bounded load test of the gift recommender on Ray Serve, on 127.0.0.1.

Measured side by side in one run, each for a fixed time at a fixed concurrency:
  - the recommender endpoint (int8 ONNX policy, @serve.batch) at concurrency 1, 8 and 32;
  - the same endpoint with the fp32 export, and with batching off (max_batch_size 1);
  - Serve's knobs: two replicas, a longer batch wait, a lower max_ongoing_requests;
  - references: an echo deployment on Serve (Serve's own ceiling here), the same model behind
    plain FastAPI + uvicorn without Ray, and the model called in-process (no HTTP at all).
Writes JSON with ratios and the load average, so a reader knows how busy the machine was.

    python bench/serve_load.py --export-dir runs/gift_export --out bench/results/serve_load.json
    python bench/serve_load.py --export-dir runs/gift_export --quick --out /tmp/serve_load_quick.json
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import time
from pathlib import Path

import aiohttp
import numpy as np

PORT, PLAIN_PORT = 8790, 8791
USERS = [{"budget": b, "age": a, "occasion": o, "relationship": r, "interests": i}
         for b, a, o, r, i in [(40.0, 30, "birthday", "friend", ["books", "music"]),
                               (120.0, 55, "anniversary", "partner", ["kitchen", "home"]),
                               (75.0, 12, "holiday", "child", ["toys", "games"]),
                               (200.0, 40, "wedding", "colleague", ["art", "fashion"])]]


def request_body(i: int) -> dict:
    return {"user": USERS[i % len(USERS)], "seed": i % 97}


async def _load(url: str, concurrency: int, seconds: float, body_of) -> dict:
    """`concurrency` clients posting back to back for `seconds`; latency and errors of each call."""
    latencies, errors, count = [], 0, 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def client(k: int) -> None:
            nonlocal errors, count
            i = k
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    async with session.post(url, json=body_of(i)) as response:
                        await response.read()
                        errors += response.status != 200
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
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "error_rate": errors / max(count, 1), "errors": errors}


def measure(url: str, concurrency: int, seconds: float, body_of=request_body) -> dict:
    asyncio.run(_load(url, concurrency, 1.0, body_of))  # warm-up: connections, first batches
    return asyncio.run(_load(url, concurrency, seconds, body_of))


def _plain_server(export_dir: str, port: int) -> None:
    """The recommender on plain FastAPI + uvicorn: one process, no Ray, no batching."""
    import uvicorn

    from recursa.serving.http import configure_guard, create_api
    from recursa.serving.recommender import GiftRecommenderCore
    from recursa.serving.schemas import RecommendRequest, RecommendResponse

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
    """Requests/s of the recommender core called directly, one request at a time."""
    from recursa.serving.recommender import GiftRecommenderCore
    from recursa.serving.schemas import RecommendRequest

    core = GiftRecommenderCore(export_dir, "int8")
    count, began = 0, time.perf_counter()
    while time.perf_counter() < began + seconds:
        core.recommend([RecommendRequest.model_validate(request_body(count))])
        count += 1
    return {"rps": round(count / (time.perf_counter() - began), 1)}


def model_only(export_dir: str, batch: int = 16, reps: int = 300) -> dict:
    """Forward passes per second of the fp32 and int8 exports on real observations."""
    from recursa.envs.gift import GiftRecommendationEnv
    from recursa.export.onnx_policy import OnnxPolicy

    fp32, int8 = OnnxPolicy(export_dir, "fp32"), OnnxPolicy(export_dir, "int8")
    env = GiftRecommendationEnv(fp32.env_config.model_copy(update={"split": "test"}).model_dump())
    observations = [env.reset(seed=i, options={"user_index": i})[0] for i in range(batch)]
    rates = {}
    for name, policy in (("fp32", fp32), ("int8", int8)):
        policy.act(observations)
        began = time.perf_counter()
        for _ in range(reps):
            policy.act(observations)
        rates[name] = round(reps * batch / (time.perf_counter() - began), 1)
    return {"batch": batch, "observations_per_s": rates, "int8_over_fp32": round(rates["int8"] / rates["fp32"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export-dir", default="runs/gift_export", help="`recursa export trm` output of a gift policy")
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per scenario")
    parser.add_argument("--quick", action="store_true", help="3 s per scenario, no knob search: a smoke run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    export_dir = str(Path(args.export_dir).resolve())
    results: dict = {"seconds_per_scenario": seconds, "quick": args.quick, "cpus": os.cpu_count(),
                     "loadavg_start": os.getloadavg()}

    # Without Ray first: the model alone, the core in-process, plain FastAPI + uvicorn.
    results["model_only"] = model_only(export_dir)
    results["in_process"] = in_process(export_dir, seconds)
    plain = multiprocessing.get_context("spawn").Process(target=_plain_server, args=(export_dir, PLAIN_PORT))
    plain.start()
    try:
        _wait_for(f"http://127.0.0.1:{PLAIN_PORT}/recommend")
        results["plain_fastapi_c8"] = measure(f"http://127.0.0.1:{PLAIN_PORT}/recommend", 8, seconds)
    finally:
        plain.terminate()
        plain.join()

    import ray
    from fastapi import FastAPI, Request
    from ray import serve

    from recursa.serving.deployments import GiftRecommender

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

    def recommender(precision="int8", max_batch_size=16, wait=0.002, replicas=1, max_ongoing=32):
        options = {"num_replicas": replicas, "max_ongoing_requests": max_ongoing,
                   "ray_actor_options": {"num_cpus": 0.5}}
        batching = {"max_batch_size": max_batch_size, "batch_wait_timeout_s": wait}
        return GiftRecommender.options(**options).bind(
            {"export_dir": export_dir, "precision": precision, "batching": batching})

    scenarios = {"echo_c8": (Echo.bind(), 8),
                 "fp32_c8": (recommender("fp32"), 8),
                 "unbatched_c8": (recommender(max_batch_size=1), 8)}
    if not args.quick:
        scenarios |= {"knob_2_replicas_c8": (recommender(replicas=2), 8),
                      "knob_wait_10ms_c8": (recommender(wait=0.01), 8),
                      "knob_max_ongoing_8_c8": (recommender(max_ongoing=8, max_batch_size=8), 8)}
    try:
        for name, (app, concurrency) in scenarios.items():
            serve.run(app, name="bench", route_prefix="/")
            results[name] = measure(url, concurrency, seconds)
            print(name, results[name], flush=True)
        serve.run(recommender(), name="bench", route_prefix="/")
        results["levels"] = [measure(url, c, seconds) for c in (1, 8, 32)]
        for level in results["levels"]:
            print("int8 batched", level, flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()

    c8 = results["levels"][1]
    results |= {
        "int8_over_fp32": round(c8["rps"] / results["fp32_c8"]["rps"], 3),
        "endpoint_over_echo_c8": round(c8["rps"] / results["echo_c8"]["rps"], 3),
        "endpoint_over_fastapi_c8": round(c8["rps"] / results["plain_fastapi_c8"]["rps"], 3),
        "batched_over_unbatched_c8": round(c8["rps"] / results["unbatched_c8"]["rps"], 3),
        "endpoint_over_in_process": round(results["levels"][0]["rps"] / results["in_process"]["rps"], 3),
        "errors_on_valid": sum(r["errors"] for r in [*results["levels"], *(v for k, v in results.items()
                                                                          if k.endswith("_c8"))]),
        "loadavg_end": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, (dict, list))}, indent=2))


if __name__ == "__main__":
    main()
