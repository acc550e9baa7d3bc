"""The README's tour: every `$ curl` line of its console blocks is run against
`crest serve examples/tasks/app.yaml` (fresh database, in order) and must print
what the README shows, up to timestamps, dates and request ids."""
import os
import re
import subprocess

import pytest

from conftest import CREST_BIN

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
README = os.path.join(ROOT, "README.md")
EXAMPLE_APP = os.path.join(ROOT, "examples", "tasks", "app.yaml")

VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"^Date: .*$", re.M), "Date: <date>"),
    (re.compile(r"^X-Request-Id: .*$", re.M), "X-Request-Id: <id>"),
]


def normalize(text):
    text = text.replace("\r\n", "\n").strip()
    for pat, rep in VOLATILE:
        text = pat.sub(rep, text)
    return text


def tour_commands():
    """(command, expected output) for each `$ curl` line of the tour section."""
    text = open(README).read()
    start = text.index("## A 5-minute tour")
    end = text.index("\n## ", start + 10)
    section = text[start:end]
    out = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
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


def test_the_readme_tour_prints_what_it_shows(crest):
    cmds = tour_commands()
    assert len(cmds) >= 15, "the tour lost its curl lines"
    s = crest(open(EXAMPLE_APP).read())
    for cmd, expected in cmds:
        assert "localhost:8080" in cmd, cmd
        real = cmd.replace("localhost:8080", f"127.0.0.1:{s.port}")
        p = subprocess.run(["bash", "-c", real], capture_output=True, timeout=30)
        got = p.stdout.decode()
        assert normalize(got) == normalize(expected), f"$ {cmd}\n--- README\n{expected}\n--- server\n{got}"
