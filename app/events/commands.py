"""`callhome webhooks`: the staff API's twin for webhook endpoints and their deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.commands import CLI_ACTOR, JsonFlag, emit, emit_page, in_session, now, parse
from app.core.events.models import EventType
from app.core.settings import Settings
from app.events import service
from app.events.schemas import DeliveryOut, EndpointCreate, EndpointOut

webhooks_app = typer.Typer(help="Webhook endpoints: add, list, remove, rotate, test, deliveries.")

EndpointArg = Annotated[uuid.UUID, typer.Argument(help="The endpoint's id.")]


def endpoint_line(endpoint: EndpointOut) -> str:
    ordered = "  ordered" if endpoint.ordered else ""
    return (
        f"{endpoint.id}  {endpoint.status:<8} {endpoint.url}  {','.join(endpoint.events)}{ordered}"
    )


def delivery_line(delivery: DeliveryOut) -> str:
    answer = delivery.last_status_code or delivery.last_error or "-"
    latency = f"{delivery.last_latency_ms} ms" if delivery.last_latency_ms is not None else "-"
    return (
        f"{delivery.occurred_at:%Y-%m-%d %H:%M:%S}  {delivery.event_type:<24} "
        f"{delivery.status:<9} attempts {delivery.attempts:<3} last {answer}  {latency}"
    )


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Option(help="https URL of the receiver.")],
    event: Annotated[list[EventType], typer.Option(help="An event to send (repeatable).")],
    ordered: Annotated[bool, typer.Option(help="One at a time, in order.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Register an endpoint; its signing secret is printed this once."""
    data = parse(EndpointCreate, url=url, events=event, ordered=ordered)

    async def work(session: AsyncSession, settings: Settings) -> service.NewEndpoint:
        return await service.add_endpoint(session, data, settings, actor=CLI_ACTOR, now=now())

    added = in_session(work)
    out = EndpointOut.model_validate(added.endpoint)
    emit(
        as_json,
        out.model_dump(mode="json") | {"secret": added.secret},
        f"{endpoint_line(out)}\nsecret: {added.secret}",
    )


@webhooks_app.command("list")
def webhooks_list(as_json: JsonFlag = False) -> None:
    """Every endpoint, the oldest first."""

    async def work(session: AsyncSession, _: Settings) -> list[EndpointOut]:
        return [EndpointOut.model_validate(e) for e in await service.list_endpoints(session)]

    endpoints = in_session(work)
    emit_page(
        as_json,
        [endpoint.model_dump(mode="json") for endpoint in endpoints],
        [endpoint_line(endpoint) for endpoint in endpoints],
        None,
        empty="no webhook endpoints",
    )


@webhooks_app.command("remove")
def webhooks_remove(endpoint: EndpointArg, as_json: JsonFlag = False) -> None:
    """Remove an endpoint and its delivery log."""

    async def work(session: AsyncSession, _: Settings) -> None:
        await service.remove_endpoint(session, endpoint, actor=CLI_ACTOR, now=now())

    in_session(work)
    emit(as_json, {"id": str(endpoint), "removed": True}, f"{endpoint} removed")


@webhooks_app.command("rotate-secret")
def webhooks_rotate_secret(endpoint: EndpointArg, as_json: JsonFlag = False) -> None:
    """A new signing secret, printed once; the old one signs too for the overlap."""

    async def work(session: AsyncSession, settings: Settings) -> service.NewEndpoint:
        return await service.rotate_secret(session, endpoint, settings, actor=CLI_ACTOR, now=now())

    rotated = in_session(work)
    until = rotated.endpoint.previous_secret_until
    emit(
        as_json,
        {
            "id": str(endpoint),
            "secret": rotated.secret,
            "previous_secret_until": until.isoformat() if until else None,
        },
        f"secret: {rotated.secret}\nthe old secret signs too until {until or 'now'}",
    )


@webhooks_app.command("enable")
def webhooks_enable(endpoint: EndpointArg, as_json: JsonFlag = False) -> None:
    """Send to a disabled endpoint again."""

    async def work(session: AsyncSession, _: Settings) -> EndpointOut:
        return EndpointOut.model_validate(
            await service.enable_endpoint(session, endpoint, actor=CLI_ACTOR, now=now())
        )

    enabled = in_session(work)
    emit(as_json, enabled.model_dump(mode="json"), endpoint_line(enabled))


@webhooks_app.command("test")
def webhooks_test(endpoint: EndpointArg, as_json: JsonFlag = False) -> None:
    """Queue a webhook.test event for this endpoint alone."""

    async def work(session: AsyncSession, _: Settings) -> uuid.UUID:
        return (await service.send_test(session, endpoint, actor=CLI_ACTOR, now=now())).id

    event_id = in_session(work)
    emit(as_json, {"event_id": str(event_id)}, f"webhook.test queued: {event_id}")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    endpoint: EndpointArg,
    limit: int = 50,
    cursor: str | None = None,
    as_json: JsonFlag = False,
) -> None:
    """The endpoint's delivery log, latest event first: outcomes, never bodies."""

    async def work(session: AsyncSession, _: Settings) -> tuple[list[DeliveryOut], str | None]:
        return await service.deliveries(session, endpoint, cursor=cursor, limit=limit)

    items, next_cursor = in_session(work)
    emit_page(
        as_json,
        [item.model_dump(mode="json") for item in items],
        [delivery_line(item) for item in items],
        next_cursor,
        empty="no deliveries",
    )
