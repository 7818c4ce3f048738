"""Authlib (Python) as a second, independent relying party against tradeauth: the code
flow with PKCE through the real login and consent pages (plain HTML forms, no browser),
the ID token checked with joserfc against the published JWKS, refresh, introspection and
revocation.

Environment: TRADEAUTH_URL (the issuer), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
USER_EMAIL, USER_PASSWORD, USER_ID. Prints "N passed, M failed".
"""

import os
import sys
import traceback
import urllib.parse
from html.parser import HTMLParser

os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # http:// on loopback only

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402
from joserfc.jwt import JWTClaimsRegistry  # noqa: E402

ISSUER = os.environ["TRADEAUTH_URL"]
CLIENT_ID = os.environ["CLIENT_ID"]
CLIENT_SECRET = os.environ["CLIENT_SECRET"]
REDIRECT_URI = os.environ["REDIRECT_URI"]
USER_EMAIL = os.environ["USER_EMAIL"]
USER_PASSWORD = os.environ["USER_PASSWORD"]
USER_ID = os.environ["USER_ID"]


class Forms(HTMLParser):
    """The forms of a page (action and inputs) and a meta refresh, if any."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self.refresh = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            if a.get("type") != "checkbox":
                self.forms[-1]["inputs"][a["name"]] = a.get("value", "")
        elif tag == "meta" and a.get("http-equiv") == "refresh":
            self.refresh = a["content"].split("url=", 1)[1]


class Browser:
    """requests with a cookie jar, redirects followed by hand, forms posted as a browser
    posts them (with Sec-Fetch-Site)."""

    def __init__(self):
        self.s = requests.Session()
        self.s.headers["sec-fetch-site"] = "same-origin"

    def follow(self, res):
        for _ in range(20):
            if res.is_redirect:
                target = urllib.parse.urljoin(res.url, res.headers["location"])
            else:
                page = Forms()
                page.feed(res.text)
                if not page.refresh:
                    return res, page
                target = urllib.parse.urljoin(res.url, page.refresh)
            if not target.startswith(ISSUER):
                return target, None
            res = self.s.get(target, allow_redirects=False)
        raise AssertionError("too many redirects")

    def open(self, url):
        return self.follow(self.s.get(url, allow_redirects=False))

    def submit(self, res, page, action, fields):
        form = next(f for f in page.forms if f["action"] == action)
        data = dict(form["inputs"], **fields)
        url = urllib.parse.urljoin(res.url, action)
        return self.follow(self.s.post(url, data=data, allow_redirects=False))


passed = failed = 0


def step(name):
    def run(fn):
        global passed, failed
        try:
            fn()
            passed += 1
            print(f"ok - {name}")
        except Exception:
            failed += 1
            print(f"not ok - {name}")
            traceback.print_exc(file=sys.stdout)
            raise
        return fn

    return run


state = {}


def main():
    md = requests.get(ISSUER + "/.well-known/openid-configuration").json()
    client = OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        scope="openid email offline_access",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    browser = Browser()

    @step("code flow with PKCE through the login and consent pages")
    def _():
        verifier = generate_token(48)
        nonce = generate_token(20)
        uri, st = client.create_authorization_url(
            md["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        res, page = browser.open(uri)
        assert "/login" in res.url, res.url
        res, page = browser.submit(
            res, page, "/login", {"username": USER_EMAIL, "password": USER_PASSWORD}
        )
        assert page is not None and any(
            f["action"] == "/oauth2/consent" for f in page.forms
        ), "the consent page"
        back, _ = browser.submit(res, page, "/oauth2/consent", {"decision": "allow"})
        assert back.startswith(REDIRECT_URI), back
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))
        assert q["iss"] == ISSUER
        token = client.fetch_token(
            md["token_endpoint"],
            authorization_response=back,
            code_verifier=verifier,
            state=st,
        )
        assert token["token_type"].lower() == "bearer"
        assert token.get("refresh_token")
        state["token"] = token
        state["nonce"] = nonce

    @step("the ID token verifies against the JWKS (joserfc) with iss, aud, nonce")
    def _():
        keys = KeySet.import_key_set(requests.get(md["jwks_uri"]).json())
        decoded = jwt.decode(state["token"]["id_token"], keys, algorithms=["RS256"])
        JWTClaimsRegistry(
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": CLIENT_ID},
            sub={"essential": True, "value": USER_ID},
            nonce={"essential": True, "value": state["nonce"]},
            exp={"essential": True},
            auth_time={"essential": True},
        ).validate(decoded.claims)
        assert decoded.claims["email"] == USER_EMAIL

    @step("refresh rotates the refresh token")
    def _():
        old = state["token"]["refresh_token"]
        new = client.refresh_token(md["token_endpoint"], refresh_token=old)
        assert new["refresh_token"] != old
        state["token"] = new

    @step("introspection says the access token is active, for this client")
    def _():
        r = client.introspect_token(
            md["introspection_endpoint"], token=state["token"]["access_token"]
        )
        body = r.json()
        assert body["active"] is True, body
        assert body["client_id"] == CLIENT_ID
        assert body["sub"] == USER_ID

    @step("revoking the refresh token ends the session")
    def _():
        r = client.revoke_token(
            md["revocation_endpoint"], token=state["token"]["refresh_token"]
        )
        assert r.status_code == 200, r.text
        body = client.introspect_token(
            md["introspection_endpoint"], token=state["token"]["access_token"]
        ).json()
        assert body == {"active": False}, body

    print(f"{passed} passed, {failed} failed")


try:
    main()
except Exception:
    print(f"{passed} passed, {failed} failed")
    sys.exit(1)
sys.exit(0 if failed == 0 else 1)
