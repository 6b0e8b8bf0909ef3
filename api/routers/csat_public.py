"""The e-mail survey's public page: a signed link per score asks to confirm it, the confirmation records the
score, then a comment box is offered.

The link's GET records nothing: mail scanners and link previews fetch links in an e-mail before anyone clicks, and
would rate every request with the first link of the mail. The score is recorded by the page's POST button.
No login: the link is the credential (core/csat/links.py). Every outcome is a small page in the customer's
language (the link's `lang`, anything else is the default language), never an error body: altered, expired, used
again, unknown ticket, an empty or too long comment.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse

from api.deps import DbSession, State
from core.csat import links
from core.csat import service as csat
from core.csat.schemas import MAX_COMMENT
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.i18n import normalise, translator

router = APIRouter(prefix="/csat", tags=["csat"], include_in_schema=False)
CHANNEL = "email"


def _page(lang: str, title_key: str, body: str, status: int = 200) -> HTMLResponse:
    _ = translator(lang)
    title = html.escape(_(title_key))
    return HTMLResponse(
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>'
        '<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}'
        'textarea{width:100%}</style></head>'
        f'<body><main><h1>{title}</h1>{body}</main></body></html>', status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _problem(lang: str, key: str, status: int) -> HTMLResponse:
    text = html.escape(translator(lang)("csat.page." + key))
    return _page(lang, "csat.page.problem", f'<p data-reason="{key}">{text}</p>', status)


def _refused(lang: str, exc: links.LinkError | NotFoundError | ConflictError) -> HTMLResponse:
    """Why a link cannot give its score, as the page says it: tampered/expired 400, unknown 404, used 409."""
    if isinstance(exc, links.LinkError):
        return _problem(lang, exc.reason, 400)
    if isinstance(exc, NotFoundError):
        return _problem(lang, "not_found", 404)
    return _problem(lang, str(exc.details.get("reason", "already_rated")), 409)


def _comment_form(lang: str, token: str) -> str:
    _ = translator(lang)
    action = html.escape(f"/csat/{token}/comment?lang={lang}")
    return (f'<form method="post" action="{action}"><p><label for="comment">{html.escape(_("csat.page.comment"))}'
            f'</label></p><p><textarea id="comment" name="comment" rows="4" maxlength="{MAX_COMMENT}" required>'
            f'</textarea></p><p><button type="submit">{html.escape(_("csat.page.send"))}</button></p></form>')


def _verified(state: State, token: str) -> links.LinkClaim:
    return links.verify(state.settings.secret_key.get_secret_value(), token, state.clock.now())


@router.get("/{token}", response_class=HTMLResponse)
async def confirm(token: str, state: State, session: DbSession, lang: str | None = None) -> HTMLResponse:
    """The link: the score to confirm with a button (nothing is recorded yet), or why it cannot be given."""
    language = normalise(lang)
    try:
        claim = _verified(state, token)
        await csat.check_answerable(session, claim.ticket_id, sent_on=CHANNEL)
    except (links.LinkError, NotFoundError, ConflictError) as exc:
        return _refused(language, exc)
    _ = translator(language)
    action = html.escape(f"/csat/{token}?lang={language}")
    body = (f'<p data-confirm="{claim.score}">{html.escape(_("csat.page.confirm", score=claim.score))}</p>'
            f'<form method="post" action="{action}"><p><button type="submit">{html.escape(_("csat.page.rate"))}'
            '</button></p></form>')
    return _page(language, "csat.page.confirm_title", body)


@router.post("/{token}", response_class=HTMLResponse)
async def rate(token: str, state: State, session: DbSession, lang: str | None = None) -> HTMLResponse:
    """The confirmation: records the link's score once."""
    language = normalise(lang)
    try:
        claim = _verified(state, token)
        await csat.submit(session, claim.ticket_id, claim.score, None, CHANNEL, sent_on=CHANNEL,
                          low_score=state.settings.core.csat_low_score, clock=state.clock)
    except (links.LinkError, NotFoundError, ConflictError) as exc:
        return _refused(language, exc)
    _ = translator(language)
    body = (f'<p data-score="{claim.score}">{html.escape(_("csat.page.thanks", score=claim.score))}</p>'
            + _comment_form(language, token))
    return _page(language, "csat.page.title", body)


@router.post("/{token}/comment", response_class=HTMLResponse)
async def comment(token: str, state: State, session: DbSession, comment: Annotated[str, Form()] = "",
                  lang: str | None = None) -> HTMLResponse:
    """The optional comment after the rating (once); its limit is the service's (MAX_COMMENT)."""
    language = normalise(lang)
    _ = translator(language)
    try:
        claim = _verified(state, token)
        await csat.add_comment(session, claim.ticket_id, comment, CHANNEL)
    except links.LinkError as exc:
        return _problem(language, exc.reason, 400)
    except ValidationFailedError as exc:
        reason = str(exc.details.get("reason", "empty"))
        text = _("csat.page.too_long", limit=MAX_COMMENT) if reason == "too_long" else _("csat.page.empty")
        return _page(language, "csat.page.title", f'<p data-reason="{reason}">{html.escape(text)}</p>'
                     + _comment_form(language, token), 422)
    except ConflictError as exc:
        return _problem(language, str(exc.details.get("reason", "already_commented")), 409)
    return _page(language, "csat.page.title", f'<p data-commented="1">{html.escape(_("csat.page.comment_thanks"))}</p>')
