"""Independent peer for Mizan's tokens: PyJWT against the running demo.

It verifies the tokens the demo mints (claims and lifetimes), and mints tokens of its own that
the demo must accept, or refuse with one uninformative 401 for every case of issue 5.

Usage: pyjwt_peer.py BASE_URL   (secrets in JWT_PRIVATE_KEY and MIZAN_MWT_SECRET)
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
import warnings

import jwt  # PyJWT

# The HS384/HS512 refusal cases reuse the 256-bit secret on purpose.
warnings.filterwarnings("ignore", message="The HMAC key is")

BASE = sys.argv[1].rstrip("/")
JWT_SECRET = os.environ["JWT_PRIVATE_KEY"]
MWT_SECRET = os.environ["MIZAN_MWT_SECRET"]
REFUSED = {"error": {"code": "unauthenticated", "message": "invalid or expired credentials", "details": None}}

passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def request(method, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"null")


def call(fn, args=None, token=None):
    return request("POST", "/api/mizan/call/", {"fn": fn, "args": args or {}}, token)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs(claims, key=JWT_SECRET, algorithm="HS256", headers=None):
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


# ---- Tokens the demo mints, verified by PyJWT ----
status, _, body = call("login", {"username": "alice", "password": "alice"})
check("login succeeds", status == 200, body)
access, refresh = body["result"]["access"], body["result"]["refresh"]
now = int(time.time())

claims = jwt.decode(access, JWT_SECRET, algorithms=["HS256"])
check("access claims", {k: claims[k] for k in ("sub", "staff", "super", "type")} ==
      {"sub": "1", "staff": True, "super": False, "type": "access"}, claims)
check("access has a session id", isinstance(claims.get("sid"), str) and len(claims["sid"]) >= 16, claims)
check("access lives 300 s", claims["exp"] - claims["iat"] == 300, claims)
check("access issued now", abs(claims["iat"] - now) <= 10, claims)
sid = claims["sid"]

rclaims = jwt.decode(refresh, JWT_SECRET, algorithms=["HS256"])
check("refresh claims", rclaims["type"] == "refresh" and rclaims["sid"] == sid, rclaims)
check("refresh lives 604800 s", rclaims["exp"] - rclaims["iat"] == 604800, rclaims)
check("demo tokens are HS256", jwt.get_unverified_header(access)["alg"] == "HS256")

status, headers, body = request("GET", "/api/mizan/session/", token=access)
mwt = body.get("mwt")
check("session/ returns an MWT", status == 200 and isinstance(mwt, str), body)
check("MWT also in X-Mizan-Token", headers.get("x-mizan-token") == mwt, headers)
mclaims = jwt.decode(mwt, MWT_SECRET, algorithms=["HS256"])
check("MWT claims", {k: mclaims[k] for k in ("sub", "staff", "super", "typ")} ==
      {"sub": "1", "staff": True, "super": False, "typ": "mwt"}, mclaims)
check("MWT lives 300 s", mclaims["exp"] - mclaims["iat"] == 300, mclaims)
try:
    jwt.decode(mwt, JWT_SECRET, algorithms=["HS256"])
    check("MWT is not signed with the JWT secret", False)
except jwt.InvalidSignatureError:
    check("MWT is not signed with the JWT secret", True)

status, _, body = request("GET", "/api/mizan/session/")
check("anonymous session/ has no MWT", status == 200 and body == {"csrfToken": None}, body)

# ---- Tokens PyJWT mints, which the demo must accept ----
def valid(**override):
    now = int(time.time())
    claims = {"sub": "1", "sid": sid, "staff": True, "super": False, "type": "access",
              "iat": now, "exp": now + 300}
    claims.update(override)
    return claims


status, _, body = call("secret", token=hs(valid()))
check("PyJWT access token accepted", status == 200 and body["result"]["for"] == "1", body)
status, _, body = call("admin_action", token=hs(valid()))
check("PyJWT staff claim honoured", status == 200, body)
status, _, body = call("refresh", {"refresh": hs(valid(type="refresh"))})
check("PyJWT refresh token accepted by refresh()", status == 200 and "access" in body["result"], body)
fresh = body["result"]["access"] if status == 200 else ""
status, _, body = call("secret", token=fresh)
check("access from a PyJWT refresh works", status == 200, body)

# ---- ...and every token it must refuse ----
now = int(time.time())
header_part, payload_part, sig_part = hs(valid()).split(".")
forged_payload = b64(json.dumps(valid(super=True)).encode())
cases = {
    "alg none": b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(json.dumps(valid()).encode()) + ".",
    "HS512 instead of HS256": hs(valid(), algorithm="HS512"),
    "RS256 header on an HS256 app": b64(b'{"alg":"RS256","typ":"JWT"}') + f".{payload_part}." + b64(b"\x01" * 256),
    "HS384 instead of HS256": hs(valid(), algorithm="HS384"),
    "wrong key": hs(valid(), key="not-the-secret-0123456789abcdefghijkl"),
    "tampered payload": f"{header_part}.{forged_payload}.{sig_part}",
    "tampered header": b64(b'{"alg":"HS256","typ":"JWT","kid":"evil"}') + f".{payload_part}.{sig_part}",
    "expired": hs(valid(iat=now - 1000, exp=now - 600)),
    "issued in the future": hs(valid(iat=now + 120, exp=now + 420)),
    "not yet valid (nbf)": hs(valid(nbf=now + 120)),
    "refresh token as access": refresh,
    "PyJWT refresh as access": hs(valid(type="refresh")),
    "MWT as access": mwt,
    "MWT-shaped token with JWT secret": hs({"sub": "1", "staff": True, "super": False, "iat": now, "exp": now + 300, "typ": "mwt"}),
    "unknown session": hs(valid(sid="no-such-session")),
    "missing sid": hs({k: v for k, v in valid().items() if k != "sid"}),
    "garbage": "garbage",
    "three garbage parts": "a.b.c",
}
for name, token in cases.items():
    status, _, body = call("secret", token=token)
    check(f"refused: {name}", status == 401 and body == REFUSED, (status, body))

status, _, body = call("refresh", {"refresh": access})
check("refused: access token used as refresh", status == 401, (status, body))
status, _, body = call("refresh", {"refresh": hs(valid(type="refresh"), key="not-the-secret-0123456789abcdefghijkl")})
check("refused: forged refresh token", status == 401, (status, body))

# ---- Logout revokes every token of the session at once ----
peer_token = hs(valid())
status, _, body = call("logout", token=access)
check("logout succeeds", status == 200, body)
for name, token in {"demo access": access, "demo-refreshed access": fresh, "PyJWT access": peer_token}.items():
    status, _, body = call("secret", token=token)
    check(f"refused after logout: {name}", status == 401 and body == REFUSED, (status, body))
status, _, body = call("refresh", {"refresh": refresh})
check("refused after logout: refresh", status == 401, (status, body))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
