"""The web chat: the widget's WebSocket, the widget script, the demo page and the agents' typing hook."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, WebSocket
from fastapi.responses import HTMLResponse, Response

from api.deps import Agent, DbSession, State
from api.openapi import NOT_FOUND
from channels.webchat import repository, widget
from channels.webchat.adapter import WebchatChannel
from channels.webchat.schemas import TypingUpdate
from core.errors import NotFoundError, ServiceUnavailableError
from core.events import Topic, Typing
from core.tickets.models import parse_ticket_ref

router = APIRouter(tags=["channel: webchat"])
STATIC = Path(__file__).resolve().parents[2] / "channels" / "webchat" / "static"


def _adapter(state: State) -> WebchatChannel:
    adapter = state.channels.get(WebchatChannel.kind)
    if not isinstance(adapter, WebchatChannel):
        raise ServiceUnavailableError("the web chat is disabled")
    return adapter


@router.websocket("/channels/webchat/ws")
async def webchat_socket(websocket: WebSocket) -> None:
    state = websocket.app.state.switchboard
    adapter = state.channels.get(WebchatChannel.kind)
    if not isinstance(adapter, WebchatChannel):
        await websocket.close(code=1013, reason="the web chat is disabled")
        return
    secret = adapter.settings.session_secret or state.settings.secret_key
    await adapter.serve(websocket, secret.get_secret_value().encode(),
                        state.limits.proxies.client_address(websocket))


@router.get("/channels/webchat/widget.js", include_in_schema=False)
async def widget_script() -> Response:
    return Response(widget.script(), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


@router.get("/demo", include_in_schema=False)
def demo_page() -> HTMLResponse:
    """A fake operator's site with the widget embedded by one script tag."""
    return HTMLResponse((STATIC / "demo.html").read_text(encoding="utf-8"))


@router.post("/channels/webchat/typing", status_code=204, responses=NOT_FOUND)
async def agent_typing(body: TypingUpdate, state: State, session: DbSession, user: Agent) -> None:
    """Show (or hide) "operator is typing" in the customer's widget."""
    adapter = _adapter(state)
    ticket_id = parse_ticket_ref(body.ticket)
    thread = await repository.thread_of_ticket(session, ticket_id) if ticket_id is not None else None
    if thread is None:
        raise NotFoundError(f"no web-chat ticket {body.ticket!r}")
    # Through the bus: the visitor's socket may be held by another instance. The widget shows the display name.
    state.bus.publish(Topic.TYPING, Typing(channel=adapter.kind, direction="outbound", thread_key=thread,
                                           active=body.active, author=user.shown_name))
