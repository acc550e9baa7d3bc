"""A bounded Server-Sent Events client over a plain socket, for the change feed's tests and its bench: it
sends one GET, reads the head, then de-chunks the body and parses events as they arrive. Exact control of
the socket (a small receive buffer, not reading at all, leaving at once) is the point; EventSource's
reconnects are the caller's (resume with last_id)."""
import json
import socket
import time


class Feed:
    def __init__(self, port, path, headers=None, timeout=15.0, rcvbuf=None, connect_only=False):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""       # bytes of the body not yet de-chunked
        self.text = b""      # de-chunked body not yet parsed into events
        self.events = []     # parsed: dicts with id, event, data (parsed JSON), and comments as {"comment": ...}
        self.ended = False   # the chunked body ended (0-length chunk)
        self.eof = False
        self.status = None
        self.headers = {}
        self.body = b""
        self.last_id = None
        if not connect_only:
            self.read_head()

    # -- the head
    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data in time")
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            self.eof = True
        return d

    def read_head(self):
        deadline = time.monotonic() + self.timeout
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self._recv(deadline)
            if not d:
                raise ConnectionError(f"closed before the head: {buf!r}")
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        first, *hl = head.decode("latin-1").split("\r\n")
        self.status = int(first.split()[1])
        for l in hl:
            k, v = l.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        if self.status != 200:
            n = int(self.headers.get("content-length", "0"))
            while len(rest) < n:
                d = self._recv(deadline)
                if not d:
                    break
                rest += d
            self.body = rest[:n]
            return
        self.raw = rest
        self._dechunk()

    def problem(self):
        return json.loads(self.body)

    # -- the body
    def _dechunk(self):
        while not self.ended:
            i = self.raw.find(b"\r\n")
            if i < 0:
                break
            n = int(self.raw[:i].split(b";")[0], 16)
            if n == 0:
                self.ended = True
                self.raw = b""
                break
            if len(self.raw) < i + 2 + n + 2:
                break
            self.text += self.raw[i + 2:i + 2 + n]
            self.raw = self.raw[i + 2 + n + 2:]
        self._parse()

    def _parse(self):
        while b"\n\n" in self.text:
            block, self.text = self.text.split(b"\n\n", 1)
            ev = {}
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    ev.setdefault("comment", line[1:].strip())
                    continue
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                ev[k] = v
            if "data" in ev:
                ev["data"] = json.loads(ev["data"])
            if "id" in ev:
                ev["id"] = int(ev["id"])
                self.last_id = ev["id"]
            self.events.append(ev)

    def pump(self, deadline):
        """Reads once (until deadline); False at the end of the stream."""
        if self.eof or self.ended:
            return False
        try:
            d = self._recv(deadline)
        except (TimeoutError, socket.timeout):
            return True
        if not d:
            return False
        self.raw += d
        self._dechunk()
        return True

    def changes(self):
        return [e for e in self.events if "event" in e]

    def wait(self, n, timeout=None):
        """Waits until n change events have come (not counting comments); returns them all."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.changes()) < n and time.monotonic() < deadline:
            if not self.pump(deadline):
                break
        got = self.changes()
        assert len(got) >= n, f"expected {n} events, got {len(got)} (the last: {str(got[-3:])[:600]})"
        return got

    def wait_for(self, pred, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            for e in self.events:
                if pred(e):
                    return e
            if not self.pump(deadline):
                break
        for e in self.events:
            if pred(e):
                return e
        raise AssertionError(f"no such event; got {len(self.events)} (the last: {str(self.events[-3:])[:600]})")

    def quiet(self, seconds):
        """Reads for `seconds`; returns the change events that came meanwhile."""
        before = len(self.changes())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.pump(deadline):
                break
        return self.changes()[before:]

    def wait_end(self, timeout=None):
        """Reads until the server ends the stream (the last chunk, or the close); True when it did."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            if not self.pump(deadline):
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
