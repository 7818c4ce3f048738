"""The bot of the signed-request nginx test: signs real requests with the two independent
signers (tests/signers/sign.py: PyPI http-message-signatures; tests/js/sign.mjs: npm
http-message-signatures) and sends them through nginx to the upstream.

    signed_client.py BASE_URL   (tradeauth's API is reachable through nginx at BASE_URL)
"""
import json
import subprocess
import sys
import urllib.error
import urllib.request

BASE = sys.argv[1]
PASSWORD = "x7Kp2mQa-Trd9"
passed = 0


def call(method, url, headers=None, body=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def api(method, path, token=None, body=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    status, _, text = call(method, BASE + path, headers, json.dumps(body) if body is not None else None)
    return status, json.loads(text) if text else None


def check(cond, what):
    global passed
    if not cond:
        print("signed nginx test FAILED:", what, file=sys.stderr)
        sys.exit(1)
    passed += 1


def sign(signer, spec):
    cmd = ["python3", "tests/signers/sign.py", "sign"] if signer == "python" else ["node", "tests/js/sign.mjs"]
    out = subprocess.run(cmd, input=json.dumps(spec), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["headers"]


status, _ = api("POST", "/api/v1/auth/register", body={"email": "bot@example.com", "password": PASSWORD})
check(status == 201, f"register ({status})")
status, login = api("POST", "/api/v1/auth/login", body={"username": "bot@example.com", "password": PASSWORD})
token = login["access_token"]

keys = []
for alg in ["ed25519", "ecdsa-p256-sha256"]:
    pair = json.loads(subprocess.run(["python3", "tests/signers/sign.py", "keygen", alg],
                                     capture_output=True, text=True, check=True).stdout)
    status, made = api("POST", "/api/v1/auth/api-keys", token,
                       {"name": alg, "algorithm": alg, "public_key": pair["public_pem"]})
    check(status == 201, f"create {alg} key ({status}: {made})")
    keys.append((alg, made["key_id"], pair["private_pem"]))
status, made = api("POST", "/api/v1/auth/api-keys", token, {"name": "hmac", "algorithm": "hmac-sha256"})
check(status == 201, f"create hmac key ({status}: {made})")
keys.append(("hmac-sha256", made["key_id"], made["secret"]))

order = '{"symbol":"BTC-USD","side":"buy","qty":"0.25"}'
for signer in ["python", "javascript"]:
    for alg, key_id, key in keys:
        what = f"{signer} {alg}"
        url = BASE + "/orders?client_order_id=42&b=2&a=1"
        spec = {"alg": alg, "key": key, "keyid": key_id, "method": "POST", "url": url,
                "headers": {"content-type": "application/json"}, "body": order}
        headers = sign(signer, spec)
        status, _, text = call("POST", url, headers, order)
        check(status == 200, f"{what}: a signed order did not pass nginx ({status} {text})")
        seen = json.loads(text)
        check(seen["body"] == order, f"{what}: the upstream got another body")
        h = seen["headers"]
        check(h.get("x-auth-key-id") == key_id and h.get("x-auth-method") == "signature",
              f"{what}: X-Auth-Key-Id / X-Auth-Method not forwarded: {h}")
        check(h.get("x-auth-content-digest") == headers.get("content-digest", headers.get("Content-Digest")),
              f"{what}: X-Auth-Content-Digest not forwarded: {h}")
        check(h.get("x-auth-tier") == "2" and h.get("x-auth-user-id") == login["user"]["id"], f"{what}: {h}")

        # The same request again: refused at nginx, with the reason.
        status, rh, _ = call("POST", url, headers, order)
        check(status == 401 and {k.lower(): v for k, v in rh.items()}.get("x-auth-error") == "signature_replayed",
              f"{what}: a replay passed or said nothing ({status} {rh})")

        # A body swapped on the way (the signature covers the digest value): the upstream
        # refuses it, since nginx never showed tradeauth the body.
        headers = sign(signer, spec)
        status, _, text = call("POST", url, headers, order.replace("0.25", "250"))
        check(status == 401 and "signature_invalid" in text, f"{what}: a swapped body passed ({status} {text})")

        # Another query than the one signed: refused by tradeauth.
        headers = sign(signer, spec)
        status, rh, _ = call("POST", url.replace("a=1", "a=2"), headers, order)
        check(status == 401 and {k.lower(): v for k, v in rh.items()}.get("x-auth-error") == "signature_invalid",
              f"{what}: an altered query passed ({status})")

# A signed request to tradeauth's own API through nginx (which rewrites Host; tradeauth
# takes the host the client addressed from X-Forwarded-Host).
for signer in ["python", "javascript"]:
    alg, key_id, key = keys[0]
    url = BASE + "/api/v1/auth/me?fields=all"
    headers = sign(signer, {"alg": alg, "key": key, "keyid": key_id, "method": "GET", "url": url,
                            "headers": {}, "body": None})
    status, _, text = call("GET", url, headers)
    check(status == 200 and json.loads(text)["id"] == login["user"]["id"],
          f"{signer}: a signed GET /api/v1/auth/me through nginx ({status} {text})")

# A bearer key is not a signature, and a signing key is not a bearer key.
status, _, _ = call("GET", BASE + "/orders", {"x-api-key": keys[0][1]})
check(status == 401, "a signing key's key_id passed as X-API-Key")

print(f"nginx signed requests: {passed} passed, 0 failed")
