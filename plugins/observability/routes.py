from fastapi import APIRouter
from fastapi.responses import Response

from mnemogate.core.dependencies import RegistryDep
from mnemogate.plugins.observability.service import SERVICE

router = APIRouter()


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(registry: RegistryDep) -> Response:
    metrics = registry.services[SERVICE]
    return Response(metrics.render(), media_type=metrics.content_type)
