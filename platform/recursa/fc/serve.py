"""The tool-calling TRM on Ray Serve behind OpenAI's chat completions API
(import path `recursa.fc.serve:app`)."""

from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from ray import serve
from ray.serve import Application

from recursa.core.config import parse_config
from recursa.fc import serve_core
from recursa.fc.config import ToolCallerServeArgs
from recursa.fc.data.schema import FCExample
from recursa.serving.chat_tools import InvalidRequest
from recursa.serving.chunks import completed_events
from recursa.serving.deployments import DEPLOYMENT_DEFAULTS, EVENT_STREAM, STREAMED, apply_batching, build_app
from recursa.serving.http import configure_guard, create_api
from recursa.serving.schemas import ChatCompletion, ChatCompletionRequest, ModelList
from recursa.tools.schema import FunctionCall

tool_caller_api = create_api("recursa tool caller",
                             "OpenAI-compatible chat completions: tools in, tool_calls out, from a tiny recursive model.")


@serve.deployment(**DEPLOYMENT_DEFAULTS)
@serve.ingress(tool_caller_api)
class ToolCaller:
    """The tool-calling TRM behind OpenAI's chat completions API."""

    def __init__(self, args: dict):
        settings = parse_config(args, ToolCallerServeArgs)
        configure_guard(settings.api_key, settings.max_body_bytes)
        self.core = serve_core.ToolCallerCore(settings.model_dir, settings.precision, settings.model_name)
        apply_batching(self.predict, settings.batching)

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
        self.core.predict([serve_core.HEALTH_EXAMPLE])



def app(args: dict) -> Application:
    """Serve application builder."""
    return build_app(ToolCaller, args, ToolCallerServeArgs)
