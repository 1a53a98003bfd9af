"""Rendering the staff pages: the template environment, the page helper, the security headers
(the customer page under /my/ is built from the same pieces)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from app.core.auth.models import Scope
from app.core.auth.service import Staff
from app.licences.schemas import short_machine_id

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"


# The pages in the order the navigation shows them, with the scope each needs.
SECTIONS = (
    ("reports", "Abuse reports", Scope.REPORTS_READ),
    ("licences", "Licences", Scope.LICENCES_READ),
    ("releases", "Releases and feeds", Scope.RELEASES_WRITE),
    ("webhooks", "Webhooks", Scope.WEBHOOKS_WRITE),
)


def _moment(value: dt.datetime | str | None) -> str:
    """A time to the minute, in UTC; report evidence holds its times as ISO text."""
    if value is None:
        return "—"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def template_environment(directory: Path) -> jinja2.Environment:
    """Templates from `directory`, then the page layout every page set extends (kept with the
    staff templates); autoescaped, with the pages' filters."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([directory, TEMPLATES_DIR]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["moment"] = _moment
    environment.filters["short_machine"] = short_machine_id
    return environment


templates = Jinja2Templates(env=template_environment(TEMPLATES_DIR))


def base_path(request: Request) -> str:
    """Where the staff page is mounted ("/staff"): every link starts with it."""
    root_path: str = request.scope.get("root_path", "")
    return root_path


def page_url(request: Request, path: str, **query: object) -> str:
    """A link to one of our pages, with the query parameters that have a value."""
    kept = {name: str(value) for name, value in query.items() if value not in (None, "")}
    return base_path(request) + path + (f"?{urlencode(kept)}" if kept else "")


def render(
    request: Request,
    template: str,
    staff: Staff | None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response:
    return templates.TemplateResponse(
        request,
        template,
        {"base": base_path(request), "staff": staff, "sections": SECTIONS, **context},
        status_code=status_code,
        headers=headers,
    )


CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_PAGE_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """No script, no framing, no caching of anything but the static assets."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route_path = scope["path"].removeprefix(scope.get("root_path", ""))
        caching = b"max-age=3600" if route_path.startswith("/static/") else b"no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    *_PAGE_HEADERS,
                    (b"cache-control", caching),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
