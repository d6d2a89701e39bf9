"""A template for your own action domain: copy this file, rename the classes, change the actions.

This example converts lengths ("Convert 3 km to m"): look up the factor, multiply, state the answer.
Train an LLM on it with the domain's import path as the environment, e.g. in a config:

    data: {env: "custom_domain:UnitConversionEnv"}       # with examples/ on PYTHONPATH

or evaluate a model on it:

    PYTHONPATH=examples recursa eval llm --base runs/tiny-llm --env custom_domain:UnitConversionEnv
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from recursa.llm.actions import ActionResult, AgentState, BaseAgent, BaseEnvironment, format_action

FACTORS = {("km", "m"): 1000, ("m", "cm"): 100, ("cm", "mm"): 10, ("m", "mm"): 1000}


@dataclass(frozen=True)
class Conversion:
    """One problem: `amount` in `source` units, asked in `target` units."""

    amount: int
    source: str
    target: str


class UnitConversionEnv(BaseEnvironment):
    """1. Name the actions. 2. Say what a problem looks like. 3. Reward each action on its own."""

    domain = "units"
    max_steps = 5

    def valid_actions(self) -> list[str]:
        return ["look_up_factor", "multiply", "state_answer"]

    def reset(self, problem: Conversion) -> str:
        self.problem, self.factor_known, self.value, self.solved = problem, False, problem.amount, False
        return f"Convert {problem.amount} {problem.source} to {problem.target}"

    def step(self, action: str, params: str) -> ActionResult:
        factor = FACTORS[(self.problem.source, self.problem.target)]
        if action == "look_up_factor":
            self.factor_known = True
            return ActionResult(f"1 {self.problem.source} = {factor} {self.problem.target}", 1.0, False)
        if action == "multiply":
            if self.factor_known and params.strip() == str(factor):
                self.value = self.problem.amount * factor
                return ActionResult(f"{self.value} {self.problem.target}", 2.0, False)
            return ActionResult("Multiply by the factor you looked up.", -1.0, False)
        self.solved = params.strip() == str(self.problem.amount * factor)
        return ActionResult("Correct" if self.solved else "Wrong answer", 3.0 if self.solved else -2.0, True)

    def is_success(self) -> bool:
        return self.solved

    @classmethod
    def sample_problems(cls, count: int, seed: int) -> list[Conversion]:
        rng = random.Random(seed)
        pairs = sorted(FACTORS)
        return [Conversion(rng.randint(1, 50), *rng.choice(pairs)) for _ in range(count)]

    @classmethod
    def expert(cls) -> BaseAgent:
        return UnitConversionExpert()


class UnitConversionExpert(BaseAgent):
    """A scripted solver, for supervised warm starts (`data.expert_episodes`)."""

    def select_action(self, state: AgentState) -> str:
        if not state.history:
            return format_action("look_up_factor", "")
        observation = state.history[-1][1]
        if observation.startswith("1 "):
            return format_action("multiply", observation.split("= ")[1].split()[0])
        return format_action("state_answer", observation.split()[0])
