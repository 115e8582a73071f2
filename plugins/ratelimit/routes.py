from fastapi import APIRouter, Request

from mnemogate.core.dependencies import PrincipalDep, RegistryDep
from mnemogate.plugins.ratelimit import service
from mnemogate.plugins.ratelimit.middleware import SERVICE, STATE_KEY
from mnemogate.plugins.ratelimit.models import BucketOut

router = APIRouter()


@router.get("/api/rate-limit", summary="The caller's rate-limit bucket")
async def rate_limit(request: Request, principal: PrincipalDep, registry: RegistryDep) -> BucketOut:
    limiter: service.RateLimiter = registry.services[SERVICE]
    decision = request.scope.get("state", {}).get(STATE_KEY) or await limiter.peek(principal, request.client)
    return service.describe(
        limiter, principal, request.client, decision, registry.services.get(service.UPSTREAM_LIMITS)
    )
