"""Ray Serve deployments: GiftRecommender (POST /recommend), ToolCaller (OpenAI chat completions)
and LLMServer (OpenAI completions and chat completions from a causal LM and its LoRA adapters).

Each is a FastAPI ingress with pydantic schemas and OpenAPI docs at /docs. Model calls go through
`@serve.batch`: concurrent requests in a replica share one forward pass. Replica counts,
autoscaling and `max_ongoing_requests` come from the Serve config's `deployments:` section;
the defaults here suit a 2-core machine.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from ray import serve
from ray.serve import Application

from recursa.config import LLMServeArgs, RecommenderServeArgs, ServeBatching, ToolCallerServeArgs, parse_config
from recursa.data.fc.schema import FCExample, FunctionCall
from recursa.serving import llm, llm_stream, recommender, tool_caller
from recursa.serving.chat_tools import InvalidRequest
from recursa.serving.chunks import completed_events
from recursa.serving.http import configure_guard, create_api
from recursa.serving.lora_adapters import LoRAAdapters
from recursa.serving.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    ErrorResponse,
    LLMChatCompletionRequest,
    ModelList,
    RecommendRequest,
    RecommendResponse,
)

ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 422)}
EVENT_STREAM = "text/event-stream"
STREAMED = {**ERRORS, 200: {"content": {EVENT_STREAM: {}}, "description": "The answer, or with `stream` its events."}}
DEPLOYMENT_DEFAULTS = dict(
    ray_actor_options={"num_cpus": 0.5},  # tiny models: two replicas share a core
    max_ongoing_requests=32,
    health_check_period_s=10.0,
    health_check_timeout_s=30.0,
    graceful_shutdown_wait_loop_s=1.0,  # a draining replica checks for in-flight requests this often
    graceful_shutdown_timeout_s=15.0,  # and is stopped at the latest after this
)

recommender_api = create_api("recursa gift recommender",
                             "A TRM policy recommends gifts, calling catalog tools on the server.")
tool_caller_api = create_api("recursa tool caller",
                             "OpenAI-compatible chat completions: tools in, tool_calls out, from a tiny recursive model.")
llm_api = create_api("recursa LLM",
                     "OpenAI-compatible completions and chat completions from a causal LM; each LoRA adapter "
                     "is a model of its own (GET /v1/models).")


def _apply_batching(method, batching: ServeBatching) -> None:
    method.set_max_batch_size(batching.max_batch_size)
    method.set_batch_wait_timeout_s(batching.batch_wait_timeout_s)


@serve.deployment(**DEPLOYMENT_DEFAULTS)
@serve.ingress(recommender_api)
class GiftRecommender:
    """Recommends gifts for a user profile with the exported TRM policy."""

    def __init__(self, args: dict):
        settings = parse_config(args, RecommenderServeArgs)
        configure_guard(settings.api_key, settings.max_body_bytes)
        self.core = recommender.GiftRecommenderCore(settings.export_dir, settings.precision, settings.model_name)
        _apply_batching(self.recommend_batch, settings.batching)

    @recommender_api.post("/recommend", response_model=RecommendResponse, responses=ERRORS)
    async def recommend(self, request: RecommendRequest) -> RecommendResponse:
        """Recommended items for a user, with the tool calls the policy made to choose them."""
        result = await self.recommend_batch(request)
        if isinstance(result, recommender.InvalidRequest):
            raise HTTPException(422, str(result))
        return result

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
    async def recommend_batch(self, requests: list[RecommendRequest]) -> list[RecommendResponse | Exception]:
        """The episodes of every request waiting in this replica, run in lockstep: each policy
        step is one forward pass for all of them."""
        return self.core.recommend(requests)

    def check_health(self) -> None:
        """Serve's health probe: the model must still pick a legal action."""
        if not self.core.healthy():
            raise RuntimeError("policy chose a masked action")

    def __del__(self) -> None:
        self.core.close()


@serve.deployment(**DEPLOYMENT_DEFAULTS)
@serve.ingress(tool_caller_api)
class ToolCaller:
    """The tool-calling TRM behind OpenAI's chat completions API."""

    def __init__(self, args: dict):
        settings = parse_config(args, ToolCallerServeArgs)
        configure_guard(settings.api_key, settings.max_body_bytes)
        self.core = tool_caller.ToolCallerCore(settings.model_dir, settings.precision, settings.model_name)
        _apply_batching(self.predict, settings.batching)

    @tool_caller_api.post("/v1/chat/completions", response_model=ChatCompletion, responses=STREAMED,
                          response_model_exclude_none=True)
    async def chat_completions(self, request: ChatCompletionRequest) -> ChatCompletion | StreamingResponse:
        """Tool calls for the last user message (or a plain message when no function fits)."""
        try:
            example = self.core.example(request)
        except LookupError as error:
            raise HTTPException(404, str(error)) from None
        except InvalidRequest as error:
            raise HTTPException(422, str(error)) from None
        calls = None if example is None else await self.predict(example)
        completion = self.core.completion(request, calls)
        if request.stream:  # the answer is whole at once: one chunk per choice
            return StreamingResponse(completed_events(completion, request.include_usage()), media_type=EVENT_STREAM)
        return completion

    @tool_caller_api.get("/v1/models", response_model=ModelList)
    async def models(self) -> ModelList:
        """The model this server answers as."""
        return self.core.models()

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
    async def predict(self, examples: list[FCExample]) -> list[list[FunctionCall]]:
        """Calls for every request waiting in this replica, in one forward pass."""
        return self.core.predict(examples)

    def check_health(self) -> None:
        """Serve's health probe: the model must answer a request."""
        self.core.predict([tool_caller.HEALTH_EXAMPLE])


class AdapterLease:
    """What Serve's multiplexing caches for a loaded adapter; Serve calls `__del__` to evict it."""

    def __init__(self, adapters: LoRAAdapters, name: str):
        self.adapters, self.name, self.released = adapters, name, False

    def __del__(self) -> None:
        if not self.released:  # Serve calls this on eviction, the garbage collector again later
            self.released = True
            self.adapters.evict(self.name)


@serve.deployment(**DEPLOYMENT_DEFAULTS)
@serve.ingress(llm_api)
class LLMServer:
    """A causal LM with LoRA adapters multiplexed on one copy of its weights, behind OpenAI's API."""

    def __init__(self, args: dict):
        settings = parse_config(args, LLMServeArgs)
        configure_guard(settings.api_key, settings.max_body_bytes)
        self.core = llm.LLMCore(settings)
        _apply_batching(self.generate, settings.batching)
        _apply_batching(self.generate_stream, settings.batching)
        adapters = self.core.adapters

        async def lease_adapter(name: str) -> AdapterLease:
            await asyncio.to_thread(adapters.load, name)
            return AdapterLease(adapters, name)

        # Wrapped here rather than decorated, so that the config sets how many adapters stay loaded.
        self.lease_adapter = serve.multiplexed(max_num_models_per_replica=settings.max_adapters_per_replica)(
            lease_adapter)

    @llm_api.post("/v1/completions", response_model=Completion, responses=STREAMED)
    async def completions(self, request: CompletionRequest) -> Completion | StreamingResponse:
        """The model's continuations of a prompt (`n` of them), or their tokens as server-sent events."""
        generation = await self._checked(self.core.completion_input, request)
        if request.stream:
            return self._streamed(request, generation)
        return self.core.completion(request, await self._choices(generation, request.n))

    @llm_api.post("/v1/chat/completions", response_model=ChatCompletion, responses=STREAMED,
                  response_model_exclude_none=True)
    async def chat_completions(self, request: LLMChatCompletionRequest) -> ChatCompletion | StreamingResponse:
        """The assistant's answers (`n` of them): tool calls when it calls an offered tool, else a
        message; streamed as server-sent events on request."""
        generation = await self._checked(self.core.chat_input, request)
        if request.stream:
            return self._streamed(request, generation)
        return self.core.chat_completion(request, await self._choices(generation, request.n))

    @llm_api.get("/v1/models", response_model=ModelList)
    async def models(self) -> ModelList:
        """The model and its adapters, each an id to pass as `model`."""
        return self.core.models()

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def generate(self, batch: list[llm.Generation]) -> list[llm.Generated]:
        """Every generation waiting in this replica, grouped by adapter, off the event loop."""
        return await asyncio.to_thread(self.core.generate, batch)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def generate_stream(self, jobs: list[llm_stream.StreamJob]) -> AsyncIterator[list[llm_stream.StepItem]]:
        """Every streamed request waiting in this replica: each decoding step reaches its
        requests as it happens."""
        async for items in llm_stream.batch_steps(self.core, jobs):
            yield items

    def _streamed(self, request: CompletionRequest | LLMChatCompletionRequest,
                  generation: llm.Generation) -> StreamingResponse:
        items = self.generate_stream(llm_stream.StreamJob(generation, request.n))
        return StreamingResponse(llm_stream.stream_events(self.core, request, generation, items),
                                 media_type=EVENT_STREAM)

    async def _choices(self, generation: llm.Generation, n: int) -> list[llm.Generated]:
        """`n` answers; each joins the batch on its own, and sampled ones differ."""
        return list(await asyncio.gather(*(self.generate(generation) for _ in range(n))))

    async def check_health(self) -> None:
        """Serve's health probe: the model must generate (off the event loop, like requests)."""
        await asyncio.to_thread(self.core.health_check)

    async def _checked(self, build: Callable[[Any], llm.Generation], request: Any) -> llm.Generation:
        """The request's generation, its adapter loaded; client errors as HTTP 404 and 422."""
        try:
            generation = build(request)
        except LookupError as error:
            raise HTTPException(404, str(error)) from None
        except InvalidRequest as error:
            raise HTTPException(422, str(error)) from None
        if generation.adapter is not None:
            await self.lease_adapter(generation.adapter)
        return generation


def recommender_app(args: dict) -> Application:
    """Serve application builder (import path `recursa.serving.deployments:recommender_app`)."""
    parse_config(args, RecommenderServeArgs)  # fail at build time, with the field named
    return GiftRecommender.bind(dict(args))


def tool_caller_app(args: dict) -> Application:
    """Serve application builder (import path `recursa.serving.deployments:tool_caller_app`)."""
    parse_config(args, ToolCallerServeArgs)
    return ToolCaller.bind(dict(args))


def llm_app(args: dict) -> Application:
    """Serve application builder (import path `recursa.serving.deployments:llm_app`)."""
    parse_config(args, LLMServeArgs)
    return LLMServer.bind(dict(args))
