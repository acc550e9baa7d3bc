"""Every black-box response checked against the server's own OpenAPI document
(GET /openapi.json): the route and method must be documented (or be a 404 /
405 the router gives for routes that do not exist), the status declared for
the operation (exactly, or by its 4XX / 5XX range), and a JSON body must match
the declared schema (JSON Schema 2020-12 for 3.1, with the document's
components). A documented route the server does not know fails too.
A sparse fieldset (`fields=a,b` on an operation whose `fields` parameter is
optional: the REST routes that answer rows; `fields[<relation>]=a,b` for
embedded rows) writes only the fields named: such an answer is checked
against the schema with the required properties of the rows cut to those
names.
Statuses the HTTP engine itself answers for any request (timeouts, sizes,
connection limits) are outside the document by design and are skipped."""
import copy
import json
import re
from urllib.parse import parse_qs

import httpx
from jsonschema import Draft202012Validator, Draft4Validator, RefResolver

ENGINE = {408, 413, 414, 417, 431, 501}


class Mismatch(AssertionError):
    pass


class Checker:
    def __init__(self, base_url, doc=None, verify=True):
        self.base_url = base_url
        self.verify = verify
        self.doc = None
        self.routes = None
        self.validators = {}
        if doc is not None:
            self._index(doc)

    def _load(self):
        if self.doc is not None:
            return
        r = httpx.get(self.base_url + "/openapi.json", timeout=30, verify=self.verify)
        r.raise_for_status()
        self._index(r.json())

    def _index(self, doc):
        self.doc = doc
        self.routes = []
        for path, item in self.doc["paths"].items():
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"
            self.routes.append((re.compile(rx), path, item))
        self.v30 = self.doc["openapi"].startswith("3.0")

    def _validator(self, schema, fields=None):
        key = json.dumps([schema, fields], sort_keys=True)
        v = self.validators.get(key)
        if v is None:
            cls = Draft4Validator if self.v30 else Draft202012Validator
            v = cls(schema, resolver=RefResolver.from_schema(self._sparse(fields) if fields else self.doc))
            self.validators[key] = v
        return v

    def _sparse(self, fieldsets):
        """The document with the required properties of the row schemas (those having every field of a
        set as a property) cut to the set's fields."""
        doc = copy.deepcopy(self.doc)
        for fields in fieldsets:
            for s in doc.get("components", {}).get("schemas", {}).values():
                props = s.get("properties") or {}
                if "required" in s and all(f in props for f in fields):
                    s["required"] = [r for r in s["required"] if r in fields]
                    if not s["required"]:
                        del s["required"]
        return doc

    @staticmethod
    def _fields_asked(op, url_path):
        """The sparse fieldsets asked for (fields=a,b and each fields[<relation>]=c,d) when the operation
        takes them, else None."""
        sparse = any(p.get("name") == "fields" and p.get("in") == "query" and not p.get("required")
                     for p in op.get("parameters", []))
        if not sparse or "?" not in url_path:
            return None
        q = parse_qs(url_path.split("?", 1)[1], keep_blank_values=True)
        sets = [sorted(set(v[0].split(","))) for k, v in sorted(q.items())
                if k == "fields" or (k.startswith("fields[") and k.endswith("]"))]
        return sets or None

    def check(self, method, url_path, status, ctype, body):
        self._load()
        if method == "OPTIONS":
            return
        path = url_path.split("?", 1)[0]
        match = [(p, item) for rx, p, item in self.routes if rx.match(path)]
        # The router prefers literal segments: the most specific template wins.
        match.sort(key=lambda m: m[0].count("{"))
        problem = None
        if ctype.startswith("application/problem+json"):
            try:
                problem = json.loads(body)
            except ValueError:
                raise Mismatch(f"{method} {url_path}: {status} with a problem body that is not JSON")
        if status in ENGINE or (problem and problem.get("code") in ("too_many_connections", "shutting_down")):
            return
        if not match:
            if 200 <= status < 300:
                raise Mismatch(f"{method} {url_path} answered {status} but no documented path matches")
            return
        tpath, item = match[0]
        op = item.get("get" if method == "HEAD" else method.lower())
        if op is None:
            if status not in (404, 405, 400):
                raise Mismatch(f"{method} {tpath}: {status}, but the document has no {method} there")
            return
        if problem and status == 404 and str(problem.get("detail", "")).startswith("no route for"):
            raise Mismatch(f"{method} {tpath} is documented but the server has no such route")
        if status == 400 and problem and problem.get("code") == "bad_request" and "400" not in op["responses"]:
            return  # malformed HTTP / URL, answered by the engine before any route
        responses = op["responses"]
        resp = responses.get(str(status)) or responses.get(f"{status // 100}XX") or responses.get("default")
        if resp is None:
            raise Mismatch(f"{method} {tpath}: status {status} is not declared (declared: {sorted(responses)})")
        if method == "HEAD" or status in (204, 304) or not body:
            return
        content = resp.get("content")
        if not content:
            raise Mismatch(f"{method} {tpath} {status}: a body where the document declares none")
        mt = ctype.split(";")[0].strip()
        media = content.get(mt)
        if media is None:
            raise Mismatch(f"{method} {tpath} {status}: content type {mt} is not declared ({sorted(content)})")
        schema = media.get("schema")
        if schema is None or not (mt.endswith("json")):
            return
        try:
            value = json.loads(body)
        except ValueError:
            raise Mismatch(f"{method} {tpath} {status}: body is not JSON")
        fields = self._fields_asked(op, url_path) if 200 <= status < 300 else None
        errors = sorted(self._validator(schema, fields).iter_errors(value), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            raise Mismatch(f"{method} {tpath} {status}: body does not match the schema at "
                           f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}\nbody: {body[:400]!r}")
