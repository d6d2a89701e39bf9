"""Linear equations solved one action at a time: the math demo of the action environments.

A problem is `a*x + b = c` with an integer solution. The environment does the arithmetic; the agent
chooses the procedure: name the first inverse operation, remove the constant term (subtract or
add it), divide by the coefficient, state the answer. Each action has its own reward, so a policy
learns which step comes next and which number it takes from the equation in front of it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from recursa.llm.actions import ActionResult, AgentState, BaseAgent, BaseEnvironment, format_action

REWARDS = {"identify": 1.5, "transform": 2.0, "answer": 3.0, "wrong_step": -1.0, "wrong_answer": -2.0}
ACTIONS = ["identify_operation", "subtract_terms", "add_terms", "divide_terms", "state_answer"]


@dataclass(frozen=True)
class LinearEquation:
    """a*x + b = c with integer x; b may be negative or zero, a may be one."""

    a: int
    b: int
    c: int

    @property
    def solution(self) -> int:
        return (self.c - self.b) // self.a

    def __str__(self) -> str:
        return render(self.a, self.b, self.c)


def render(a: int, b: int, c: int) -> str:
    """'3x + 7 = 16', 'x - 4 = 2', '5x = 20'."""
    left = "x" if a == 1 else f"{a}x"
    if b > 0:
        left += f" + {b}"
    elif b < 0:
        left += f" - {-b}"
    return f"{left} = {c}"


def sample_equation(rng: random.Random) -> LinearEquation:
    """An equation in one of four shapes: ax+b=c, ax-b=c, x+b=c, ax=c; x in 1..12."""
    x = rng.randint(1, 12)
    shape = rng.choice(["plus", "minus", "unit", "product"])
    a = 1 if shape == "unit" else rng.randint(2, 9)
    b = 0 if shape == "product" else rng.randint(1, 20) * (-1 if shape == "minus" else 1)
    if shape == "unit" and rng.random() < 0.5:
        b = -b
    return LinearEquation(a, b, a * x + b)


def sample_equations(count: int, seed: int) -> list[LinearEquation]:
    """`count` equations, reproducible from `seed`."""
    rng = random.Random(seed)
    return [sample_equation(rng) for _ in range(count)]


def first_operation(a: int, b: int) -> str:
    """The inverse operation that comes first: remove the constant, else divide."""
    if b > 0:
        return "subtract"
    if b < 0:
        return "add"
    return "divide" if a != 1 else "none"


def _integer(params: str) -> int | None:
    try:
        return int(params.strip())
    except ValueError:
        return None


class LinearEquationEnv(BaseEnvironment):
    """Solve a*x + b = c step by step; the equation in view changes as terms are removed."""

    domain = "math"
    max_steps = 6

    def __init__(self) -> None:
        self.a = self.b = self.c = 0
        self.answer: int | None = None
        self.solved = False
        self.identified = False

    def valid_actions(self) -> list[str]:
        return list(ACTIONS)

    def reset(self, problem: LinearEquation) -> str:
        self.a, self.b, self.c = problem.a, problem.b, problem.c
        self.answer, self.solved, self.identified = problem.solution, False, False
        return f"Solve for x: {problem}"

    def step(self, action: str, params: str) -> ActionResult:
        if action == "identify_operation":
            return self._identify(params.strip().lower())
        if action == "state_answer":
            value = _integer(params)
            self.solved = value == self.answer
            if self.solved:
                return ActionResult(f"Correct: x = {value}", REWARDS["answer"], True)
            return ActionResult(f"Wrong answer: {params.strip()}", REWARDS["wrong_answer"], True)
        value = _integer(params)
        if value is None:
            return ActionResult(f"Invalid action: {action} needs an integer, got {params!r}",
                                REWARDS["wrong_step"], False)
        return self._transform(action, value)

    def is_success(self) -> bool:
        return self.solved

    @classmethod
    def sample_problems(cls, count: int, seed: int) -> list[LinearEquation]:
        return sample_equations(count, seed)

    @classmethod
    def expert(cls) -> ExpertMathAgent:
        return ExpertMathAgent()

    def _identify(self, operation: str) -> ActionResult:
        expected = first_operation(self.a, self.b)
        if operation == expected and not self.identified:
            self.identified = True
            return ActionResult(f"Yes: {expected} first. {render(self.a, self.b, self.c)}", REWARDS["identify"], False)
        return ActionResult(f"Not helpful. {render(self.a, self.b, self.c)}", REWARDS["wrong_step"], False)

    def _transform(self, action: str, value: int) -> ActionResult:
        if action == "subtract_terms" and self.b > 0 and value == self.b:
            self.c, self.b = self.c - value, 0
        elif action == "add_terms" and self.b < 0 and value == -self.b:
            self.c, self.b = self.c + value, 0
        elif action == "divide_terms" and self.b == 0 and self.a != 1 and value == self.a:
            self.c, self.a = self.c // value, 1
        else:
            return ActionResult(f"That does not isolate x. {render(self.a, self.b, self.c)}",
                                REWARDS["wrong_step"], False)
        return ActionResult(render(self.a, self.b, self.c), REWARDS["transform"], False)


class ExpertMathAgent(BaseAgent):
    """Solves every equation by the book: identify, remove the constant, divide, answer.

    Reads the equation from the latest observation, as an LLM agent has to.
    """

    def select_action(self, state: AgentState) -> str:
        a, b, c = _equation_in_view(state)
        if not state.history:
            return format_action("identify_operation", first_operation(a, b))
        if b > 0:
            return format_action("subtract_terms", str(b))
        if b < 0:
            return format_action("add_terms", str(-b))
        if a != 1:
            return format_action("divide_terms", str(a))
        return format_action("state_answer", str(c))


class RandomMathAgent(BaseAgent):
    """Picks an action and a number at random: the floor a trained policy must beat."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def select_action(self, state: AgentState) -> str:
        name = self.rng.choice(ACTIONS)
        param = self.rng.choice(["subtract", "add", "divide"]) if name == "identify_operation" \
            else str(self.rng.randint(1, 20))
        return format_action(name, param)


EQUATION = re.compile(r"(\d*)x(?: ([+-]) (\d+))? = (-?\d+)")


def _equation_in_view(state: AgentState) -> tuple[int, int, int]:
    """The latest equation shown to the agent, as (a, b, c)."""
    for text in [observation for _, observation in reversed(state.history)] + [state.task]:
        match = EQUATION.search(text)
        if match:
            a, sign, b, c = match.groups()
            return int(a or 1), int(b or 0) * (-1 if sign == "-" else 1), int(c)
    raise ValueError(f"no equation in view: {state.task!r}")
