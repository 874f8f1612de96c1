"""ASGI entry: the Streamlit app (app.py) plus our one HTTP route for the login cookie.

`streamlit run server.py` (what `make demo` and the compose service do) detects the
st.App below. Streamlit cannot set cookies from a script, so after a successful login the
page posts a one-time hand-off code to /_app/session, which answers with an HttpOnly,
SameSite=Strict cookie carrying a signed session token. DELETE clears the cookie.
"""

from __future__ import annotations

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from core.platform import auth
from core.platform.config import load_or_exit
from core.platform.db import unit_of_work
from ui.context import now

settings = load_or_exit()


def _exchange(code: str) -> str | None:
    with unit_of_work() as s:
        return auth.exchange_handoff(s, code, now=now())


async def session_endpoint(request: Request) -> Response:
    if request.method == "DELETE":
        response = PlainTextResponse("abgemeldet")
        response.delete_cookie(auth.COOKIE_NAME, path="/")
        return response
    code = (await request.body()).decode("utf-8", "replace").strip()[:200]
    token = await run_in_threadpool(_exchange, code)
    if token is None:
        return PlainTextResponse("ungültig", status_code=403)
    response = PlainTextResponse("ok")
    response.set_cookie(
        auth.COOKIE_NAME,
        auth.sign_token(settings, token),
        max_age=settings.SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.COOKIE_SECURE,
    )
    return response


app = st.App("app.py", routes=[Route("/_app/session", session_endpoint, methods=["POST", "DELETE"])])
