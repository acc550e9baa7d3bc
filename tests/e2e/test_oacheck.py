"""The response checker of the harness (oacheck.py) catches what it should:
an undocumented route, an undeclared status, a body off its schema, a wrong
content type, a documented route the server lacks."""
import json

import pytest

from oacheck import Checker, Mismatch

DOC = {
    "openapi": "3.1.0",
    "paths": {
        "/a/{id}": {"get": {"responses": {
            "200": {"description": "x", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}},
            "404": {"description": "y", "content": {"application/problem+json": {"schema": {"type": "object"}}}}}}},
        "/a/special": {"get": {"responses": {"204": {"description": "none"}, "202": {"description": "no body"}}}},
    },
    "components": {"schemas": {"A": {"type": "object", "properties": {"x": {"type": ["integer", "null"]}},
                                     "required": ["x"]}}},
}


def c():
    return Checker("http://unused", doc=json.loads(json.dumps(DOC)))


def test_good_responses_pass():
    c().check("GET", "/a/1", 200, "application/json", b'{"x": 3}')
    c().check("GET", "/a/1", 200, "application/json", b'{"x": null}')
    c().check("HEAD", "/a/1", 200, "application/json", b"")
    c().check("GET", "/a/special", 204, "", b"")  # the literal path wins over {id}
    c().check("GET", "/nope", 404, "application/problem+json", b'{"status":404,"code":"not_found"}')
    c().check("GET", "/a/1", 413, "application/problem+json", b'{"status":413,"code":"payload_too_large"}')


@pytest.mark.parametrize("args", [
    ("GET", "/a/1", 200, "application/json", b'{"x": "three"}'),           # off the schema
    ("GET", "/a/1", 200, "application/json", b'{}'),                       # required member missing
    ("GET", "/a/1", 418, "application/problem+json", b'{"code":"teapot"}'),  # undeclared status
    ("GET", "/a/1", 200, "text/plain", b"x"),                              # undeclared content type
    ("GET", "/b", 200, "application/json", b"{}"),                        # an undocumented route
    ("GET", "/a/special", 202, "application/json", b"{}"),               # a body where none is declared
    ("GET", "/a/1", 404, "application/problem+json",
     b'{"status":404,"code":"not_found","detail":"no route for GET /a/1"}'),  # documented, unknown to the server
])
def test_mismatches_are_caught(args):
    with pytest.raises(Mismatch):
        c().check(*args)


# A row schema with two required members, on an operation taking a sparse fieldset (fields=) and on one whose
# `fields` is required (a stats route's: another meaning).
SPARSE_DOC = {
    "openapi": "3.1.0",
    "paths": {
        "/r": {"get": {"parameters": [{"name": "fields", "in": "query", "schema": {"type": "string"}}],
                       "responses": {"200": {"description": "x", "content": {"application/json": {
                           "schema": {"$ref": "#/components/schemas/R"}}}}}}},
        "/s": {"get": {"parameters": [{"name": "fields", "in": "query", "required": True,
                                       "schema": {"type": "string"}}],
                       "responses": {"200": {"description": "x", "content": {"application/json": {
                           "schema": {"$ref": "#/components/schemas/R"}}}}}}},
    },
    "components": {"schemas": {"R": {"type": "object", "properties": {"x": {"type": "integer"},
                                                                      "y": {"type": "string"}},
                                     "required": ["x", "y"]}}},
}


def sparse():
    return Checker("http://unused", doc=json.loads(json.dumps(SPARSE_DOC)))


def test_a_sparse_fieldset_answer_needs_only_the_fields_named():
    sparse().check("GET", "/r?fields=x", 200, "application/json", b'{"x": 1}')
    sparse().check("GET", "/r?fields=y,x", 200, "application/json", b'{"x": 1, "y": "a"}')


@pytest.mark.parametrize("args", [
    ("GET", "/r", 200, "application/json", b'{"x": 1}'),                   # no fields=: every required member
    ("GET", "/r?fields=x,y", 200, "application/json", b'{"x": 1}'),        # y named, so required
    ("GET", "/r?fields=x", 200, "application/json", b'{"x": "one"}'),      # a named member off its schema
    ("GET", "/s?fields=x", 200, "application/json", b'{"x": 1}'),          # fields is not a fieldset there
])
def test_sparse_fieldset_mismatches_are_caught(args):
    with pytest.raises(Mismatch):
        sparse().check(*args)
