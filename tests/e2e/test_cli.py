"""The `crest` command line and the flags every crest program shares."""
import socket

import pytest

from conftest import CREST_BIN, CREST_HELLO, run_cli

APP = "database: sqlite:cli.db\nendpoints:\n  - path: /one\n    sql: SELECT 1 AS one\n    returns: one\n"


def test_help():
    for flag in ("--help", "-h"):
        r = run_cli([CREST_BIN, flag])
        assert r.returncode == 0
        assert "usage" in r.out.lower()
        assert "serve" in r.out and "check" in r.out


def test_version():
    r = run_cli([CREST_BIN, "--version"])
    assert r.returncode == 0
    assert r.out.strip() == "crest 0.1.0"


def test_unknown_command_exits_2():
    r = run_cli([CREST_BIN, "frobnicate"])
    assert r.returncode == 2
    assert "frobnicate" in r.err
    assert "usage" in r.err.lower()


def test_no_arguments_exits_2():
    r = run_cli([CREST_BIN])
    assert r.returncode == 2
    assert "usage" in r.err.lower()


@pytest.mark.parametrize("cmd", ["serve", "check"])
def test_command_without_app_file_exits_2(cmd):
    r = run_cli([CREST_BIN, cmd])
    assert r.returncode == 2


def test_check_extra_argument_exits_2(tmp_path):
    p = tmp_path / "app.yaml"
    p.write_text(APP)
    r = run_cli([CREST_BIN, "check", str(p), "extra"], cwd=str(tmp_path))
    assert r.returncode == 2


@pytest.mark.parametrize("args", [["--workers", "0"], ["--workers", "abc"], ["--workers", "999"],
                                  ["--listen", "nonsense:port"], ["--listen"], ["--bogus"]])
def test_serve_bad_flags_exit_2(tmp_path, args):
    p = tmp_path / "app.yaml"
    p.write_text(APP)
    r = run_cli([CREST_BIN, "serve", str(p)] + args, cwd=str(tmp_path), timeout=30)
    assert r.returncode == 2, (r.returncode, r.err)
    assert '"listening"' not in r.err


def test_serve_help_after_app_file(tmp_path):
    p = tmp_path / "app.yaml"
    p.write_text(APP)
    r = run_cli([CREST_BIN, "serve", str(p), "--help"], cwd=str(tmp_path))
    assert r.returncode == 0
    assert "--listen" in r.out and "--workers" in r.out


@pytest.mark.parametrize("cmd", ["serve", "check", "openapi", "token"])
@pytest.mark.parametrize("with_app", [False, True], ids=["alone", "after the app file"])
def test_every_subcommand_answers_help_with_its_own_usage(tmp_path, cmd, with_app):
    # Issue 10 item 8: `crest serve --help` exited 2 with "an APP_FILE is required".
    p = tmp_path / "app.yaml"
    p.write_text(APP)
    for flag in ("--help", "-h"):
        r = run_cli([CREST_BIN, cmd] + ([str(p)] if with_app else []) + [flag], cwd=str(tmp_path))
        assert r.returncode == 0, (r.returncode, r.err)
        assert r.out.startswith(f"usage: crest {cmd} APP_FILE"), r.out
        others = {"serve", "check", "openapi", "token"} - {cmd}
        assert not any(f"crest {o} " in r.out for o in others), r.out
        assert r.err == ""


@pytest.mark.parametrize("version", ["2.0", "3.2", "3"])
def test_openapi_unknown_version_is_named(tmp_path, version):
    # Issue 10 item 9: "--openapi 2.0" said "unexpected argument '--openapi'".
    p = tmp_path / "app.yaml"
    p.write_text(APP)
    r = run_cli([CREST_BIN, "openapi", str(p), "--openapi", version], cwd=str(tmp_path))
    assert r.returncode == 2
    assert f"unknown version '{version}'" in r.err and "3.1" in r.err and "3.0" in r.err, r.err
    assert "unexpected argument" not in r.err
    assert r.out == ""
    # The same flag of a C program's crest_app_main (here: crest serve).
    r = run_cli([CREST_BIN, "serve", str(p), "--openapi", version], cwd=str(tmp_path))
    assert r.returncode == 2
    assert f"unknown version '{version}'" in r.err, r.err


def test_openapi_version_flag_without_a_value_says_so(tmp_path):
    p = tmp_path / "app.yaml"
    p.write_text(APP)
    r = run_cli([CREST_BIN, "openapi", str(p), "--openapi"], cwd=str(tmp_path))
    assert r.returncode == 2
    assert "--openapi needs a version" in r.err


def test_listen_and_workers_flags(crest):
    s = crest(APP, workers=2)
    assert s.workers == 2
    assert s.listen_event["address"].startswith("127.0.0.1:")
    assert s.port > 0
    for _ in range(4):
        assert s.get("/one").json() == {"one": 1}


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def test_listen_flag_with_a_fixed_port(crest):
    port = free_port()
    s = crest(APP, listen=f"127.0.0.1:{port}")
    assert s.port == port
    assert s.get("/one").status_code == 200


def test_crest_listen_env(crest):
    port = free_port()
    s = crest(APP, listen=None, env={"CREST_LISTEN": f"127.0.0.1:{port}"})
    assert s.port == port
    assert s.get("/one").json() == {"one": 1}


def test_crest_listen_env_beats_app_file(crest):
    port = free_port()
    s = crest("listen: 127.0.0.1:1\n" + APP, listen=None, env={"CREST_LISTEN": f"127.0.0.1:{port}"})
    assert s.port == port


def test_listen_flag_beats_env(crest):
    env_port = free_port()
    s = crest(APP, listen="127.0.0.1:0", env={"CREST_LISTEN": f"127.0.0.1:{env_port}"})
    assert s.port != env_port
    assert s.get("/one").status_code == 200


def test_app_file_listen_and_workers(crest):
    port = free_port()
    s = crest(f"listen: 127.0.0.1:{port}\nworkers: 2\n" + APP, listen=None, workers=None)
    assert s.port == port
    assert s.workers == 2


def test_bad_crest_listen_env_exits_2(tmp_path):
    p = tmp_path / "app.yaml"
    p.write_text(APP)
    r = run_cli([CREST_BIN, "serve", str(p)], cwd=str(tmp_path), env={"CREST_LISTEN": "not an address"})
    assert r.returncode == 2
    assert "CREST_LISTEN" in r.err


def test_bad_crest_database_env(tmp_path):
    p = tmp_path / "app.yaml"
    p.write_text(APP)
    r = run_cli([CREST_BIN, "serve", str(p), "--listen", "127.0.0.1:0"], cwd=str(tmp_path),
                env={"CREST_DATABASE": "postgresql://nobody@nowhere/db"})
    assert r.returncode != 0
    assert "CREST_DATABASE" in r.err
    assert '"listening"' not in r.err


@pytest.mark.parametrize("reuseport", [False, True], ids=["plain", "so_reuseport"])
def test_port_in_use_fails_to_start(tmp_path, reuseport):
    """Another program's listener, with or without SO_REUSEPORT: crest
    refuses the port instead of sharing it (the workers' own binds set
    SO_REUSEPORT and would join a listener that set it too)."""
    holder = socket.socket()
    if reuseport:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        port = holder.getsockname()[1]
        p = tmp_path / "app.yaml"
        p.write_text(APP)
        r = run_cli([CREST_BIN, "serve", str(p), "--listen", f"127.0.0.1:{port}"], cwd=str(tmp_path), timeout=30)
        assert r.returncode != 0
        assert '"listening"' not in r.err
        assert "address already in use" in r.err.lower()
    finally:
        holder.close()


def test_second_crest_on_a_port_in_use_fails_to_start(crest, tmp_path):
    """Regression: every worker listens with SO_REUSEPORT, so a second crest
    started on the port of a running one (same user) joined its listeners and
    silently took half of its connections. It must refuse to start instead."""
    first = crest(APP, listen="127.0.0.1:0", workers=2)
    p = tmp_path / "app2.yaml"
    p.write_text(APP)
    r = run_cli([CREST_BIN, "serve", str(p), "--listen", f"127.0.0.1:{first.port}", "--workers", "1"],
                cwd=str(tmp_path), timeout=30)
    assert r.returncode != 0
    assert '"listening"' not in r.err
    assert "another program listens there" in r.err
    for _ in range(8):  # the first one still answers everything
        assert first.get("/one").json() == {"one": 1}




def test_hello_flags(tmp_path):
    d = str(tmp_path)
    r = run_cli([CREST_HELLO, "--version"], cwd=d)
    assert r.returncode == 0 and r.out.strip() == "crest 0.1.0"
    r = run_cli([CREST_HELLO, "--help"], cwd=d)
    assert r.returncode == 0 and "--listen" in r.out
    r = run_cli([CREST_HELLO, "--nope"], cwd=d)
    assert r.returncode == 2


def test_hello_version_creates_no_database(tmp_path):
    # Regression: `hello --version` used to create hello.db before reading its flags.
    d = str(tmp_path)
    for flag in ("--version", "--help", "--nope"):
        run_cli([CREST_HELLO, flag], cwd=d)
    assert list(tmp_path.iterdir()) == []


def test_crest_access_log_env_turns_the_log_off(crest, tmp_path):
    s = crest(APP, env={"CREST_ACCESS_LOG": "off"})
    assert s.get("/one").status_code == 200
    on = crest(APP)
    assert on.get("/one").status_code == 200
    s.stop()
    on.stop()
    assert '"path":"/one"' not in s.stderr_text()
    assert '"path":"/one"' in on.stderr_text()
    p = tmp_path / "bad.yaml"
    p.write_text(APP)
    r = run_cli([CREST_BIN, "serve", str(p)], cwd=str(tmp_path), env={"CREST_ACCESS_LOG": "maybe"})
    assert r.returncode == 2 and "CREST_ACCESS_LOG" in r.err
