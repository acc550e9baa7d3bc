"""What bench/fastapi_tasks.py (SQLAlchemy on SQLite) and bench/fastapi_tasks_pg.py
(asyncpg on PostgreSQL) share: the Pydantic models of bodies and answers, the
module's allow-lists (bench/tasks-app.yaml) and the parsing of `where` and
`sort_by` into field names, which each app turns into its own SQL."""
import datetime
import json
from typing import Dict, List, Optional, Union

import pydantic
from fastapi import HTTPException

# ---- schemas (Pydantic 1 on Debian 12; 2 works too)
PYDANTIC2 = pydantic.VERSION.startswith("2")


class ORMModel(pydantic.BaseModel):
    if PYDANTIC2:
        model_config = {"from_attributes": True}
    else:
        class Config:
            orm_mode = True


class TaskOut(ORMModel):
    id: int
    title: str
    is_completed: bool
    spent_time: int
    created_at: datetime.datetime


class TaskIn(pydantic.BaseModel):
    title: str = pydantic.Field(..., min_length=1, max_length=200)
    is_completed: bool = False
    spent_time: int = pydantic.Field(0, ge=0)


def task_in_dict(body: TaskIn):
    return body.model_dump() if PYDANTIC2 else body.dict()


class ListMeta(pydantic.BaseModel):
    object: str = "list"
    total_objects: Optional[int] = None
    has_more: bool


class TaskList(pydantic.BaseModel):
    data: List[TaskOut]
    meta: ListMeta


# ---- the module's allow-lists (bench/tasks-app.yaml)
QUERY_ALLOWED = ("is_completed",)
SORTS_ALLOWED = ("spent_time", "id")
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 20, 50


def bad_request(msg: str):
    raise HTTPException(status_code=400, detail=msg)


def parse_where(where: Optional[str]):
    """[(field, value)] of where={"field": value, ...}: equality only."""
    if where is None:
        return []
    try:
        cond: Dict[str, Union[bool, int, float, str, None]] = json.loads(where)
    except ValueError:
        bad_request("where: not valid JSON")
    if not isinstance(cond, dict):
        bad_request("where: expected an object")
    out = []
    for field, value in cond.items():
        if field not in QUERY_ALLOWED:
            bad_request(f"where: field '{field}' cannot be queried")
        if isinstance(value, (dict, list)):
            bad_request(f"where: {field}: only equality is supported")
        out.append((field, value))
    return out


def parse_sort(sort_by: Optional[str]):
    """[(field, descending)] of sort_by=a,-b, ending with id (a total order, like crest)."""
    keys = []
    for part in (sort_by or "-id").split(","):
        part = part.strip()
        desc = part.startswith("-")
        if part.lstrip("-") not in SORTS_ALLOWED:
            bad_request(f"sort_by: '{part}' is not a sortable field")
        keys.append((part.lstrip("-"), desc))
    if all(field != "id" for field, _ in keys):
        keys.append(("id", keys[-1][1]))
    return keys
