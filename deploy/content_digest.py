"""Body check for a Python service behind the proxy (API.md "Signed requests").

nginx never sends a request's body to tradeauth: tradeauth verifies the signature over the
Content-Digest *value* and answers it in X-Auth-Content-Digest, which the proxy forwards
(overwriting anything the client sent; see deploy/nginx-forward-auth.conf). The service
must then check that the body it received is the body that was signed:

    from content_digest import body_matches

    if not body_matches(request.headers, request.body):
        return 401, {"error": "the body received is not the body signed",
                     "code": "signature_invalid"}

Standard library only. Rust services use tradeauth::upstream::ContentDigestLayer.
"""
import base64
import hashlib
import hmac
import re

_MEMBER = re.compile(r"\s*([a-z0-9*_.-]+)\s*=\s*:([A-Za-z0-9+/=]*):\s*(?:;[^,]*)?")
_ALGORITHMS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def _digests(value):
    """The sha-256 / sha-512 members of a Content-Digest value (RFC 9530), or None."""
    found = {}
    for member in value.split(","):
        m = _MEMBER.fullmatch(member)
        if not m:
            return None
        if m.group(1) in _ALGORITHMS:
            try:
                found[m.group(1)] = base64.b64decode(m.group(2), validate=True)
            except ValueError:
                return None
    return found or None


def body_matches(headers, body):
    """Whether `body` (bytes) is the body tradeauth's signature check vouched for.

    `headers` is any mapping with case-insensitive `get` (or lower-case keys). With
    X-Auth-Content-Digest, every sha-256/sha-512 digest in it must match. A signed request
    (X-Auth-Method: signature) without one must have no body. Anything else (a bearer
    request) passes: there is no signed digest to hold it to.
    """
    get = getattr(headers, "get")
    value = get("x-auth-content-digest") or get("X-Auth-Content-Digest")
    signed = (get("x-auth-method") or get("X-Auth-Method")) == "signature"
    if not value:
        return not (signed and body)
    digests = _digests(value)
    if digests is None:
        return False
    return all(hmac.compare_digest(_ALGORITHMS[name](body).digest(), d) for name, d in digests.items())


if __name__ == "__main__":
    body = b'{"symbol":"BTC-USD","qty":"1"}'
    good = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    assert body_matches({"x-auth-content-digest": good}, body)
    assert not body_matches({"x-auth-content-digest": good}, body + b" ")
    assert not body_matches({"x-auth-method": "signature"}, b"smuggled")
    assert body_matches({}, b"a bearer request")
    print("content_digest.py: ok")
