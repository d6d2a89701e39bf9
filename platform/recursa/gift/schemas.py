"""HTTP request and response bodies of the gift recommender."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from recursa.gift.config import MAX_CANDIDATES, MIN_CANDIDATES
from recursa.gift.data import CATEGORIES, OCCASIONS, RELATIONSHIPS
from recursa.serving.schemas import Strict


class UserProfile(Strict):
    """What the recommender may know about the person receiving the gift."""

    budget: float = Field(gt=0, le=100_000, description="Spending limit in USD.")
    age: int = Field(ge=1, le=120)
    occasion: Literal[OCCASIONS]  # type: ignore[valid-type]
    relationship: Literal[RELATIONSHIPS]  # type: ignore[valid-type]
    interests: list[Literal[CATEGORIES]] = Field(min_length=1, max_length=len(CATEGORIES))  # type: ignore[valid-type]


class RecommendRequest(Strict):
    user: UserProfile
    item_ids: list[int] | None = Field(
        None, description=f"Catalog items to choose from ({MIN_CANDIDATES} to {MAX_CANDIDATES}, whatever number "
                          "the policy was trained with); by default the server draws candidates near the budget.")
    seed: int | None = Field(None, description="Seed of the candidate draw, for repeatable answers.")


class ToolCallRecord(BaseModel):
    name: str
    arguments: dict[str, Any]
    ok: bool
    error: str | None = None


class RecommendedItem(BaseModel):
    item_id: int
    name: str
    category: str
    list_price: float


class RecommendResponse(BaseModel):
    recommendations: list[RecommendedItem]
    tool_calls: list[ToolCallRecord]
    candidates: list[int] = Field(description="The catalog items the policy chose from.")
    steps: int
    model: str
