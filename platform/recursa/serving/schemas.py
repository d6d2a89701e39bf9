"""HTTP request and response bodies of OpenAI's (chat) completions, shared by every model server.

Limits on list lengths and string sizes are part of the schemas, so an oversized request is
a 422 with the field named, never work for the model.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_MESSAGES = 64
MAX_TOOLS = 16  # the tool caller attends over at most this many functions
MAX_TEXT = 8_000  # characters of one message
MAX_CHOICES = 8  # `n`: choices answered for one request
ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class Strict(BaseModel):
    """A request body: unknown fields are a 422, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ OpenAI chat completions
class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: ToolName
    description: str = Field("", max_length=MAX_TEXT)
    parameters: dict[str, Any] = Field(default_factory=dict)


class ToolDefinition(Strict):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = Field(None, max_length=MAX_TEXT)


class FunctionCallOut(BaseModel):
    name: str
    arguments: str = Field(description="The arguments as a JSON object string.")


class ToolCallOut(BaseModel):
    id: str = Field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")
    type: Literal["function"] = "function"
    function: FunctionCallOut


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Annotated[str, Field(max_length=MAX_TEXT)] | Annotated[list[ContentPart], Field(max_length=32)] | None = None
    tool_calls: list[ToolCallOut] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text, parts joined."""
        if isinstance(self.content, list):
            return " ".join(part.text or "" for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class Streaming(BaseModel):
    """How many choices to answer with, and whether to stream them as server-sent events."""

    n: int = Field(1, ge=1, le=MAX_CHOICES, description="Choices to generate for the prompt.")
    stream: bool = Field(False, description="Send the answer as server-sent events, token by token.")
    stream_options: StreamOptions | None = None

    def include_usage(self) -> bool:
        """Whether a stream ends with a chunk of token counts."""
        return self.stream_options is not None and self.stream_options.include_usage


class ChatCompletionRequest(Streaming):
    """OpenAI's request; sampling options are accepted and ignored (decoding is greedy)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    user: str | None = Field(None, max_length=256, description="The end user: A/B routes keep a user on one version.")
    tools: list[ToolDefinition] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: Literal["auto", "none", "required"] | dict[str, Any] | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str = Field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage | None = None


# ------------------------------------------------------------------ sampled text (the LLM server)
class SamplingOptions(BaseModel):
    """How a language model decodes: greedy unless `temperature` > 0."""

    max_tokens: int | None = Field(None, ge=1, description="New tokens at most; the server's limit by default.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 decodes greedily.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: Annotated[str, Field(min_length=1, max_length=64)] | \
        Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=4)] | None = None
    seed: int | None = Field(None, description="Seed of the sampler, for repeatable sampled answers.")

    def stop_strings(self) -> tuple[str, ...]:
        """`stop` as a tuple."""
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class LLMChatCompletionRequest(ChatCompletionRequest, SamplingOptions):
    """OpenAI's chat request with the sampling and streaming options the LLM server honours."""


class CompletionRequest(Streaming, SamplingOptions):
    """OpenAI's (legacy) completions request, for one prompt."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(max_length=256)
    prompt: str = Field(min_length=1, max_length=4 * MAX_TEXT)
    user: str | None = Field(None, max_length=256, description="The end user: A/B routes keep a user on one version.")


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: Literal["stop", "length"]


class Completion(BaseModel):
    id: str = Field(default_factory=lambda: f"cmpl-{uuid.uuid4().hex}")
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: Usage


# ------------------------------------------------------------------ streamed chunks (server-sent events)
class ToolCallDelta(ToolCallOut):
    index: int = 0


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None


class StreamChunk(BaseModel):
    """What every chunk of one streamed answer shares; the last may carry the token counts."""

    id: str
    created: int
    model: str
    usage: Usage | None = None


class ChatCompletionChunk(StreamChunk):
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    choices: list[ChunkChoice]


class CompletionChunkChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"] | None = None


class CompletionChunk(StreamChunk):
    object: Literal["text_completion"] = "text_completion"
    choices: list[CompletionChunkChoice]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "recursa"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every 4xx: OpenAI's error shape, so OpenAI clients raise a readable exception."""

    error: ErrorBody
