"""Function calling as an environment for LLM agents: one episode is one generated example.

The agent is shown the request as a chat with the example's functions offered and answers once,
in recursa's tool-calling format. The reward has two parts, both reported per episode in the
step's `info`: AST validity against the example's possible answers (BFCL's rules: right
functions, right count, every argument an acceptable value; for a no-call example, no call) and
the execution reward of the sandboxed executor (the share of expected results the calls
reproduce). A malformed answer (a `<tool_call>` tag that does not hold a JSON list of calls) is a
format error with the actions' penalty, and so is the wrong decision: no call where calls are
expected, or a call where none fits. Without that, answering in text is a safe default that GRPO
learns at once (it scores 0 on every call example and 2 on every no-call one, while an attempted
call risks the malformed penalty): measured on `make llm-bfcl`, the policy stopped calling
altogether within six iterations while its held-out reward rose. Examples come from recursa's
generator, never from BFCL.
"""

from __future__ import annotations

from recursa.fc.ast_reward import score_example
from recursa.fc.data.generator import generate_examples
from recursa.fc.data.schema import FCExample
from recursa.fc.execution_reward import ExecutionScorer
from recursa.llm.actions import (
    MALFORMED_PENALTY,
    ActionParseError,
    ActionResult,
    AgentState,
    BaseAgent,
    BaseEnvironment,
    ChatTask,
)
from recursa.llm.tool_calls import format_tool_calls, parse_tool_calls

AST_WEIGHT = 1.0
EXECUTION_WEIGHT = 1.0
CALL, ANSWER = "call", "answer"


class FunctionCallingEnv(BaseEnvironment):
    """One generated function-calling example per episode, answered once."""

    domain = "function_calling"
    max_steps = 1
    answer_tokens = 160  # the longest generated answers (parallel calls with lists) run to about 150 tokens

    def __init__(self) -> None:
        self.example: FCExample | None = None
        self.solved = False

    def valid_actions(self) -> list[str]:
        return [CALL, ANSWER]

    def reset(self, problem: FCExample) -> str:
        self.example, self.solved = problem, False
        return problem.query

    def chat_task(self) -> ChatTask:
        example = self._current()
        return ChatTask(messages=[{"role": "user", "content": example.query}], functions=list(example.functions))

    def parse(self, output: str) -> tuple[str, str]:
        """"call" or "answer" with the output itself; a malformed tool call is an ActionParseError."""
        parsed = parse_tool_calls(output)
        if parsed.malformed:
            raise ActionParseError(f"malformed tool call: {parsed.error}")
        return (CALL if parsed.calls else ANSWER), output.strip()

    def completion(self, action: str, params: str) -> str:
        return params

    def step(self, action: str, params: str) -> ActionResult:
        example = self._current()
        calls = parse_tool_calls(params).calls
        ast = score_example(calls, example)
        execution = ExecutionScorer(example).reward(calls)
        self.solved = ast.valid
        wrong_decision = bool(calls) != bool(example.calls)
        reward = (MALFORMED_PENALTY if wrong_decision
                  else AST_WEIGHT * float(ast.valid) + EXECUTION_WEIGHT * execution)
        observation = "correct" if ast.valid else f"incorrect: {ast.error}"
        return ActionResult(observation, reward, True,
                            {"ast": float(ast.valid), "execution": execution, "calls": float(len(calls)),
                             "wrong_decision": float(wrong_decision)})

    def is_success(self) -> bool:
        return self.solved

    @classmethod
    def sample_problems(cls, count: int, seed: int) -> list[FCExample]:
        return generate_examples(count, seed=seed)

    @classmethod
    def expert(cls) -> BaseAgent:
        return GoldCaller()

    def _current(self) -> FCExample:
        if self.example is None:
            raise RuntimeError("reset the environment before stepping it")
        return self.example


class GoldCaller(BaseAgent):
    """Writes each example's expected calls (the plain no-call answer when there are none)."""

    def select_action(self, state: AgentState) -> str:
        return format_tool_calls(state.problem.calls)
