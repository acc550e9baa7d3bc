"""RS256 / ES256 tokens checked with a public key file, and algorithm
confusion refused: an HS256 token signed with the public key as its secret."""
import subprocess
import time

import jwt as pyjwt
import pytest

from conftest import CREST_BIN, Server, assert_problem, run_cli

APP = """\
database: sqlite:r.db
auth:
  jwt:
    algorithms: [{alg}]
    public_key_file: {pub}
endpoints:
  - path: /me
    permission: authenticated
    sql: SELECT 1 AS one
    returns: one
"""


def keys(tmp_path, kind):
    priv, pub = tmp_path / f"{kind}.key", tmp_path / f"{kind}.pub"
    if kind == "rsa":
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                        str(priv)], check=True, capture_output=True)
    else:
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                        str(priv)], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(priv), "-pubout", "-out", str(pub)], check=True,
                   capture_output=True)
    return priv.read_bytes(), pub


@pytest.mark.parametrize("kind,alg", [("rsa", "RS256"), ("ec", "ES256")])
def test_public_key_algorithms_and_confusion(crest, tmp_path, kind, alg):
    priv, pub = keys(tmp_path, kind)
    s = crest(APP.format(alg=alg, pub=pub))
    now = int(time.time())
    good = pyjwt.encode({"sub": "a", "exp": now + 60}, priv, algorithm=alg)
    assert s.get("/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    # Algorithm confusion: HS256 with the public key as the HMAC secret.
    import hmac, hashlib, base64, json as js
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(js.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(js.dumps({"sub": "a", "exp": now + 60}).encode())
    sig = b64(hmac.new(pub.read_bytes(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    r = s.get("/me", headers={"Authorization": f"Bearer {head}.{body}.{sig}"})
    assert_problem(r, 401)
    expired = pyjwt.encode({"sub": "a", "exp": now - 3600}, priv, algorithm=alg)
    assert_problem(s.get("/me", headers={"Authorization": f"Bearer {expired}"}), 401)


def test_mixing_hs_and_public_key_algorithms_is_refused(tmp_path):
    _, pub = keys(tmp_path, "rsa")
    p = tmp_path / "app.yaml"
    p.write_text(APP.format(alg="HS256, RS256", pub=pub))
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1 and "mix" in r.err
