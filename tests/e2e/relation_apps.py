"""Shared app texts for the relations tests (test_relations*.py).

Flask-Restless's Person/Computer (with a Vendor, for nested embeds) and
Emmett-REST's Task/Tag through a join model, as one app file, plus helpers
to seed them. Both stores (conftest's STORE)."""

RELATIONS_APP = """\
database: sqlite:rel.db
models:
  Person:
    table: person
    fields:
      name: {type: string, required: true}
      age: {type: int}
      computers: {has_many: Computer, via: owner}
  Vendor:
    table: vendor
    fields:
      name: {type: string, required: true}
      computers: {has_many: Computer, via: vendor}
  Computer:
    table: computer
    fields:
      name: {type: string, required: true}
      owner: {type: ref, model: Person, on_delete: restrict}
      vendor: {type: ref, model: Vendor, on_delete: set_null}
  Task:
    table: task
    fields:
      title: {type: string, required: true}
      tags: {has_many: Tag, through: TaskTag}
  Tag:
    table: tag
    fields:
      name: {type: string, required: true}
  TaskTag:
    table: task_tag
    fields:
      task: {type: ref, model: Task, on_delete: cascade, required: true}
      tag: {type: ref, model: Tag, on_delete: cascade, required: true}
modules:
  people: {model: Person, enabled_methods: [index, create, read, update, delete, group]}
  vendors: {model: Vendor}
  computers: {model: Computer, enabled_methods: [index, create, read, update, delete, group]}
  tasks: {model: Task}
  tags: {model: Tag}
  task_tags: {model: TaskTag, url_prefix: /task_tags}
"""


def post(s, path, obj, status=201):
    r = s.request("POST", path, json=obj)
    assert r.status_code == status, r.text
    return r.json()


# The same models with allow-lists naming relations' fields (a second
# module over Computer: the first, `computers`, stays the one relations
# reach Computer through).
RELATIONS_ALLOW_APP = RELATIONS_APP + """\
  lab:
    model: Computer
    url_prefix: /lab
    enabled_methods: [index, group]
    query_allowed_fields: [name, owner.name, owner]
    allowed_sorts: [id, owner.name]
    grouping_allowed_fields: [owner.name]
"""

# Who may reach related rows (auth): people are scoped to listed rows and
# hide salary without hr; computers belong to the user who made them (row
# ownership); vendors need their own permission. Seeded: Lincoln (1),
# Grant (2), Ghost (3, unlisted); alice's computer of Lincoln, bob's of
# Grant, alice's of Ghost; Dell (1).
RELATIONS_AUTH_APP = """\
database: sqlite:relauth.db
auth:
  jwt: {algorithms: [HS256], secret_env: CREST_JWT_SECRET}
models:
  Person:
    table: person
    fields:
      name: {type: string, required: true}
      salary: {type: int, read_permission: hr}
      listed: {type: bool, default: true}
      computers: {has_many: Computer, via: owner}
    seed:
      - {name: Lincoln, salary: 10}
      - {name: Grant, salary: 20}
      - {name: Ghost, salary: 30, listed: false}
  Vendor:
    table: vendor
    fields:
      name: {type: string, required: true}
    seed:
      - {name: Dell}
  Computer:
    table: computer
    fields:
      name: {type: string, required: true}
      created_by: {type: string, rest: read}
      owner: {type: ref, model: Person, on_delete: restrict}
      vendor: {type: ref, model: Vendor, on_delete: set_null}
    seed:
      - {name: alice-pc, created_by: alice, owner_id: 1, vendor_id: 1}
      - {name: bob-pc, created_by: bob, owner_id: 2, vendor_id: 1}
      - {name: ghost-pc, created_by: alice, owner_id: 3}
modules:
  people:
    model: Person
    scope: {listed: true}
    permissions: {index: authenticated, read: authenticated}
  computers:
    model: Computer
    owner: created_by
    enabled_methods: [index, read, group]
    permissions: {index: authenticated, read: authenticated, group: authenticated}
  vendors:
    model: Vendor
    permissions: {index: [vendors.read], read: [vendors.read]}
"""


def seed(s):
    """3 people (Ann with 3 computers, Bob with 1, Cy with none), 2 vendors,
    a computer without owner; 2 tasks with tags."""
    ann, bob, cy = (post(s, "/people", {"name": n}) for n in ("Ann", "Bob", "Cy"))
    dell, hp = (post(s, "/vendors", {"name": n}) for n in ("Dell", "HP"))
    c = [post(s, "/computers", {"name": n, "owner_id": o, "vendor_id": v}) for n, o, v in (
        ("a1", ann["id"], dell["id"]), ("a2", ann["id"], None), ("a3", ann["id"], hp["id"]),
        ("b1", bob["id"], dell["id"]), ("x", None, hp["id"]))]
    t1, t2 = (post(s, "/tasks", {"title": n}) for n in ("t1", "t2"))
    red, blue = (post(s, "/tags", {"name": n}) for n in ("red", "blue"))
    for t, g in ((t1, blue), (t1, red), (t2, blue)):
        post(s, "/task_tags", {"task_id": t["id"], "tag_id": g["id"]})
    return dict(ann=ann, bob=bob, cy=cy, dell=dell, hp=hp, c=c, t1=t1, t2=t2, red=red, blue=blue)


def seeded(s):
    """s with the rows of seed() made, in s.rows."""
    s.rows = seed(s)
    return s


def seeded_module_server(tmp_path_factory, name):
    """Body of a module-scoped fixture: a server of RELATIONS_APP holding seed()'s rows (s.rows)."""
    from rest_apps import module_server
    yield from module_server(tmp_path_factory, RELATIONS_APP, name=name, setup=seeded)
