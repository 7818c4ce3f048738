#!/usr/bin/env python3
"""Signs one request with the published `http-message-signatures` package (PyPI), an
RFC 9421 implementation nobody on the tradeauth team wrote, for tests/api/signed.rs and
tests/nginx/signed.sh.

    sign.py keygen ed25519|ecdsa-p256-sha256   -> {"private_pem": ..., "public_pem": ...}
    sign.py sign < request.json                -> {"headers": {...}}

request.json: {"alg", "key" (PEM private key, or the HMAC secret as tradeauth showed it:
base64url), "keyid", "method", "url", "headers": {name: value}, "body": str|null,
optional "created" (Unix s), "expires", "nonce", "label"}. The answer's headers are the
request's own plus Content-Digest (computed by the package when there is a body),
Signature-Input and Signature.
"""
import base64
import datetime
import json
import secrets
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

ALGORITHMS = {
    "ed25519": algorithms.ED25519,
    "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
    "hmac-sha256": algorithms.HMAC_SHA256,
}


class Request:
    """The message interface the package reads: method, url, headers."""

    def __init__(self, method, url, headers):
        self.method = method
        self.url = url
        self.headers = dict(headers)


def keygen(alg):
    key = ed25519.Ed25519PrivateKey.generate() if alg == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return {"private_pem": private_pem, "public_pem": public_pem}


def sign(spec):
    alg = spec["alg"]
    if alg == "hmac-sha256":
        secret = spec["key"]
        key = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    else:
        key = spec["key"].encode()
    request = Request(spec["method"], spec["url"], spec.get("headers") or {})
    body = spec.get("body")
    covered = ["@method", "@authority", "@path", "@query"]
    if body is not None:
        covered.append("content-type")
    signer = HTTPMessageSigner(
        signature_algorithm=ALGORITHMS[alg],
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={spec["keyid"]: key}),
    )
    created = spec.get("created")
    expires = spec.get("expires")
    signer.sign(
        request,
        key_id=spec["keyid"],
        created=datetime.datetime.fromtimestamp(created, datetime.timezone.utc) if created else None,
        expires=datetime.datetime.fromtimestamp(expires, datetime.timezone.utc) if expires else None,
        nonce=spec.get("nonce") or secrets.token_urlsafe(16),
        label=spec.get("label", "bot"),
        tag="tradeauth",
        covered_component_ids=covered,
        # With a body the package computes Content-Digest (sha-256) and covers it.
        body=body.encode() if body is not None else None,
    )
    return {"headers": request.headers}


def main():
    if sys.argv[1] == "keygen":
        out = keygen(sys.argv[2])
    else:
        out = sign(json.load(sys.stdin))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
