"""bench/benchhttp.py — the HTTP helpers of the benchmark's checks.

The scenario checks of bench/*.sh run Python with PYTHONPATH set to bench/:
each asks one crest (or baseline) on 127.0.0.1 a few GETs on one keep-alive
connection before the load, and ends the benchmark with a message when an
answer is not what the scenario measures."""
import http.client
import json
import sys


class Client:
    """A keep-alive connection to 127.0.0.1:port."""

    def __init__(self, port, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def raw(self, path, headers=None):
        """GET path: (status, headers, body bytes)."""
        self.conn.request("GET", path, headers=headers or {})
        r = self.conn.getresponse()
        return r.status, r.headers, r.read()

    def json(self, path, headers=None):
        """GET path's JSON body; ends the check unless the answer is a 200."""
        status, _, body = self.raw(path, headers)
        if status != 200:
            sys.exit(f"GET {path}: {status} {body[:200].decode(errors='replace')}")
        return json.loads(body)
