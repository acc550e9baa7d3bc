"""How the build is set up: `make run` on a machine that has only the build
dependencies (scripts/deps.sh build) must configure, without the test
framework that only `make test` installs.

The machine running this has every test dependency, so the tests hide cmocka
from pkg-config: PKG_CONFIG_LIBDIR points at a folder holding every system
.pc file but cmocka.pc. Each test configures a fresh build folder through the
Makefile's own rule (configure only, no compile: a few seconds)."""
import os
import pathlib
import shutil
import subprocess

import pytest

SRC = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def no_cmocka(tmp_path):
    """An environment whose pkg-config sees every system package but cmocka."""
    pc = tmp_path / "pkgconfig"
    pc.mkdir()
    path = subprocess.run(["pkg-config", "--variable", "pc_path", "pkg-config"],
                          capture_output=True, text=True, check=True).stdout.strip()
    seen = 0
    for d in path.split(":"):
        if not os.path.isdir(d):
            continue
        for f in os.listdir(d):
            if f.endswith(".pc") and f != "cmocka.pc" and not (pc / f).exists():
                (pc / f).symlink_to(os.path.join(d, f))
                seen += 1
    assert seen > 0 and (pc / "libuv.pc").exists()
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(pc))
    env.pop("PKG_CONFIG_PATH", None)
    env.pop("CREST_TESTS", None)
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    assert subprocess.run(["pkg-config", "--exists", "cmocka"], env=env).returncode != 0
    return env


def configure(env, build, *make_vars):
    return subprocess.run(["make", "-C", str(SRC), f"BUILD={build}", *make_vars, f"{build}/Makefile"],
                          env=env, capture_output=True, text=True, timeout=240)


def cache_value(build, name):
    for line in (build / "CMakeCache.txt").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split("=", 1)[1]
    return None


def test_make_run_configures_without_cmocka(no_cmocka, tmp_path):
    """Regression: `make run` on a fresh machine stopped at CMake's configure
    step ("Package 'cmocka' ... not found") because the unit tests were always
    configured, and cmocka comes only with `make test`'s dependencies."""
    build = tmp_path / "build"
    r = configure(no_cmocka, build)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "-DCREST_TESTS=OFF" in r.stdout
    assert cache_value(build, "CREST_TESTS") == "OFF"
    shutil.rmtree(build)


def test_tests_asked_for_without_cmocka_fail_loudly(no_cmocka, tmp_path):
    """When the tests are asked for (scripts/test.sh passes -DCREST_TESTS=ON)
    and cmocka is missing, the configure step fails and names it: a test
    suite is never silently left out."""
    build = tmp_path / "build"
    r = configure(no_cmocka, build, "CREST_TESTS=ON")
    assert r.returncode != 0
    assert "cmocka" in r.stdout + r.stderr
    shutil.rmtree(build)


def test_tests_configured_when_cmocka_is_there(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CREST_TESTS", "MAKEFLAGS", "MFLAGS")}
    build = tmp_path / "build"
    r = configure(env, build)
    assert r.returncode == 0, r.stdout + r.stderr
    assert cache_value(build, "CREST_TESTS") == "ON"
    shutil.rmtree(build)
