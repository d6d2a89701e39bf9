"""The component reward calculator for decision agents: ranges, weighting, presets."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from recursa.traces.components import COMPONENTS, PRESETS, ComponentRewardCalculator, ComponentScores


@pytest.mark.parametrize("agent_type", list(PRESETS))
def test_rewards_stay_in_unit_range_for_every_preset(agent_type):
    calculator = ComponentRewardCalculator(agent_type)
    assert set(PRESETS[agent_type].signals) == set(COMPONENTS)
    for values in itertools.product([-1.0, -0.3, 0.0, 0.5, 1.0, None], repeat=3):
        if values == (None, None, None):
            continue
        result = calculator.compute(ComponentScores(**dict(zip(COMPONENTS, values))))
        assert 0.0 <= result.reward <= 1.0
    assert calculator.compute(ComponentScores(immediate=1, delayed=1, strategic=1)).reward == 1.0
    assert calculator.compute(ComponentScores(immediate=-1, delayed=-1, strategic=-1)).reward == 0.0
    assert calculator.compute(ComponentScores(immediate=0, delayed=0, strategic=0)).reward == 0.5


def test_weights_follow_the_agent_type():
    accepted_then_moved = ComponentScores(immediate=1, delayed=-1, strategic=0)
    filer = ComponentRewardCalculator("FILER").compute(accepted_then_moved)
    prioritizer = ComponentRewardCalculator("prioritizer").compute(accepted_then_moved)
    assert filer.raw == pytest.approx(0.5 - 0.3)
    assert filer.reward > 0.5 > prioritizer.reward  # the filer counts the first reaction most


def test_unobserved_components_are_left_out():
    result = ComponentRewardCalculator("FILER").compute(ComponentScores(immediate=1))
    assert result.reward == 1.0 and result.used == {"immediate": 1.0}
    with pytest.raises(ValueError, match="no weighted component"):
        ComponentRewardCalculator("FILER").compute(ComponentScores())


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"unknown agent type 'ARCHIVIST'.*FILER"):
        ComponentRewardCalculator("ARCHIVIST")
    with pytest.raises(ValidationError):
        ComponentScores(immediate=2.0)
    with pytest.raises(ValueError, match="weights"):
        ComponentRewardCalculator("FILER", weights={"immediate": 1.0})
