"""A/B routing inside the LLM Serve app (`routes` and `decisions_db` in its args).

A request whose `model` is a routed name (an agent type, e.g. FILER) is answered by one of that
name's versions, which are ids the app serves (its model or an adapter), chosen by a `Router`:
by weight, and the same version for the same `user` every time. The response's `model` names the
version that answered, so the application can store it with the decision; each answer is also
recorded with its version in recursa_served_decisions.
"""

from __future__ import annotations

from collections.abc import Mapping

from recursa.decisions.router import Router, ServedDecisions
from recursa.decisions.source import open_engine


class RoutedServing:
    """The routers of the routed names, and where served decisions are recorded (None: nowhere)."""

    def __init__(self, routes: Mapping[str, Mapping[str, float]], db: str | None = None) -> None:
        self.routers = {name: Router(weights) for name, weights in routes.items()}
        self.served = ServedDecisions(open_engine(db)) if db is not None else None

    def version(self, model: str, user: str | None) -> str | None:
        """The version that answers a request for `model`; None when `model` is not a routed name."""
        router = self.routers.get(model)
        return None if router is None else router.route(user)

    def record(self, agent_type: str, version: str, prompt: str, answers: list[str], user: str | None) -> None:
        """Record each answer of one request with the version that gave it."""
        if self.served is None:
            return
        for answer in answers:
            self.served.record(agent_type, version, prompt, answer, user_id=user)
