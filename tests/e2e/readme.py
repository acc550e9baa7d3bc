"""The README's console blocks, for the tests that run them against a live
server (test_readme.py: the tour on `crest serve examples/tasks/app.yaml`;
test_pg_scaleout.py: the PostgreSQL section through the scale-out example's
nginx): each `$ curl` line must print what the README shows, up to
timestamps, dates, request ids, ETag values and cursors."""
import os
import re
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
README = os.path.join(ROOT, "README.md")
README_URL = "localhost:8080"  # where the README's curl lines send their requests

# A cursor is signed with the database's own secret: it differs per database.
CURSORS = [
    (re.compile(r'"next_cursor":"[A-Za-z0-9_-]+"'), '"next_cursor":"<cursor>"'),
    (re.compile(r"([?&]cursor=)[A-Za-z0-9_-]+"), r"\1<cursor>"),
]
VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"^Date: .*$", re.M), "Date: <date>"),
    (re.compile(r"^X-Request-Id: .*$", re.M), "X-Request-Id: <id>"),
    # a row's ETag holds its version, random from one database to the next (src/rest/etag.c)
    (re.compile(r"^ETag: .*$", re.M), "ETag: <etag>"),
] + CURSORS


def normalize_cursors(text):
    """text with each cursor (meta.next_cursor, cursor= in a URL) as <cursor>."""
    for pat, rep in CURSORS:
        text = pat.sub(rep, text)
    return text


def normalize(text):
    text = text.replace("\r\n", "\n").strip()
    for pat, rep in VOLATILE:
        text = pat.sub(rep, text)
    return text


def section(title):
    """The README's text from the heading `title` ("## A 5-minute tour") to the next `## ` heading."""
    text = open(README).read()
    start = text.index("\n" + title + "\n")
    end = text.find("\n## ", start + len(title) + 1)
    return text[start:end if end >= 0 else len(text)]


def curl_commands(text):
    """(command, expected output) for each `$ curl` line of text's console blocks."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        cmd = None
        lines = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if cmd is not None:
                    out.append((cmd, "\n".join(lines)))
                cmd, lines = line[2:], []
            else:
                lines.append(line)
        if cmd is not None:
            out.append((cmd, "\n".join(lines)))
    return [(c, e) for c, e in out if c.startswith("curl ")]


def check_commands(cmds, hostport):
    """Runs each command (bash) with README_URL replaced by hostport ("127.0.0.1:PORT"),
    in order; each must print what the README shows (normalized)."""
    for cmd, expected in cmds:
        assert README_URL in cmd, cmd
        real = cmd.replace(README_URL, hostport)
        p = subprocess.run(["bash", "-c", real], capture_output=True, timeout=30)
        got = p.stdout.decode()
        assert normalize(got) == normalize(expected), f"$ {cmd}\n--- README\n{expected}\n--- server\n{got}"
