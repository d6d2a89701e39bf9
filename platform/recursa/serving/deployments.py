"""What every Ray Serve deployment of recursa shares: replica defaults, error responses, batching
from the config, and the application builder that checks a config's `args` before binding.

Each product's deployment lives with its product (`recursa.gift.serve`, `recursa.fc.serve`,
`recursa.llm.serve`): a FastAPI ingress with pydantic schemas and OpenAPI docs at /docs, over a
plain-Python core. Replica counts, autoscaling and `max_ongoing_requests` come from the Serve
config's `deployments:` section; the defaults here suit a 2-core machine.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from ray.serve import Application
from ray.serve.deployment import Deployment

from recursa.core.config import parse_config
from recursa.serving.config import ServeBatching
from recursa.serving.schemas import ErrorResponse

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 422)}
EVENT_STREAM = "text/event-stream"
STREAMED: dict[int | str, dict[str, Any]] = {
    **ERRORS, 200: {"content": {EVENT_STREAM: {}}, "description": "The answer, or with `stream` its events."}}
DEPLOYMENT_DEFAULTS: dict[str, Any] = dict(
    ray_actor_options={"num_cpus": 0.5},  # tiny models: two replicas share a core
    max_ongoing_requests=32,
    health_check_period_s=10.0,
    health_check_timeout_s=30.0,
    graceful_shutdown_wait_loop_s=1.0,  # a draining replica checks for in-flight requests this often
    graceful_shutdown_timeout_s=15.0,  # and is stopped at the latest after this
)


def apply_batching(method: Any, batching: ServeBatching) -> None:
    """Set a `@serve.batch` method's batch size and wait from the Serve config."""
    method.set_max_batch_size(batching.max_batch_size)
    method.set_batch_wait_timeout_s(batching.batch_wait_timeout_s)


def build_app(deployment: Deployment, args: dict, settings: type[BaseModel]) -> Application:
    """The application of a Serve config: its `args` checked at build time (a bad field is named
    there, not in a replica's restart loop), then bound to the deployment."""
    parse_config(args, settings)
    return deployment.bind(dict(args))
