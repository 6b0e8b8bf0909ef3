"""The agent, supervisor and admin web console (server-rendered, mounted under /console)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import errors as api_errors
from api.console import bulk, incidents, intents, lifecycle, presence, problems, reports, sla_admin, summary_admin, tags
from api.console.channels_admin import router as channel_setup_router
from api.console.render import SECURITY_HEADERS, STATIC_DIR, render
from api.console.routes import router
from api.console.security import (
    CsrfError,
    ForbiddenPageError,
    LoginRequiredError,
    Viewer,
    set_flash,
    user_from_cookie,
)
from core.db.outage import is_database_outage, is_unstorable_text
from core.db.timeout import is_statement_timeout
from core.errors import DomainError
from core.i18n import preferred_language, translator

__all__ = ["install", "router"]


def _is_console(request: Request) -> bool:
    return request.url.path.startswith("/console")


def _is_fetch(request: Request) -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


def _back(request: Request) -> str:
    referer = request.headers.get("referer", "")
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.url.netloc:
        return "/console/inbox"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/console") else "/console/inbox"


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "error.html", {"title": title, "message": message, "status": status},
                  status_code=status)


async def _root() -> RedirectResponse:
    return RedirectResponse("/console/inbox", status_code=307)


async def _favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page says: the console's icon (SVG, which they all draw)."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})


def install(app: FastAPI) -> None:
    """Mount the console on the app: routes, static assets and its HTML error pages."""
    app.include_router(bulk.router)  # before routes.router: its /tickets/{ref} must not catch /tickets/bulk
    app.include_router(router)
    app.include_router(intents.router)
    app.include_router(presence.router)
    app.include_router(sla_admin.router)
    app.include_router(problems.router)
    app.include_router(incidents.router)
    app.include_router(summary_admin.router)
    app.include_router(lifecycle.router)
    app.include_router(channel_setup_router)
    app.include_router(reports.router)
    app.include_router(tags.router)
    app.add_api_route("/", _root, include_in_schema=False)
    app.add_api_route("/favicon.ico", _favicon, include_in_schema=False)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    api_domain_handler: Any = app.exception_handlers.get(DomainError)
    api_outage_handlers: dict[type[Exception], Any] = {
        cls: app.exception_handlers.get(cls) for cls in api_errors.OUTAGE_EXCEPTIONS}

    async def _database_down(request: Request, exc: Exception) -> Response:
        if not _is_console(request):
            for cls in type(exc).__mro__:
                handler = api_outage_handlers.get(cls)
                if handler is not None:
                    response: Response = await handler(request, exc)
                    return response
        if is_statement_timeout(exc):
            return _too_slow(request, exc)
        if is_unstorable_text(exc):  # a NUL in a form field: PostgreSQL refuses it
            return PlainTextResponse(f"{translator('en')('unstorable_text')}\n{translator('ru')('unstorable_text')}",
                                     422, headers=SECURITY_HEADERS)
        if not is_database_outage(exc):
            raise exc
        api_errors.log_outage(request, exc)
        if _is_fetch(request):
            return Response(status_code=503, headers={**SECURITY_HEADERS,
                                                      "Retry-After": str(api_errors.RETRY_AFTER_SECONDS)})
        # Who is signed in cannot be looked up now: the page says it in both languages.
        en, ru = translator("en"), translator("ru")
        page = render(request, "unavailable.html", {
            "title": f"{en('unavailable.title')} · {ru('unavailable.title')}",
            "texts": [(code, t("unavailable.title"), t.ngettext("unavailable.text", api_errors.RETRY_AFTER_SECONDS))
                      for code, t in (("en", en), ("ru", ru))],
            "status": 503, "reason": None}, status_code=503)
        page.headers["Retry-After"] = str(api_errors.RETRY_AFTER_SECONDS)
        return page

    def _too_slow(request: Request, exc: Exception) -> Response:
        """A statement ran past the request's time limit: the page says so politely, in both languages (the
        transaction is gone, so who is signed in is not looked up again)."""
        api_errors.log_timeout(request, exc)
        headers = {**SECURITY_HEADERS, "Retry-After": str(api_errors.RETRY_AFTER_SECONDS)}
        if _is_fetch(request):
            return Response(status_code=503, headers={**headers, "X-Switchboard-Error": "query_timeout"})
        seconds = request.app.state.switchboard.settings.statement_timeout_seconds
        en, ru = translator("en"), translator("ru")
        page = render(request, "unavailable.html", {
            "title": f"{en('timeout.title')} · {ru('timeout.title')}",
            "texts": [(code, t("timeout.title"), t.ngettext("timeout.text", max(1, round(seconds))))
                      for code, t in (("en", en), ("ru", ru))],
            "status": 503, "reason": "query_timeout"}, status_code=503)
        page.headers.update(headers)
        return page

    for exc_class in api_errors.OUTAGE_EXCEPTIONS:
        app.add_exception_handler(exc_class, _database_down)
    api_validation_handler: Any = app.exception_handlers.get(RequestValidationError)

    @app.exception_handler(LoginRequiredError)
    async def _login_required(request: Request, _exc: LoginRequiredError) -> Response:
        if _is_fetch(request) or request.method != "GET":
            return Response(status_code=401, headers=SECURITY_HEADERS)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)

    @app.exception_handler(ForbiddenPageError)
    async def _forbidden(request: Request, exc: ForbiddenPageError) -> Response:
        _ = translator(exc.user.language)
        return render(request, "error.html", {
            "title": _("forbidden.title"), "status": 403,
            "message": _("forbidden.text", role=_("role." + exc.needed.value),
                         current=_("role." + exc.user.role.value))}, status_code=403, user=exc.user)

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, _exc: CsrfError) -> Response:
        _ = translator(getattr(request.state, "console_viewer", None) and request.state.console_viewer.language)
        return _error_page(request, 403, _("forbidden.title"), _("csrf.failed"))

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if not _is_console(request):
            response: Response = await api_domain_handler(request, exc)
            return response
        if request.method == "GET":
            _ = translator(getattr(request.state, "console_viewer", None) and request.state.console_viewer.language)
            title = _("notfound.title") if exc.status_code == 404 else _("forbidden.title") \
                if exc.status_code == 403 else exc.code
            return _error_page(request, exc.status_code, title, exc.message)
        redirect = RedirectResponse(_back(request), status_code=303, headers=SECURITY_HEADERS)
        set_flash(redirect, exc.message, "error")
        return redirect

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if not _is_console(request):
            response: Response = await api_validation_handler(request, exc)
            return response
        reasons = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                            for e in exc.errors())
        if request.method == "GET":
            return _error_page(request, 422, "validation_failed", reasons)
        redirect = RedirectResponse(_back(request), status_code=303, headers=SECURITY_HEADERS)
        set_flash(redirect, reasons, "error")
        return redirect

    api_http_handler: Any = app.exception_handlers.get(StarletteHTTPException)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        """A console address that does not exist (or a method it does not take) is a page in the reader's
        language, with the console's header when they are signed in; the API keeps its JSON."""
        if not _is_console(request) or _is_fetch(request) or request.url.path.startswith("/console/static/") \
                or exc.status_code not in (403, 404, 405):
            response: Response = await api_http_handler(request, exc)
            return response
        async with request.app.state.switchboard.sessionmaker() as session:
            viewer = await user_from_cookie(session, request)
        _ = translator(viewer.language if viewer else request.cookies.get("sb_lang")
                       or preferred_language(request.headers.get("accept-language")))
        if exc.status_code == 403:
            title, message = _("forbidden.title"), _("forbidden.page")
        else:
            title, message = _("notfound.title"), _("notfound.page")
        return render(request, "error.html", {"title": title, "message": message, "status": exc.status_code},
                      status_code=exc.status_code, user=Viewer.of(viewer) if viewer else None)
