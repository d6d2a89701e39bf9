"""OpenAI chat completions answered by the tool-calling TRM.

The TRM reads one request (the last user message) and the offered functions, and answers with
calls or with no call; a request without tools, or with `tool_choice: "none"`, gets a plain
assistant message without running the model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

from recursa.fc.artifact import load_fc_model, predict_calls
from recursa.fc.data.schema import FCExample
from recursa.serving.chat_tools import InvalidRequest, offered_functions
from recursa.serving.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    FunctionCallOut,
    ModelCard,
    ModelList,
    ToolCallOut,
)
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

NO_CALL_TEXT = "None of the offered functions fits this request."
NO_TOOLS_TEXT = "This model only answers with function calls; offer functions in `tools`."

# What the health check asks the model: a fixed request, answered within the health timeout.
HEALTH_EXAMPLE = FCExample(id="health", query="What is the weather in Paris?", functions=[
    FunctionSpec(name="get_weather", description="Current weather in a city",
                 parameters=[ParamSpec(name="city", type="string", description="City name")])])


class ToolCallerCore:
    """The tool-calling TRM behind OpenAI's request and response shapes."""

    def __init__(self, model_dir: str | Path, precision: Literal["fp32", "int8"] = "fp32",
                 name: str = "recursa-trm-fc"):
        if precision == "int8":
            from recursa.fc.export import load_fc_int8

            self.model, self.featurizer = load_fc_int8(model_dir)
        else:
            self.model, self.featurizer = load_fc_model(model_dir)
        self.name = name
        self.created = int(time.time())

    def models(self) -> ModelList:
        """The one model this server answers as."""
        return ModelList(data=[ModelCard(id=self.name, created=self.created)])

    def example(self, request: ChatCompletionRequest) -> FCExample | None:
        """The model's input for a request, or None when the answer is a plain message."""
        if request.model != self.name:
            raise LookupError(f"model {request.model!r} does not exist; this server serves {self.name!r}")
        if not request.tools or request.tool_choice == "none":
            return None
        users = [m for m in request.messages if m.role == "user"]
        if not users or not users[-1].text().strip():
            raise InvalidRequest("messages: no user message with text to answer")
        return FCExample(id="request", query=users[-1].text(), functions=offered_functions(request.tools))

    def predict(self, examples: list[FCExample]) -> list[list[FunctionCall]]:
        """Calls for a batch of examples, in one forward pass."""
        return predict_calls(self.model, self.featurizer, examples, batch_size=max(1, len(examples)))

    def completion(self, request: ChatCompletionRequest, calls: list[FunctionCall] | None) -> ChatCompletion:
        """The response for a request and the model's calls (None: the model was not asked)."""
        if calls:
            tool_calls = [ToolCallOut(function=FunctionCallOut(name=c.name, arguments=json.dumps(c.arguments)))
                          for c in calls]
            message, finish = AssistantMessage(content=None, tool_calls=tool_calls), "tool_calls"
        else:
            message, finish = AssistantMessage(content=NO_TOOLS_TEXT if calls is None else NO_CALL_TEXT), "stop"
        # The model decodes greedily: `n` choices are the same answer.
        choices = [Choice(index=i, message=message, finish_reason=finish) for i in range(request.n)]
        return ChatCompletion(model=self.name, choices=choices)
