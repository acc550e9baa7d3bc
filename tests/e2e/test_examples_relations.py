"""The relations examples (issue 13 item 8), served as they are on both
stores: examples/people (Flask-Restless's Person and Computer) and
examples/tags (Emmett-REST's Task with its tags, embedded two ways). Each
walks the tour the README shows, in order on a fresh database: every `$ curl`
line must print exactly the output below it, and each answer must be what
the example's own OpenAPI document declares (oacheck.py)."""
import os
import re
import subprocess
from urllib.parse import urlsplit

from conftest import CREST_BIN, STORE, db_rows, run_cli
from oacheck import Checker
from readme import README_URL, curl_commands, normalize_cursors

EXAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
PEOPLE_APP = os.path.join(EXAMPLES, "people", "app.yaml")
TAGS_APP = os.path.join(EXAMPLES, "tags", "app.yaml")

# tag_names, the tags example's typed computed field: the file has SQLite's
# aggregate; on PostgreSQL it is json_agg (the line its header comment gives).
TAG_NAMES_SQLITE = ('sql: "(SELECT json_group_array(name) FROM (SELECT name FROM task_tags '
                    'WHERE task_tags.task_id = tasks.id ORDER BY id) AS t)"')
TAG_NAMES_PG = ('sql: "(SELECT coalesce(json_agg(name ORDER BY id), \'[]\') FROM task_tags '
                'WHERE task_tags.task_id = tasks.id)"')


def people_app():
    return open(PEOPLE_APP).read()


def tags_app():
    """The tags example's text; on PostgreSQL with tag_names in that store's SQL."""
    text = open(TAGS_APP).read()
    assert TAG_NAMES_SQLITE in text and TAG_NAMES_PG.split(": ", 1)[1] in text  # the header gives the PG form
    return text.replace(TAG_NAMES_SQLITE, TAG_NAMES_PG) if STORE == "postgres" else text


PEOPLE_TOUR = [
    r"""
$ curl -s 'localhost:8080/people?include=computers'
{"data":[{"id":1,"name":"Lincoln","age":56,"birth_date":"1809-02-12","computers":[{"id":1,"name":"lincoln-desk","vendor":"Dell","purchase_time":"2026-01-15T09:30:00.000Z","owner_id":1},{"id":2,"name":"lincoln-laptop","vendor":"Apple","purchase_time":"2026-03-02T14:00:00.000Z","owner_id":1}],"computers_has_more":false},{"id":2,"name":"Grant","age":63,"birth_date":"1822-04-27","computers":[{"id":3,"name":"grant-laptop","vendor":"Lenovo","purchase_time":"2026-02-20T11:15:00.000Z","owner_id":2}],"computers_has_more":false},{"id":3,"name":"Hayes","age":70,"birth_date":"1822-10-04","computers":[],"computers_has_more":false}],"meta":{"object":"list","total_objects":3,"has_more":false,"next_cursor":null}}

$ curl -s 'localhost:8080/computers/3?include=owner'
{"id":3,"name":"grant-laptop","vendor":"Lenovo","purchase_time":"2026-02-20T11:15:00.000Z","owner_id":2,"owner":{"id":2,"name":"Grant","age":63,"birth_date":"1822-04-27"}}
""",
    r"""
$ curl -sG localhost:8080/people -d include=computers -d fields=name -d 'fields[computers]=name,vendor'
{"data":[{"name":"Lincoln","computers":[{"name":"lincoln-desk","vendor":"Dell"},{"name":"lincoln-laptop","vendor":"Apple"}],"computers_has_more":false},{"name":"Grant","computers":[{"name":"grant-laptop","vendor":"Lenovo"}],"computers_has_more":false},{"name":"Hayes","computers":[],"computers_has_more":false}],"meta":{"object":"list","total_objects":3,"has_more":false,"next_cursor":null}}

$ curl -sG localhost:8080/computers/3 -d include=owner.computers -d fields=name -d 'fields[owner]=name' -d 'fields[owner.computers]=name'
{"name":"grant-laptop","owner":{"name":"Grant","computers":[{"name":"grant-laptop"}],"computers_has_more":false}}
""",
    r"""
$ curl -s 'localhost:8080/computers?limit=2&offset=1&fields=id,name'
{"data":[{"id":2,"name":"lincoln-laptop"},{"id":3,"name":"grant-laptop"}],"meta":{"object":"list","total_objects":4,"has_more":true,"next_cursor":"ASawidq3JnF2FDmBKfG5Tj_EUII8AQEAAAAAAAAAA8Ndn989r7uPElR96zBvxbw"}}
""",
    r"""
$ curl -sG localhost:8080/computers --data-urlencode 'where={"owner.name":"Lincoln"}' -d fields=id,name
{"data":[{"id":1,"name":"lincoln-desk"},{"id":2,"name":"lincoln-laptop"}],"meta":{"object":"list","total_objects":2,"has_more":false,"next_cursor":null}}

$ curl -sG localhost:8080/people --data-urlencode 'where={"computers.vendor":{"$in":["Lenovo","Apple"]}}' -d fields=id,name
{"data":[{"id":1,"name":"Lincoln"},{"id":2,"name":"Grant"}],"meta":{"object":"list","total_objects":2,"has_more":false,"next_cursor":null}}

$ curl -sG localhost:8080/people --data-urlencode 'where={"computers":{"$exists":false}}'
{"data":[{"id":3,"name":"Hayes","age":70,"birth_date":"1822-10-04"}],"meta":{"object":"list","total_objects":1,"has_more":false,"next_cursor":null}}

$ curl -sG localhost:8080/computers --data-urlencode 'where={"owner":{"$exists":true}}' -d sort_by=-owner.name,name -d fields=name,owner_id
{"data":[{"name":"lincoln-desk","owner_id":1},{"name":"lincoln-laptop","owner_id":1},{"name":"grant-laptop","owner_id":2}],"meta":{"object":"list","total_objects":3,"has_more":false,"next_cursor":null}}

$ curl -sG localhost:8080/computers/group/owner.name --data-urlencode 'where={"owner":{"$exists":true}}'
{"data":[{"value":"Grant","count":1},{"value":"Lincoln","count":2}],"meta":{"object":"list","total_objects":2,"has_more":false}}
""",
    r"""
$ curl -s 'localhost:8080/people/1/computers?fields=id,name'
{"data":[{"id":1,"name":"lincoln-desk"},{"id":2,"name":"lincoln-laptop"}],"meta":{"object":"list","total_objects":2,"has_more":false,"next_cursor":null}}

$ curl -s -X POST localhost:8080/people/3/computers -H 'Content-Type: application/json' -d '{"name":"hayes-pc","vendor":"Dell"}'
{"id":5,"name":"hayes-pc","vendor":"Dell","purchase_time":null,"owner_id":3}

$ curl -s -X POST localhost:8080/people/3/computers -H 'Content-Type: application/json' -d '{"name":"hayes-2","owner_id":1}'
{"status":422,"title":"Unprocessable Content","detail":"1 field is invalid","code":"validation_failed","errors":{"owner_id":"is set by the path"}}
""",
    r"""
$ curl -s -X PATCH localhost:8080/computers/4 -H 'Content-Type: application/json' -d '{"owner_id":999}'
{"status":422,"title":"Unprocessable Content","detail":"a value refers to a row that does not exist","code":"missing_reference","errors":{"owner_id":"no Person with id 999"}}

$ curl -s -X DELETE localhost:8080/people/1
{"status":409,"title":"Conflict","detail":"Person 1 is still referenced by Computer.owner","code":"still_referenced"}

$ curl -s localhost:8080/people/9/computers
{"status":404,"title":"Not Found","detail":"no Person with this id","code":"not_found"}

$ curl -s 'localhost:8080/computers?include=vendor'
{"status":400,"title":"Bad Request","detail":"include: 'vendor' is not a relation you may read","code":"invalid_parameter","errors":{"include":"include: 'vendor' is not a relation you may read"}}

$ curl -s 'localhost:8080/computers?limit=2&page=2'
{"status":400,"title":"Bad Request","detail":"page and limit cannot be used together: page with page and page_size, or with limit and offset","code":"invalid_parameter","errors":{"page":"cannot be used with limit","limit":"cannot be used with page"}}

$ curl -s 'localhost:8080/computers?limt=2'
{"status":400,"title":"Bad Request","detail":"query parameter 'limt' is unknown","code":"invalid_parameter","errors":{"limt":"is unknown"}}
""",
]

TAGS_TOUR = [
    r"""
$ curl -s localhost:8080/tasks
{"data":[{"id":1,"title":"Write the README","is_completed":true,"tag_names":["docs"]},{"id":2,"title":"Ship crest","is_completed":false,"tag_names":["release","urgent"]},{"id":3,"title":"Benchmark against nginx","is_completed":false,"tag_names":[]}],"meta":{"object":"list","total_objects":3,"has_more":false,"next_cursor":null}}

$ curl -s 'localhost:8080/tasks/2?include=tags'
{"id":2,"title":"Ship crest","is_completed":false,"tag_names":["release","urgent"],"tags":[{"id":2,"task_id":2,"name":"release"},{"id":3,"task_id":2,"name":"urgent"}],"tags_has_more":false}

$ curl -s 'localhost:8080/tasks?fields=id,title,tag_names'
{"data":[{"id":1,"title":"Write the README","tag_names":["docs"]},{"id":2,"title":"Ship crest","tag_names":["release","urgent"]},{"id":3,"title":"Benchmark against nginx","tag_names":[]}],"meta":{"object":"list","total_objects":3,"has_more":false,"next_cursor":null}}
""",
    r"""
$ curl -sG localhost:8080/tasks --data-urlencode 'where={"tags":{"$exists":false}}' -d fields=id,title
{"data":[{"id":3,"title":"Benchmark against nginx"}],"meta":{"object":"list","total_objects":1,"has_more":false,"next_cursor":null}}

$ curl -s -X POST localhost:8080/tasks/3/tags -H 'Content-Type: application/json' -d '[{"name":"perf"},{"name":"urgent"}]'
{"data":[{"id":4,"task_id":3,"name":"perf"},{"id":5,"task_id":3,"name":"urgent"}]}

$ curl -sG localhost:8080/tasks --data-urlencode 'where={"tags.name":"urgent"}' -d fields=id,title,tag_names
{"data":[{"id":2,"title":"Ship crest","tag_names":["release","urgent"]},{"id":3,"title":"Benchmark against nginx","tag_names":["perf","urgent"]}],"meta":{"object":"list","total_objects":2,"has_more":false,"next_cursor":null}}

$ curl -s localhost:8080/tags/group/name
{"data":[{"value":"docs","count":1},{"value":"perf","count":1},{"value":"release","count":1},{"value":"urgent","count":2}],"meta":{"object":"list","total_objects":4,"has_more":false}}
""",
    r"""
$ curl -s -o /dev/null -w '%{http_code}\n' -X DELETE localhost:8080/tasks/2
204

$ curl -s localhost:8080/tags
{"data":[{"id":1,"task_id":1,"name":"docs"},{"id":4,"task_id":3,"name":"perf"},{"id":5,"task_id":3,"name":"urgent"}],"meta":{"object":"list","total_objects":3,"has_more":false,"next_cursor":null}}

$ curl -s -X POST localhost:8080/tags -H 'Content-Type: application/json' -d '{"name":"x"}'
{"status":422,"title":"Unprocessable Content","detail":"1 field is invalid","code":"validation_failed","errors":{"task_id":"is required"}}

$ curl -s -X POST localhost:8080/tags -H 'Content-Type: application/json' -d '{"task_id":2,"name":"x"}'
{"status":422,"title":"Unprocessable Content","detail":"a value refers to a row that does not exist","code":"missing_reference","errors":{"task_id":"no Task with id 2"}}
""",
]


def tour_commands(tour):
    """(command, expected output) for each `$ curl` line of a tour's console
    blocks, as readme.curl_commands reads them from the README."""
    cmds = curl_commands("".join(f"```console\n{block.strip()}\n```\n" for block in tour))
    assert len(cmds) == sum(line.startswith("$ ") for block in tour for line in block.splitlines())
    return cmds


def walk(s, tour):
    """Runs the tour's `$ curl` lines in order against s; each must print
    exactly what the tour shows, and each answer (but those whose output is
    only a status, -w) must match the OpenAPI document of s."""
    cmds = tour_commands(tour)
    checker = Checker(s.url)
    host = f"127.0.0.1:{s.port}"
    for cmd, want in cmds:
        real = cmd.replace(README_URL, host)
        meta = " -w '%{stderr}%{http_code} %{content_type} %{url_effective}'" if " -w " not in real else ""
        p = subprocess.run(["bash", "-c", real + meta], capture_output=True, timeout=30)
        got = p.stdout.decode()
        assert normalize_cursors(got.strip()) == normalize_cursors(want.strip()), \
            f"$ {cmd}\n--- the tour\n{want}\n--- the server\n{got}"
        if meta:
            status, ctype, url = p.stderr.decode().split(" ")
            method = re.search(r" -X (\w+)", cmd)
            u = urlsplit(url)
            checker.check(method.group(1) if method else "GET", u.path + ("?" + u.query if u.query else ""),
                          int(status), ctype, p.stdout)


def test_the_people_example_walks_its_tour(crest):
    walk(crest(people_app()), PEOPLE_TOUR)


def test_the_tags_example_walks_its_tour(crest):
    walk(crest(tags_app()), TAGS_TOUR)


def test_the_examples_pass_crest_check(tmp_path):
    for app in (PEOPLE_APP, TAGS_APP):
        r = run_cli([CREST_BIN, "check", app], cwd=str(tmp_path))
        assert (r.returncode, r.out.strip(), r.err) == (0, f"{app}: ok", ""), app


def test_the_people_example_serves_on_the_database_crest_database_names(crest):
    s = crest(people_app(), env={"CREST_DATABASE": "sqlite:elsewhere.db"})
    assert [p["name"] for p in s.get("/people").json()["data"]] == ["Lincoln", "Grant", "Hayes"]
    assert db_rows(s, "elsewhere.db", "SELECT count(*) FROM computer WHERE owner_id IS NOT NULL") == [(3,)]
    if STORE == "sqlite":
        assert not (s.dir / "people.db").exists()


def test_the_tags_example_as_it_is_stops_on_postgres_naming_its_aggregate_and_line(store_dbs, tmp_path):
    text = open(TAGS_APP).read()
    p = tmp_path / "app.yaml"
    p.write_text(store_dbs.app_text(text))
    r = run_cli([CREST_BIN, "serve", str(p), "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(tmp_path),
                timeout=30)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if l.lstrip().startswith("sql:") and "json_group" in l)
    assert r.returncode == 1 and '"listening"' not in r.err, r.err
    assert f"{p}:{line}: module tasks: computed field tag_names does not work: function " \
           "json_group_array(character varying) does not exist" in r.err, r.err


def test_the_examples_openapi_documents_their_relations(crest):
    doc = crest(people_app()).get("/openapi.json").json()
    params = {p["name"]: p for p in doc["paths"]["/computers"]["get"]["parameters"]}
    assert params["include"]["schema"]["items"]["enum"] == ["owner", "owner.computers"]
    params = {p["name"]: p for p in doc["paths"]["/people/{id}"]["get"]["parameters"]}
    assert params["include"]["schema"]["items"]["enum"] == ["computers"]
    assert set(doc["paths"]["/people/{id}/computers"]) == {"get", "post"}
    person = doc["components"]["schemas"]["Person"]["properties"]
    assert person["computers"]["items"] == {"$ref": "#/components/schemas/Computer"}
    doc = crest(tags_app()).get("/openapi.json").json()
    assert set(doc["paths"]["/tasks/{id}/tags"]) == {"get", "post"}
    task = doc["components"]["schemas"]["Task"]["properties"]
    assert task["tags"]["maxItems"] == 10 and "tag_names" in task
