"""HTTPS (issue 5): `tls: {cert, key}` in the app file and --tls-cert/--tls-key
for C programs. Each test makes its own self-signed certificate with the
openssl command. Checked: round trips (REST, keep-alive, pipelining, bodies
and answers larger than a TLS record), TLS 1.2+ only with forward-secret
AEAD ciphers, ALPN http/1.1, a clean close_notify, plain HTTP to the TLS port
answered 400 in plain text, garbage and stalled handshakes closed, and
start-up errors for bad files."""
import socket
import ssl
import subprocess
import time
import warnings

import pytest

from conftest import CREST_BIN, assert_problem, http_request, run_cli

APP = """\
database: sqlite:t.db
tls:
  cert: {cert}
  key: {key}
limits:
  header_timeout: 1s
models:
  Note:
    fields:
      body: {{type: string, required: true}}
modules:
  notes:
    model: Note
"""


def make_cert(d, name="srv", cn="127.0.0.1"):
    cert, key = d / f"{name}-cert.pem", d / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", f"/CN={cn}", "-addext", f"subjectAltName=IP:{cn}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def certs(tmp_path):
    return make_cert(tmp_path)


@pytest.fixture
def tls_app(crest, certs):
    cert, key = certs
    s = crest(APP.format(cert=cert, key=key))
    s.tls = ssl.create_default_context(cafile=str(cert))
    return s


def handshake(s, ctx, **kw):
    """A TLS connection to the server with ctx; returns the ssl socket."""
    raw = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1", **kw)


def loose_ctx():
    """A client that accepts any certificate and any protocol OpenSSL has."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_https_round_trip_with_a_self_signed_certificate(tls_app):
    s = tls_app
    assert s.url.startswith("https://")
    body = "x" * 100_000  # several TLS records and socket reads
    with s.client() as c:
        r = c.post("/notes", json={"body": body})
        assert r.status_code == 201, r.text
        nid = r.json()["id"]
        assert c.get(f"/notes/{nid}").json()["body"] == body
        for _ in range(4):
            c.post("/notes", json={"body": body})
        r = c.get("/notes", params={"page_size": 10})  # about 500 KB: more than one write
        assert r.status_code == 200
        assert [n["body"] for n in r.json()["data"]] == [body] * 5


def test_keep_alive_and_pipelining_over_tls(tls_app):
    with tls_app.raw() as rc:
        for _ in range(3):  # one connection, request after request
            rc.send(http_request("GET", "/notes"))
            assert rc.read_response().status == 200
        rc.send(http_request("GET", "/notes") * 3)  # three in one write
        for _ in range(3):
            r = rc.read_response()
            assert r.status == 200 and r.json()["data"] == []
        assert rc.still_open()


def test_connection_close_ends_with_close_notify(tls_app):
    with handshake(tls_app, tls_app.tls, suppress_ragged_eofs=False) as t:
        t.sendall(http_request("GET", "/notes", headers=[("Connection", "close")]))
        data = b""
        while True:
            chunk = t.recv(65536)  # raises SSLEOFError if the server closed without close_notify
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 ")
        assert b"\r\nConnection: close\r\n" in data


def test_plain_http_to_the_tls_port_is_refused_cleanly(tls_app):
    from conftest import RawConn
    with RawConn(tls_app.port) as rc:  # no TLS
        rc.send(http_request("GET", "/notes"))
        r = rc.read_response()
        p = assert_problem(r, 400, "https_required")
        assert "HTTPS" in p["detail"]
        assert r.header("connection") == "close"
        assert rc.closed_by_peer()
    with tls_app.client() as c:  # the server goes on
        assert c.get("/notes").status_code == 200


def test_garbage_and_stalled_handshakes_are_closed(tls_app):
    from conftest import RawConn
    with RawConn(tls_app.port) as rc:
        rc.send(b"\x16\x03\x01\x00\x05\x00\x00\x00\x00\x00")  # a ClientHello record with a broken body
        data = rc.read_all(timeout=5)
        assert not data.startswith(b"HTTP/")  # an alert at most, never an HTTP answer
        assert rc.eof
    with RawConn(tls_app.port) as rc:
        rc.send(b"\x00\x01\x02 not tls \r\n\r\n")
        assert not rc.read_all(timeout=5).startswith(b"HTTP/")
    t0 = time.monotonic()
    with RawConn(tls_app.port) as rc:  # connects, never says hello: header_timeout (1 s) applies
        assert rc.closed_by_peer(timeout=5)
    assert time.monotonic() - t0 < 4
    with RawConn(tls_app.port) as rc:  # half a ClientHello, then nothing
        rc.send(b"\x16\x03\x01\x02\x00\x01")
        assert rc.closed_by_peer(timeout=5)
    with tls_app.client() as c:
        assert c.get("/notes").status_code == 200


def test_tls13_by_default_and_tls12_with_forward_secret_aead_only(tls_app):
    with handshake(tls_app, tls_app.tls) as t:
        assert t.version() == "TLSv1.3"
    ctx = loose_ctx()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with handshake(tls_app, ctx) as t:
        assert t.version() == "TLSv1.2"
        name = t.cipher()[0]
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name
        t.sendall(http_request("GET", "/notes", headers=[("Connection", "close")]))
        assert t.recv(100).startswith(b"HTTP/1.1 200 ")


def test_old_protocols_are_refused_by_the_server(tls_app):
    ctx = loose_ctx()
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old on purpose
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as e:
        handshake(tls_app, ctx)
    assert "alert protocol version" in str(e.value).lower()  # the server's alert, not the client's refusal


def test_weak_tls12_ciphers_are_refused(tls_app):
    ctx = loose_ctx()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:@SECLEVEL=0")  # CBC suites
    with pytest.raises(ssl.SSLError) as e:
        handshake(tls_app, ctx)
    assert "handshake failure" in str(e.value).lower()


def test_alpn_picks_http11(tls_app):
    ctx = loose_ctx()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with handshake(tls_app, ctx) as t:
        assert t.selected_alpn_protocol() == "http/1.1"
    ctx = loose_ctx()
    ctx.set_alpn_protocols(["h2"])  # nothing in common: no ALPN, HTTP/1.1 all the same
    with handshake(tls_app, ctx) as t:
        assert t.selected_alpn_protocol() is None
        t.sendall(http_request("GET", "/notes", headers=[("Connection", "close")]))
        assert t.recv(100).startswith(b"HTTP/1.1 200 ")


def test_hello_serves_https_with_flags(hello, certs):
    cert, key = certs
    s = hello(args=["--tls-cert", str(cert), "--tls-key", str(key)])
    s.tls = ssl.create_default_context(cafile=str(cert))
    r = s.get("/hello")
    assert r.status_code == 200 and r.json() == {"message": "hello"}
    assert r.url.scheme == "https"


def test_bad_tls_settings_stop_the_start(tmp_path, certs):
    cert, key = certs
    other_cert, other_key = make_cert(tmp_path, "other")
    cases = [
        (dict(cert=tmp_path / "missing.pem", key=key), "tls.cert: cannot use the certificate"),
        (dict(cert=cert, key=tmp_path / "missing.pem"), "tls.key: cannot use the private key"),
        (dict(cert=cert, key=other_key), "tls.key: the key does not match the certificate"),
        (dict(cert=other_key, key=other_key), "tls.cert: cannot use the certificate"),
    ]
    for i, (files, message) in enumerate(cases):
        app = tmp_path / f"bad{i}.yaml"
        app.write_text(APP.format(**files))
        r = run_cli([CREST_BIN, "check", str(app)], cwd=str(tmp_path))
        assert r.returncode == 1, (files, r.out, r.err)
        assert message in r.err, r.err
        assert f"bad{i}.yaml:3" in r.err or f"bad{i}.yaml:4" in r.err, r.err  # points at the line
    app = tmp_path / "nokey.yaml"
    app.write_text(f"tls:\n  cert: {cert}\n")
    r = run_cli([CREST_BIN, "check", str(app)], cwd=str(tmp_path))
    assert r.returncode == 1 and "tls: give cert" in r.err, r.err


def test_tls_flags_need_each_other(hello, certs, tmp_path):
    from conftest import CREST_HELLO
    cert, key = certs
    r = run_cli([CREST_HELLO, "--listen", "127.0.0.1:0", "--tls-cert", str(cert)], cwd=str(tmp_path))
    assert r.returncode == 2 and "both --tls-cert and --tls-key" in r.err
    r = run_cli([CREST_HELLO, "--listen", "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(cert)],
                cwd=str(tmp_path))
    assert r.returncode == 1 and "cannot use the private key" in r.err


def test_large_shared_files_over_tls_are_sent_whole_and_in_order(crest, certs, tmp_path):
    # issue 10, item 15: a docs file is one shared copy, encrypted a step at
    # a time as the socket drains (never a copy of it per connection)
    import os
    cert, key = certs
    ui = tmp_path / "swagger-ui"
    ui.mkdir()
    data = os.urandom(600_000).hex().encode()  # 1.2 MB
    (ui / "swagger-ui-bundle.js").write_bytes(data)
    s = crest(APP.format(cert=cert, key=key).replace("  header_timeout: 1s\n", "  header_timeout: 1s\n  output_buffer: 64KiB\n"),
              env={"CREST_SWAGGER_UI": str(ui)})
    s.tls = ssl.create_default_context(cafile=str(cert))
    with s.raw(timeout=30) as rc:
        rc.send(http_request("GET", "/docs/swagger-ui-bundle.js") + http_request("GET", "/notes")
                + http_request("HEAD", "/docs/swagger-ui-bundle.js")
                + http_request("GET", "/docs/swagger-ui-bundle.js", headers=[("Connection", "close")]))
        time.sleep(0.5)  # the server waits for the client: nothing is lost meanwhile
        assert rc.read_response(timeout=30).body == data
        assert rc.read_response().json()["data"] == []
        r = rc.read_response(head=True)
        assert r.status == 200 and int(r.header("content-length")) == len(data)
        assert rc.read_response(timeout=30).body == data
        assert rc.closed_by_peer(10)
