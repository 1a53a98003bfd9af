"""The yardstick: a FastAPI endpoint that parses the same ping body and writes nothing."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from app.core.json import dumps
from app.ping.schemas import PingRequest

app = FastAPI()


@app.post("/v1/ping")
async def ping(request: Request) -> Response:
    parsed = PingRequest.model_validate_json(await request.body())
    return Response(dumps({"product": parsed.product}), media_type="application/json")
