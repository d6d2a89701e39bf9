"""The gift recommender on Ray Serve: POST /recommend over `GiftRecommenderCore`
(import path `recursa.gift.serve:app`)."""

from fastapi import HTTPException
from ray import serve
from ray.serve import Application

from recursa.core.config import parse_config
from recursa.gift import serve_core
from recursa.gift.config import RecommenderServeArgs
from recursa.gift.schemas import RecommendRequest, RecommendResponse
from recursa.serving.deployments import DEPLOYMENT_DEFAULTS, ERRORS, apply_batching, build_app
from recursa.serving.http import configure_guard, create_api

recommender_api = create_api("recursa gift recommender",
                             "A TRM policy recommends gifts, calling catalog tools on the server.")


@serve.deployment(**DEPLOYMENT_DEFAULTS)
@serve.ingress(recommender_api)
class GiftRecommender:
    """Recommends gifts for a user profile with the exported TRM policy."""

    def __init__(self, args: dict):
        settings = parse_config(args, RecommenderServeArgs)
        configure_guard(settings.api_key, settings.max_body_bytes)
        self.core = serve_core.GiftRecommenderCore(settings.export_dir, settings.precision, settings.model_name,
                                                   settings.halting_threshold)
        apply_batching(self.recommend_batch, settings.batching)

    @recommender_api.post("/recommend", response_model=RecommendResponse, responses=ERRORS)
    async def recommend(self, request: RecommendRequest) -> RecommendResponse:
        """Recommended items for a user, with the tool calls the policy made to choose them."""
        result = await self.recommend_batch(request)
        if isinstance(result, serve_core.InvalidRequest):
            raise HTTPException(422, str(result))
        return result

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
    async def recommend_batch(self, requests: list[RecommendRequest]) -> list[RecommendResponse | serve_core.InvalidRequest]:
        """The episodes of every request waiting in this replica, run in lockstep: each policy
        step is one forward pass for all of them."""
        return self.core.recommend(requests)

    def check_health(self) -> None:
        """Serve's health probe: the model must still pick a legal action."""
        if not self.core.healthy():
            raise RuntimeError("policy chose a masked action")

    def __del__(self) -> None:
        self.core.close()



def app(args: dict) -> Application:
    """Serve application builder."""
    return build_app(GiftRecommender, args, RecommenderServeArgs)
