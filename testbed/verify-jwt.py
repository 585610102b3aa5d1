#!/usr/bin/env python3
"""testbed/verify-jwt.py — verify an OIDC ID token against the issuer's JWKS, independently of Custos.

    verify-jwt.py --issuer URL --ca CA.pem [--aud CLIENT_ID] [--group G ...] < token

Fetches {issuer}/.well-known/openid-configuration, then jwks_uri, picks the key by `kid`, verifies the
RS256 signature, checks iss, aud, exp and iat, and that every --group is in the `groups` claim. Prints the
claims as JSON; exits non-zero with a reason on any failure.

Uses the `cryptography` package. When it is not importable, it is installed once into a venv under
${CUSTOS_CACHE:-~/.cache/custos}/testbed/venv (from PyPI) and the script re-runs itself there.
"""
import argparse
import base64
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request


def ensure_cryptography():
    try:
        import cryptography  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("VERIFY_JWT_IN_VENV"):
        sys.exit("cryptography still missing inside the venv")
    venv = os.path.join(os.environ.get("CUSTOS_CACHE", os.path.expanduser("~/.cache/custos")), "testbed", "venv")
    py = os.path.join(venv, "bin", "python3")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    subprocess.check_call([py, "-m", "pip", "install", "-q", "cryptography"])
    os.environ["VERIFY_JWT_IN_VENV"] = "1"
    os.execv(py, [py] + sys.argv)


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def fetch_json(url, ctx):
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--aud")
    ap.add_argument("--group", action="append", default=[])
    args = ap.parse_args()

    ensure_cryptography()
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    token = sys.stdin.read().strip()
    try:
        header_b64, payload_b64, sig_b64 = token.split(".")
    except ValueError:
        sys.exit("not a JWS compact token")
    header = json.loads(b64url_decode(header_b64))
    claims = json.loads(b64url_decode(payload_b64))
    if header.get("alg") != "RS256":
        sys.exit("unexpected alg %r" % header.get("alg"))

    ctx = ssl.create_default_context(cafile=args.ca)
    discovery = fetch_json(args.issuer.rstrip("/") + "/.well-known/openid-configuration", ctx)
    if discovery.get("issuer") != args.issuer:
        sys.exit("discovery issuer %r != %r" % (discovery.get("issuer"), args.issuer))
    jwks = fetch_json(discovery["jwks_uri"], ctx)
    keys = [k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")]
    if not keys:
        sys.exit("kid %r not in JWKS" % header.get("kid"))
    jwk = keys[0]
    if jwk.get("kty") != "RSA":
        sys.exit("kid %r is not an RSA key" % header.get("kid"))
    pub = rsa.RSAPublicNumbers(
        int.from_bytes(b64url_decode(jwk["e"]), "big"), int.from_bytes(b64url_decode(jwk["n"]), "big")
    ).public_key()
    try:
        pub.verify(b64url_decode(sig_b64), (header_b64 + "." + payload_b64).encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        sys.exit("signature does not verify against the issuer's JWKS")

    now = time.time()
    if claims.get("iss") != args.issuer:
        sys.exit("iss %r != %r" % (claims.get("iss"), args.issuer))
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if args.aud and args.aud not in auds:
        sys.exit("aud %r does not contain %r" % (aud, args.aud))
    if not claims.get("exp") or claims["exp"] < now:
        sys.exit("token expired")
    if claims.get("iat", 0) > now + 60:
        sys.exit("iat in the future")
    missing = [g for g in args.group if g not in claims.get("groups", [])]
    if missing:
        sys.exit("groups %r missing from %r" % (missing, claims.get("groups")))
    print(json.dumps(claims, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
