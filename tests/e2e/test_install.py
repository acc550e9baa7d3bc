"""crest as installed, and built on machines without Node: what a user of the
library or of `make install` meets first.

The install tests reuse the build under test (the folder of CREST_BIN):
`cmake --install BUILD --prefix TMP` once for the module, no rebuild. Outside
programs (a hello with one endpoint) are then built against TMP the two ways
the README shows: pkg-config and find_package(crest), each with the shared
and the static library, and run. Only the no-npm tests build a tree of their
own (once for the module, without the tests: what they check is that build),
which is why this file has a longer CTest timeout."""
import os
import pathlib
import re
import shutil
import subprocess
import textwrap

import pytest

from conftest import CREST_BIN, Server, assert_problem

SRC = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(CREST_BIN).parent if CREST_BIN else None
JOBS = str(os.cpu_count() or 2)

HELLO_C = r"""
/* An outside program: one endpoint, built against an installed crest. */
#include <crest/crest.h>

static int hello(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "message");
    crest_json_str(w, "hello from outside");
    crest_json_object_end(w);
    return 0;
}

static const crest_endpoint hello_ep = {
    .method = CREST_GET, .path = "/hello", .summary = "Say hello", .handler = hello};

int main(int argc, char **argv)
{
    crest_app *app = crest_app_new();
    if (!app || crest_app_add_endpoint(app, &hello_ep, NULL, NULL) != 0)
        return 1;
    int rc = crest_app_main(app, argc, argv);
    crest_app_free(app);
    return rc;
}
"""


def run(argv, timeout=240, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    assert p.returncode == 0, f"{argv} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def cache_value(build, name):
    for line in (build / "CMakeCache.txt").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split("=", 1)[1]
    return None


def sanitizer_flags():
    """An ASan+UBSan build's libraries need the same runtime in the program."""
    if cache_value(BUILD, "CREST_SANITIZE") in ("ON", "1", "TRUE", "YES"):
        return ["-fsanitize=address,undefined"]
    return []


def needed(binary):
    """The DT_NEEDED entries of an ELF file."""
    out = run(["readelf", "-d", str(binary)]).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """The build under test installed into a fresh prefix."""
    assert BUILD and (BUILD / "CMakeCache.txt").exists(), f"CREST_BIN is not in a build folder: {CREST_BIN!r}"
    p = tmp_path_factory.mktemp("install") / "prefix"
    run(["cmake", "--install", str(BUILD), "--prefix", str(p)])
    return p


@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "outside"
    d.mkdir()
    (d / "hello.c").write_text(HELLO_C)
    return d


def pkg_env(prefix):
    # The .pc sits in LIBDIR/pkgconfig: lib/, or lib/<multiarch>/ for /usr.
    pcs = list(prefix.glob("lib*/**/pkgconfig/crest.pc"))
    assert len(pcs) == 1, f"one crest.pc expected under {prefix}: {pcs}"
    env = dict(os.environ, PKG_CONFIG_PATH=str(pcs[0].parent))
    for k in ("PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR"):
        env.pop(k, None)
    return env


def pkgconfig(env, *args):
    return run(["pkg-config", *args, "crest"], env=env).stdout.split()


def says_hello(servers, program, cwd):
    s = servers.add(Server([str(program), "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(cwd)))
    s.wait_listening()
    r = s.get("/hello")
    assert r.status_code == 200 and r.json() == {"message": "hello from outside"}, r.text


def test_pkgconfig_paths_after_install_to_a_prefix(prefix, outside, servers):
    """Regression: crest.pc was configured before GNUInstallDirs was included,
    so it said libdir=${prefix}/ and includedir=${prefix}/, and a program
    built against a prefix other than /usr/local failed with `cannot find
    -lcrest`."""
    env = pkg_env(prefix)
    libdir = pathlib.Path(run(["pkg-config", "--variable=libdir", "crest"], env=env).stdout.strip())
    includedir = pathlib.Path(run(["pkg-config", "--variable=includedir", "crest"], env=env).stdout.strip())
    assert prefix in libdir.parents and prefix in includedir.parents, (libdir, includedir)
    assert (libdir / "libcrest.so").exists() and (libdir / "libcrest.a").exists(), libdir
    assert (includedir / "crest" / "crest.h").exists(), includedir
    assert f"-L{libdir}" in pkgconfig(env, "--libs")
    assert f"-I{includedir}" in pkgconfig(env, "--cflags")

    exe = outside / "hello_shared"
    run(["cc", "-Wall", "-Wextra", "-Werror", *sanitizer_flags(), "hello.c", "-o", str(exe),
         *pkgconfig(env, "--cflags", "--libs"), f"-Wl,-rpath,{libdir}"], cwd=str(outside), env=env)
    assert any(n.startswith("libcrest.so") for n in needed(exe))
    says_hello(servers, exe, outside)


def test_pkgconfig_static_links_every_dependency(prefix, outside, servers):
    """`pkg-config --static` lists all libcrest.a needs (libssl was missing
    from Requires.private); with -lcrest turned into -l:libcrest.a the program
    carries crest and runs without libcrest.so."""
    env = pkg_env(prefix)
    private = run(["pkg-config", "--print-requires-private", "crest"], env=env).stdout.split()
    for m in ("libuv", "yaml-0.1", "sqlite3", "libpcre2-8", "libjwt", "libcrypto", "libssl"):
        assert m in private, (m, private)
    libs = pkgconfig(env, "--static", "--libs")
    for flag in ("-lhttp_parser", "-lssl", "-lcrypto", "-luv", "-lsqlite3", "-lm"):
        assert flag in libs, (flag, libs)
    assert "-lcrest" in libs
    libs = ["-l:libcrest.a" if f == "-lcrest" else f for f in libs]
    exe = outside / "hello_static"
    run(["cc", "-Wall", "-Wextra", "-Werror", *sanitizer_flags(), "hello.c", "-o", str(exe),
         *pkgconfig(env, "--cflags"), *libs], cwd=str(outside), env=env)
    assert not any(n.startswith("libcrest") for n in needed(exe)), needed(exe)
    says_hello(servers, exe, outside)


def test_find_package_shared_and_static(prefix, outside, servers):
    """find_package(crest CONFIG) gives crest::crest (libcrest.so) and
    crest::crest_static (libcrest.a with its dependencies)."""
    (outside / "CMakeLists.txt").write_text(textwrap.dedent("""\
        cmake_minimum_required(VERSION 3.18)
        project(outside C)
        find_package(crest 0.1 CONFIG REQUIRED)
        add_executable(hello_shared hello.c)
        target_link_libraries(hello_shared PRIVATE crest::crest)
        add_executable(hello_static hello.c)
        target_link_libraries(hello_static PRIVATE crest::crest_static)
        """))
    build = outside / "build"
    flags = " ".join(sanitizer_flags())
    run(["cmake", "-S", str(outside), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}",
         f"-DCMAKE_C_FLAGS={flags}", f"-DCMAKE_EXE_LINKER_FLAGS={flags}"])
    run(["cmake", "--build", str(build), "-j", JOBS])
    assert any(n.startswith("libcrest.so") for n in needed(build / "hello_shared"))
    assert not any(n.startswith("libcrest") for n in needed(build / "hello_static"))
    says_hello(servers, build / "hello_shared", outside)
    says_hello(servers, build / "hello_static", outside)
    version = next(prefix.glob("lib*/**/cmake/crest/crestConfigVersion.cmake"))
    assert "SameMinorVersion" in version.read_text() or "0.1" in version.read_text()


def test_docs_after_install_found_next_to_the_moved_binary(prefix, tmp_path, servers):
    """Regression: the installed `crest` looked for the docs page's files in
    the build folder only, and `make install` did not install them. They are
    installed under share/crest/swagger-ui and found next to the binary, even
    after the prefix moved. The installed copy is marked so that the test sees
    it is the one served, not the build folder's (which other tests running
    at the same time use, so it is not deleted here)."""
    ui = prefix / "share" / "crest" / "swagger-ui"
    for f in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png"):
        assert (ui / f).is_file(), f"{f} not installed in {ui}"
    moved = tmp_path / "moved"
    shutil.copytree(prefix / "bin", moved / "bin")
    shutil.copytree(ui, moved / "share" / "crest" / "swagger-ui")
    css = moved / "share" / "crest" / "swagger-ui" / "swagger-ui.css"
    css.write_text(css.read_text() + "\n/* the installed copy */\n")
    app = tmp_path / "app.yaml"
    app.write_text("database: sqlite:app.db\n")

    s = servers.add(Server([str(moved / "bin" / "crest"), "serve", str(app), "--listen", "127.0.0.1:0",
                            "--workers", "1"], cwd=str(tmp_path), env={"CREST_SWAGGER_UI": ""}))
    s.wait_listening()
    r = s.get("/docs/swagger-ui.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert r.text.endswith("/* the installed copy */\n")
    assert s.get("/docs").status_code == 200
    assert s.get("/docs/swagger-ui-bundle.js").status_code == 200

    # The environment variable still wins, and a wrong one says so.
    other = tmp_path / "other"
    shutil.copytree(moved / "share" / "crest" / "swagger-ui", other)
    (other / "swagger-ui.css").write_text("/* from CREST_SWAGGER_UI */\n")
    s = servers.add(Server([str(moved / "bin" / "crest"), "serve", str(app), "--listen", "127.0.0.1:0",
                            "--workers", "1"], cwd=str(tmp_path), env={"CREST_SWAGGER_UI": str(other)}))
    s.wait_listening()
    assert s.get("/docs/swagger-ui.css").text == "/* from CREST_SWAGGER_UI */\n"
    s = servers.add(Server([str(moved / "bin" / "crest"), "serve", str(app), "--listen", "127.0.0.1:0",
                            "--workers", "1"], cwd=str(tmp_path),
                           env={"CREST_SWAGGER_UI": str(tmp_path / "nowhere")}))
    s.wait_listening()
    r = s.get("/docs/swagger-ui.css")
    assert_problem(r, 503)
    assert r.json()["code"] == "docs_unavailable" and "CREST_SWAGGER_UI" in r.json()["detail"]
    assert str(tmp_path) not in r.text, "the server's folders are not shown to clients"


# ---------------------------------------------------------------- no Node


def path_without_node(tmp_path):
    """A PATH with every command of this machine but node, npm and their kin."""
    farm = tmp_path / "bin-without-node"
    farm.mkdir()
    hidden = {"node", "nodejs", "npm", "npx", "corepack"}
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
        if not d or not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name in hidden or (farm / name).exists():
                continue
            full = os.path.join(d, name)
            if os.access(full, os.X_OK) and not os.path.isdir(full):
                (farm / name).symlink_to(full)
    return str(farm)


def fake_node(tmp_path, version):
    d = tmp_path / f"node-{version}"
    d.mkdir()
    node = d / "node"
    node.write_text(f"#!/bin/sh\necho {version}\n")  # `node -p process.versions.node`
    node.chmod(0o755)
    return str(d)


@pytest.fixture(scope="module")
def no_npm_build(tmp_path_factory):
    """A fresh build (no tests) on a PATH without node and npm, installed
    into its own prefix: (build, prefix, build output, install output)."""
    tmp = tmp_path_factory.mktemp("no-npm")
    env = dict(os.environ, PATH=path_without_node(tmp))
    for k in ("MAKEFLAGS", "MFLAGS", "CREST_SWAGGER_UI"):
        env.pop(k, None)
    assert shutil.which("npm", path=env["PATH"]) is None and shutil.which("cmake", path=env["PATH"])
    build, pfx = tmp / "build", tmp / "prefix"
    run(["cmake", "-S", str(SRC), "-B", str(build), "-DCREST_TESTS=OFF", f"-DCMAKE_INSTALL_PREFIX={pfx}"],
        env=env)
    b = run(["cmake", "--build", str(build), "-j", JOBS], env=env, timeout=480)
    i = run(["cmake", "--install", str(build)], env=env)
    return build, pfx, b.stdout + b.stderr, i.stdout + i.stderr


def test_build_without_npm_serves_a_docs_problem(no_npm_build, tmp_path, servers):
    """Regression: on a Debian 12 machine without Node, the build stopped at
    scripts/npm.sh ("node not found"). Now a build without npm succeeds with a
    warning, installs, and its /docs answers 503 docs_unavailable saying how
    to get the page's files; the rest of the API, /openapi.json included, works."""
    build, pfx, built, installed = no_npm_build
    assert "npm not found" in built and "503 docs_unavailable" in built, built
    assert not (build / "swagger-ui").exists()
    assert "docs page's files are not in" in installed, installed
    assert (pfx / "bin" / "crest").exists() and not (pfx / "share" / "crest" / "swagger-ui").exists()

    app = tmp_path / "app.yaml"
    app.write_text("database: sqlite:app.db\ninfo: {title: No Node}\n")
    for exe in (build / "crest", pfx / "bin" / "crest"):
        s = servers.add(Server([str(exe), "serve", str(app), "--listen", "127.0.0.1:0", "--workers", "1"],
                               cwd=str(tmp_path), env={"CREST_SWAGGER_UI": ""}))
        s.wait_listening()
        for path in ("/docs", "/docs/swagger-ui.css"):
            r = s.get(path)
            assert_problem(r, 503)
            p = r.json()
            assert p["code"] == "docs_unavailable" and "npm" in p["detail"], p
        assert s.get("/docs/init.js").status_code == 200
        doc = s.get("/openapi.json").json()
        assert doc["info"]["title"] == "No Node"
        assert "503" in doc["paths"]["/docs"]["get"]["responses"]
        assert "503" in doc["paths"]["/docs/{file}"]["get"]["responses"]


def test_docs_after_install_without_build_folder(no_npm_build, tmp_path, servers):
    """The issue's own steps, on the test's own build: fetch the page's files
    into the build folder (scripts/npm.sh, as the build does with npm),
    install, delete the build folder's copy; the installed crest serves them."""
    build, _, _, _ = no_npm_build
    run([str(SRC / "scripts" / "npm.sh"), str(build)], timeout=280)
    pfx = tmp_path / "prefix"
    try:
        run(["cmake", "--install", str(build), "--prefix", str(pfx)])
    finally:
        shutil.rmtree(build / "swagger-ui")
    app = tmp_path / "app.yaml"
    app.write_text("database: sqlite:app.db\n")
    s = servers.add(Server([str(pfx / "bin" / "crest"), "serve", str(app), "--listen", "127.0.0.1:0",
                            "--workers", "1"], cwd=str(tmp_path), env={"CREST_SWAGGER_UI": ""}))
    s.wait_listening()
    r = s.get("/docs/swagger-ui.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert r.text == (pfx / "share" / "crest" / "swagger-ui" / "swagger-ui.css").read_text()
    assert s.get("/docs").status_code == 200


def test_deps_installs_node_for_the_build(tmp_path):
    """Regression: scripts/deps.sh installed no Node, though the build needs
    npm for the docs page's files. The build set has Debian's nodejs and npm;
    a node and npm already on the PATH (NodeSource's nodejs, which conflicts
    with Debian's npm) count as installed."""
    deps = str(SRC / "scripts" / "deps.sh")
    listed = run([deps, "--list", "build"]).stdout.split()
    assert "nodejs" in listed and "npm" in listed
    no_node = path_without_node(tmp_path)
    missing = run([deps, "--missing", "build"], env=dict(os.environ, PATH=no_node)).stdout.split()
    assert "npm" in missing
    fake = fake_node(tmp_path, "20.19.0")
    (pathlib.Path(fake) / "npm").symlink_to(pathlib.Path(fake) / "node")
    missing = run([deps, "--missing", "build"], env=dict(os.environ, PATH=fake + ":" + no_node)).stdout.split()
    assert "nodejs" not in missing and "npm" not in missing, missing


def test_make_test_says_when_node_is_too_old(tmp_path):
    """The test tools need Node.js 20.19+ (@redocly/cli); Debian 12 has 18.
    `make test` (scripts/test.sh) stops at once and says what to install,
    rather than failing in the OpenAPI tests after the builds. Run on a copy
    of the two scripts, so that nothing is built even if the check broke."""
    copy = tmp_path / "src" / "scripts"
    copy.mkdir(parents=True)
    for f in ("test.sh", "npm.sh"):
        shutil.copy2(SRC / "scripts" / f, copy / f)
    env = dict(os.environ, PATH=fake_node(tmp_path, "18.19.0") + ":" + os.environ["PATH"])
    p = subprocess.run([str(copy / "test.sh")], env=env, capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode != 0
    assert "Node.js v18.19.0" in out and "too old" in out and "20.19" in out, out
    assert "===" not in out, "no suite started"
    for v in ("20.19.0", "22.12.0", "24.0.1"):
        env = dict(os.environ, PATH=fake_node(tmp_path, v) + ":" + os.environ["PATH"])
        assert subprocess.run([str(copy / "npm.sh"), "--check-node"], env=env).returncode == 0, v
    for v in ("20.18.3", "21.7.3", "22.11.0"):
        env = dict(os.environ, PATH=fake_node(tmp_path, v) + ":" + os.environ["PATH"])
        p = subprocess.run([str(copy / "npm.sh"), "--check-node"], env=env, capture_output=True, text=True)
        assert p.returncode != 0 and f"v{v}" in p.stderr, (v, p.stderr)
