"""A causal LM with LoRA adapters on Ray Serve behind OpenAI's completions and chat completions APIs
(import path `recursa.llm.serve:app`)."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from ray import serve
from ray.serve import Application

from recursa.core.config import parse_config
from recursa.decisions.serving import RoutedServing
from recursa.llm import serve_core, stream
from recursa.llm.config import LLMServeArgs
from recursa.llm.generation import Engine, Generation
from recursa.serving.chat_tools import InvalidRequest
from recursa.serving.deployments import DEPLOYMENT_DEFAULTS, EVENT_STREAM, STREAMED, apply_batching, build_app
from recursa.serving.http import configure_guard, create_api
from recursa.serving.schemas import ChatCompletion, Completion, CompletionRequest, LLMChatCompletionRequest, ModelList

Request = TypeVar("Request", CompletionRequest, LLMChatCompletionRequest)

llm_api = create_api("recursa LLM",
                     "OpenAI-compatible completions and chat completions from a causal LM; each LoRA adapter "
                     "is a model of its own (GET /v1/models).")


class AdapterLease:
    """What Serve's multiplexing caches for a loaded adapter; Serve calls `__del__` to evict it."""

    def __init__(self, engine: Engine, name: str):
        self.engine, self.name, self.released = engine, name, False

    def __del__(self) -> None:
        if not self.released:  # Serve calls this on eviction, the garbage collector again later
            self.released = True
            self.engine.evict(self.name)


@serve.deployment(**DEPLOYMENT_DEFAULTS)
@serve.ingress(llm_api)
class LLMServer:
    """A causal LM with LoRA adapters multiplexed on one copy of its weights, behind OpenAI's API."""

    def __init__(self, args: dict):
        settings = parse_config(args, LLMServeArgs)
        configure_guard(settings.api_key, settings.max_body_bytes)
        self.core = serve_core.LLMCore(settings)
        self.routing = RoutedServing(settings.routes, settings.decisions_db)
        apply_batching(self.generate, settings.batching)
        apply_batching(self.generate_stream, settings.batching)
        engine = self.core.engine

        async def lease_adapter(name: str) -> AdapterLease:
            await asyncio.to_thread(engine.load, name)
            return AdapterLease(engine, name)

        # Wrapped here rather than decorated, so that the config sets how many adapters stay loaded.
        self.lease_adapter = serve.multiplexed(max_num_models_per_replica=settings.max_adapters_per_replica)(
            lease_adapter)

    @llm_api.post("/v1/completions", response_model=Completion, responses=STREAMED)
    async def completions(self, request: CompletionRequest) -> Completion | StreamingResponse:
        """The model's continuations of a prompt (`n` of them), or their tokens as server-sent events."""
        request, routed = self._routed(request)
        generation = await self._checked(self.core.completion_input, request)
        if request.stream:
            return self._streamed(request, generation)
        completion = self.core.completion(request, await self._choices(generation, request.n))
        if routed is not None:
            await asyncio.to_thread(self.routing.record, routed, request.model, request.prompt,
                                    [choice.text for choice in completion.choices], request.user)
        return completion

    @llm_api.post("/v1/chat/completions", response_model=ChatCompletion, responses=STREAMED,
                  response_model_exclude_none=True)
    async def chat_completions(self, request: LLMChatCompletionRequest) -> ChatCompletion | StreamingResponse:
        """The assistant's answers (`n` of them): tool calls when it calls an offered tool, else a
        message; streamed as server-sent events on request."""
        request, routed = self._routed(request)
        generation = await self._checked(self.core.chat_input, request)
        if request.stream:
            return self._streamed(request, generation)
        completion = self.core.chat_completion(request, await self._choices(generation, request.n))
        if routed is not None:
            messages = json.dumps([message.model_dump(exclude_none=True) for message in request.messages])
            await asyncio.to_thread(self.routing.record, routed, request.model, messages,
                                    [choice.message.model_dump_json(exclude_none=True) for choice in completion.choices],
                                    request.user)
        return completion

    @llm_api.get("/v1/models", response_model=ModelList)
    async def models(self) -> ModelList:
        """The model and its adapters, each an id to pass as `model`."""
        return self.core.models()

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def generate(self, batch: list[Generation]) -> list[serve_core.Generated]:
        """Every generation waiting in this replica, grouped by adapter, off the event loop."""
        return await asyncio.to_thread(self.core.generate, batch)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def generate_stream(self, jobs: list[stream.StreamJob]) -> AsyncIterator[list[stream.StepItem]]:
        """Every streamed request waiting in this replica: each decoding step reaches its
        requests as it happens."""
        async for items in stream.batch_steps(self.core, jobs):
            yield items

    def _streamed(self, request: CompletionRequest | LLMChatCompletionRequest,
                  generation: Generation) -> StreamingResponse:
        items = self.generate_stream(stream.StreamJob(generation, request.n))
        return StreamingResponse(stream.stream_events(self.core, request, generation, items),
                                 media_type=EVENT_STREAM)

    async def _choices(self, generation: Generation, n: int) -> list[serve_core.Generated]:
        """`n` answers; each joins the batch on its own, and sampled ones differ."""
        return list(await asyncio.gather(*(self.generate(generation) for _ in range(n))))

    async def check_health(self) -> None:
        """Serve's health probe: the model must generate (off the event loop, like requests)."""
        await asyncio.to_thread(self.core.health_check)

    def _routed(self, request: Request) -> tuple[Request, str | None]:
        """The request as the version its A/B route picks answers it (its `model` that version), and the
        routed name; the request itself and None when its model is not routed. Streamed answers are
        routed but not recorded."""
        version = self.routing.version(request.model, request.user)
        if version is None:
            return request, None
        return request.model_copy(update={"model": version}), request.model

    async def _checked(self, build: Callable[[Any], Generation], request: Any) -> Generation:
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



def app(args: dict) -> Application:
    """Serve application builder."""
    return build_app(LLMServer, args, LLMServeArgs)
