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
