"""OIDC sign-in end to end against a stub provider served over HTTP: the portal's redirect, the
provider's redirect back with a code, the callback exchanging it for a signed ID token; state
and nonce checked, the claim mapped to an existing portal user, local sign-in off."""

from __future__ import annotations

import html
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from hpc_platform.app.portal import web
from hpc_platform.app.portal.settings import PortalSettings
from tests.portal import oidc_provider
from tests.portal.conftest import add_user
from tests.portal.oidc_provider import StubProvider
from tests.portal.test_web import client, csrf_of, db, settings

__all__ = ["db", "settings"]  # fixtures shared with test_web


@pytest.fixture(scope="module")
def provider() -> Iterator[StubProvider]:
    with oidc_provider.serve(StubProvider()) as served:
        yield served


@pytest.fixture
def portal(settings: PortalSettings, db: Engine, provider: StubProvider) -> Iterator[TestClient]:
    provider.user = {"sub": "1", "preferred_username": "rita"}
    provider.wrong_nonce = False
    provider.without_id_token = False
    pages = web.WebSettings(
        session_secret="s" * 40,
        oidc=web.OidcSettings(
            issuer=provider.issuer,
            client_id=oidc_provider.CLIENT_ID,
            client_secret=oidc_provider.CLIENT_SECRET,
        ),
    )
    with client(settings, db, pages) as c:
        yield c


def to_provider_and_back(portal: TestClient) -> str:
    """Start sign-in at the portal and let the provider sign the user in: the callback URL (path
    and query) the provider sends the browser back to."""
    start = portal.get("/signin/oidc", follow_redirects=False)
    assert start.status_code == 302, start.text[:300]
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["state"] and query["nonce"] and query["scope"] == ["openid email profile"]
    back = httpx.get(authorize, follow_redirects=False)
    assert back.status_code == 302, back.text
    url = urlsplit(back.headers["location"])
    assert url.path == "/signin/oidc/callback"
    return f"{url.path}?{url.query}"


def test_oidc_sign_in_maps_the_claim_to_the_portal_user_and_sets_the_session(
    portal: TestClient, db: Engine
) -> None:
    add_user(db, "rita", "genomics", "requester")
    callback = portal.get(to_provider_and_back(portal), follow_redirects=False)
    assert callback.status_code == 303 and callback.headers["location"] == "/environments"
    cookie = callback.headers["set-cookie"]
    assert cookie.startswith(f"{web.SESSION_COOKIE}=") and "HttpOnly" in cookie
    page = portal.get("/environments")
    assert page.status_code == 200 and "rita" in page.text and "genomics" in page.text


def test_oidc_sign_in_refuses_a_user_without_a_portal_account(
    portal: TestClient, db: Engine, provider: StubProvider
) -> None:
    add_user(db, "rita", "genomics", "requester")
    provider.user = {"sub": "2", "preferred_username": "mallory"}
    refused = portal.get(to_provider_and_back(portal), follow_redirects=False)
    assert refused.status_code == 403
    assert "'mallory' has no portal account" in html.unescape(refused.text)
    assert "hpc-portal user add" in refused.text
    assert portal.get("/environments", follow_redirects=False).headers["location"] == "/signin"


def test_oidc_callback_refuses_a_tampered_state(
    portal: TestClient, db: Engine, provider: StubProvider
) -> None:
    add_user(db, "rita", "genomics", "requester")
    callback = to_provider_and_back(portal)
    path, query = callback.split("?", 1)
    params = {k: v[0] for k, v in parse_qs(query).items()}
    params["state"] = params["state"][:-2] + ("xy" if not params["state"].endswith("xy") else "zz")
    exchanged = provider.token_requests
    refused = portal.get(f"{path}?{urlencode(params)}", follow_redirects=False)
    assert refused.status_code == 401 and "sign-in failed" in refused.text
    assert provider.token_requests == exchanged  # the code was never redeemed
    assert portal.get("/environments", follow_redirects=False).headers["location"] == "/signin"


def test_oidc_callback_refuses_an_id_token_with_another_nonce(
    portal: TestClient, db: Engine, provider: StubProvider
) -> None:
    add_user(db, "rita", "genomics", "requester")
    provider.wrong_nonce = True
    refused = portal.get(to_provider_and_back(portal), follow_redirects=False)
    assert refused.status_code == 401 and "sign-in failed" in refused.text
    assert portal.get("/environments", follow_redirects=False).headers["location"] == "/signin"


def test_oidc_callback_refuses_a_token_answer_without_an_id_token(
    portal: TestClient, db: Engine, provider: StubProvider
) -> None:
    add_user(db, "rita", "genomics", "requester")
    provider.without_id_token = True
    refused = portal.get(to_provider_and_back(portal), follow_redirects=False)
    assert refused.status_code == 401
    assert "no ID token" in html.unescape(refused.text) and "None" not in refused.text
    assert portal.get("/environments", follow_redirects=False).headers["location"] == "/signin"


def test_local_sign_in_is_refused_when_oidc_is_configured(portal: TestClient, db: Engine) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    page = portal.get("/signin")
    assert 'name="token"' not in page.text and 'href="/signin/oidc"' in page.text
    refused = portal.post("/signin", data={"token": token, "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 404 and "OIDC" in html.unescape(refused.text)
    assert portal.get("/environments", follow_redirects=False).headers["location"] == "/signin"
