"""Action environments for text agents: an agent writes `Action: name(params)` lines, the
environment answers each with an observation and a reward of its own.

`BaseEnvironment` is what a domain implements (see examples/custom_domain.py); `BaseAgent` is
anything that picks actions (a scripted expert, an LLM); `run_episodes` plays agents against
environments in lock step, so that an LLM agent generates one batch per step for every episode.
A malformed action never crashes an episode: it becomes an observation and a penalty.

An environment may instead pose its task as a chat with functions offered (`chat_task`) and read
the answer in its own way (`parse`): the function-calling environment does, so that its agents
are prompted and answer in recursa's tool-calling format (`recursa.llm.tool_calls`).
"""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from recursa.core.imports import import_object
from recursa.tools.schema import FunctionSpec
from recursa.traces.models import ExecutionTrace, ReasoningStep

ACTION_PATTERN = re.compile(r"^\s*(?:Action:\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$")
MALFORMED_PENALTY = -1.0


@dataclass
class ActionResult:
    """What the environment answers to one action."""

    observation: str
    reward: float
    done: bool
    info: dict[str, Any] = field(default_factory=dict)


class ActionParseError(ValueError):
    """The agent's output is not one `Action: name(params)` line."""


def parse_action(text: str) -> tuple[str, str]:
    """The (name, params) of the first non-empty line of `text`, which must read `Action: name(params)`."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise ActionParseError("empty output; expected 'Action: name(params)'")
    match = ACTION_PATTERN.match(lines[0])
    if match is None:
        raise ActionParseError(f"not an action: {lines[0][:80]!r}; expected 'Action: name(params)'")
    return match.group(1), match.group(2).strip()


def format_action(name: str, params: str = "") -> str:
    """The canonical text of an action, as agents write it."""
    return f"Action: {name}({params})"


@dataclass
class ChatTask:
    """A task posed as chat messages with functions offered, for environments answered in the
    tool-calling format."""

    messages: list[dict[str, Any]]
    functions: list[FunctionSpec]


class BaseEnvironment(ABC):
    """A problem-solving domain with named actions, each rewarded on its own."""

    #: Names the trajectory's trace files under (ExecutionTrace.agent_type).
    domain: str = "custom"
    #: Episodes end unsolved after this many actions.
    max_steps: int = 8
    #: Tokens an agent may write for one action.
    answer_tokens: int = 16

    @abstractmethod
    def valid_actions(self) -> list[str]:
        """The action names this environment understands."""

    @abstractmethod
    def reset(self, problem: Any) -> str:
        """Start an episode on `problem`; return the first observation (the task as text)."""

    @abstractmethod
    def step(self, action: str, params: str) -> ActionResult:
        """Apply one action; unknown actions and bad params are the environment's to penalise."""

    def is_success(self) -> bool:
        """Whether the episode so far solved the problem."""
        return False

    def chat_task(self) -> ChatTask | None:
        """The episode's task as a chat with functions, after `reset`; None: agents read the transcript."""
        return None

    def parse(self, output: str) -> tuple[str, str]:
        """The (action, params) an agent's output means; ActionParseError if it means none."""
        name, params = parse_action(output)
        if name not in self.valid_actions():
            raise ActionParseError(f"unknown action {name!r}")
        return name, params

    def completion(self, action: str, params: str) -> str:
        """The text an agent is trained to write for a valid action (it follows the prompt)."""
        return f" {action}({params})"

    @classmethod
    @abstractmethod
    def sample_problems(cls, count: int, seed: int) -> list[Any]:
        """`count` problems of this domain, reproducible from `seed`."""

    @classmethod
    def expert(cls) -> BaseAgent | None:
        """A scripted agent that solves the domain, for supervised warm starts; None if there is none."""
        return None


@dataclass
class AgentState:
    """What an agent sees before choosing its next action."""

    task: str
    valid_actions: list[str]
    history: list[tuple[str, str]] = field(default_factory=list)  # (action text, observation)
    chat: ChatTask | None = None  # the task as a chat, for environments answered in the tool-calling format
    problem: Any = None  # what the episode plays; scripted experts may read it

    def transcript(self) -> str:
        """The task, the actions on offer and the episode so far, ending where the next action goes."""
        lines = [self.task, "Actions: " + ", ".join(self.valid_actions)]
        for action, observation in self.history:
            lines += [action, f"Observation: {observation}"]
        return "\n".join(lines) + "\nAction:"


class BaseAgent(ABC):
    """Chooses actions. Returns the raw text it would write; the runner parses it."""

    @abstractmethod
    def select_action(self, state: AgentState) -> str:
        """One action as text, e.g. 'Action: divide_terms(3)'."""

    def prompt(self, state: AgentState) -> str:
        """The text this agent is given for `state` (an LLM agent renders chat tasks with its tokenizer)."""
        return state.transcript()

    def select_actions(self, states: Sequence[AgentState]) -> list[str]:
        """Actions for many episodes at once (an LLM agent generates them as one batch)."""
        return [self.select_action(state) for state in states]


class NoisyAgent(BaseAgent):
    """Another agent whose action name is replaced by a random valid one with probability `noise`."""

    def __init__(self, agent: BaseAgent, noise: float, seed: int = 0) -> None:
        self.agent, self.noise, self.rng = agent, noise, random.Random(seed)

    def select_action(self, state: AgentState) -> str:
        output = self.agent.select_action(state)
        if self.rng.random() >= self.noise:
            return output
        _, params = parse_action(output)
        return format_action(self.rng.choice(state.valid_actions), params)


@dataclass
class Step:
    """One action of an episode: what the agent saw and wrote, and what came back."""

    prompt: str
    output: str
    action: str | None  # parsed name, None when malformed
    params: str
    observation: str
    reward: float
    valid: bool
    output_ids: list[int] | None = None  # the tokens an LLM agent generated, when it reports them
    completion: str = ""  # what an agent is trained to write here (the canonical action when valid)
    info: dict[str, Any] = field(default_factory=dict)  # the environment's reward components and notes


@dataclass
class Trajectory:
    """One episode of one agent on one problem."""

    problem: Any
    task: str
    steps: list[Step] = field(default_factory=list)
    success: bool = False
    domain: str = "custom"
    index: int = 0  # position of the problem in the list the episode was played from

    @property
    def total_reward(self) -> float:
        return sum(step.reward for step in self.steps)

    @property
    def format_errors(self) -> int:
        return sum(not step.valid for step in self.steps)

    def to_trace(self, agent_type: str | None = None) -> ExecutionTrace:
        """The episode as an ExecutionTrace (one reasoning step per action) for the store and rewards."""
        return ExecutionTrace(
            agent_type=agent_type or self.domain,
            query=self.task,
            reasoning_steps=[ReasoningStep(index=i, action=s.output.strip(), observation=s.observation,
                                           reward=s.reward) for i, s in enumerate(self.steps)],
            final_response="\n".join(s.output.strip() for s in self.steps),
            reward=self.total_reward,
            metadata={"success": self.success, "format_errors": self.format_errors,
                      "problem": str(self.problem)},
        )


def _apply(env: BaseEnvironment, state: AgentState, prompt: str, output: str) -> tuple[Step, bool]:
    """Parse and apply one output; a malformed or unknown action is penalised, never raised."""
    try:
        name, params = env.parse(output)
    except ActionParseError as error:
        result = ActionResult(f"Invalid action: {error}", MALFORMED_PENALTY, False)
        first_line = (output.strip().splitlines() or [""])[0][:80]
        state.history.append((f"Action: {first_line.removeprefix('Action:').strip()}", result.observation))
        return Step(prompt, output, None, "", result.observation, result.reward, valid=False,
                    completion=" " + output.strip(), info={"malformed": 1.0}), False
    result = env.step(name, params)
    state.history.append((format_action(name, params), result.observation))
    return Step(prompt, output, name, params, result.observation, result.reward, valid=True,
                completion=env.completion(name, params), info=result.info), result.done


def run_episodes(make_env: Callable[[], BaseEnvironment], agent: BaseAgent, problems: Sequence[Any],
                 render: Callable[[AgentState], str] | None = None) -> Iterator[Trajectory]:
    """Play `agent` on every problem, all episodes in lock step; yield each trajectory as it ends.

    `render` writes the prompt each step records (default: the agent's own `prompt`), so that a
    scripted expert's episodes carry the prompts an LLM will be trained on.
    """
    render = render or agent.prompt
    envs = [make_env() for _ in problems]
    trajectories: list[Trajectory] = []
    states: list[AgentState] = []
    for env, problem in zip(envs, problems):
        task = env.reset(problem)
        trajectories.append(Trajectory(problem=problem, task=task, domain=env.domain, index=len(trajectories)))
        states.append(AgentState(task=task, valid_actions=env.valid_actions(), chat=env.chat_task(),
                                 problem=problem))
    active = list(range(len(problems)))
    while active:
        outputs = agent.select_actions([states[i] for i in active])
        still_active = []
        for i, output in zip(active, outputs):
            step, done = _apply(envs[i], states[i], render(states[i]), output)
            trajectories[i].steps.append(step)
            if done or len(trajectories[i].steps) >= envs[i].max_steps:
                trajectories[i].success = envs[i].is_success()
                yield trajectories[i]
            else:
                still_active.append(i)
        active = still_active


BUILTIN_ENVS = {"math": "recursa.llm.math_env:LinearEquationEnv",
                "function_calling": "recursa.llm.fc_env:FunctionCallingEnv"}


def resolve_action_env(spec: str) -> type[BaseEnvironment]:
    """An environment class from a built-in name ("math") or an import path "package.module:Class"."""
    if spec not in BUILTIN_ENVS and ":" not in spec:
        raise ValueError(f"unknown environment {spec!r}: use one of {sorted(BUILTIN_ENVS)} or 'module:Class'")
    env_class = import_object(BUILTIN_ENVS.get(spec, spec), "environment")
    if not (isinstance(env_class, type) and issubclass(env_class, BaseEnvironment)):
        raise ValueError(f"environment {spec!r} is not a BaseEnvironment subclass")
    return env_class
