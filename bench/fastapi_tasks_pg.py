"""The Tasks API of bench/tasks-app.yaml in FastAPI + asyncpg on PostgreSQL, for bench/run.sh.

bench/fastapi_tasks.py's routes and JSON (the Pydantic models and the parsing
of bench/fastapi_common.py) over the same PostgreSQL table crest serves in the
benchmark, written the way asyncpg is meant to be used with FastAPI: async
path operations on uvicorn's event loop, one asyncpg pool for the process
(made at startup, min_size = max_size = TASKS_PG_POOL, default 8), statements
asyncpg prepares and caches per connection. A POST is one INSERT ... RETURNING,
its own transaction: committed, and so durable, when the server acknowledges it.

    TASKS_PG=postgresql://user@host:port/db TASKS_PG_POOL=8 uvicorn --app-dir bench \
        fastapi_tasks_pg:app --workers 1 --no-access-log --log-level warning

Routes, parameters and answers: bench/fastapi_tasks.py's.
"""
import datetime
import os
from typing import Optional

import asyncpg
from fastapi import FastAPI, HTTPException, Query, Response, status

from fastapi_common import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, TaskIn, TaskList, TaskOut, parse_sort, parse_where, \
    task_in_dict

DSN = os.environ.get("TASKS_PG", "postgresql:///tasks")
POOL_SIZE = int(os.environ.get("TASKS_PG_POOL", "8"))
COLUMNS = "id, title, is_completed, spent_time, created_at"

app = FastAPI(title="tasks (FastAPI + asyncpg)")
pool: Optional[asyncpg.Pool] = None


@app.on_event("startup")
async def _open_pool():
    global pool
    pool = await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE)


@app.on_event("shutdown")
async def _close_pool():
    await pool.close()


def where_sql(where: Optional[str], args: list):
    """The WHERE clause of where= (field names from the allow-list only), its values appended to args."""
    parts = []
    for field, value in parse_where(where):
        if value is None:
            parts.append(f"{field} IS NULL")
        else:
            args.append(value)
            parts.append(f"{field} = ${len(args)}")
    return " WHERE " + " AND ".join(parts) if parts else ""


@app.get("/tasks", response_model=TaskList, response_model_exclude_none=True)
async def list_tasks(where: Optional[str] = None, sort_by: Optional[str] = None, page: int = Query(1, ge=1),
                     page_size: int = Query(PAGE_SIZE_DEFAULT, ge=1),
                     count: str = Query("exact", regex="^(exact|none)$")):
    page_size = min(page_size, PAGE_SIZE_MAX)
    args: list = []
    cond = where_sql(where, args)
    order = ", ".join(f"{f} DESC" if desc else f"{f} ASC" for f, desc in parse_sort(sort_by))
    page_sql = f"SELECT {COLUMNS} FROM tasks{cond} ORDER BY {order} LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
    offset = (page - 1) * page_size
    async with pool.acquire() as c:
        if count == "exact":
            async with c.transaction(readonly=True):  # the count and the page see one snapshot
                total = await c.fetchval(f"SELECT count(*) FROM tasks{cond}", *args)
                rows = await c.fetch(page_sql, *args, page_size, offset)
            return {"data": [dict(r) for r in rows],
                    "meta": {"total_objects": total, "has_more": page * page_size < total}}
        rows = await c.fetch(page_sql, *args, page_size + 1, offset)
    return {"data": [dict(r) for r in rows[:page_size]], "meta": {"has_more": len(rows) > page_size}}


@app.get("/tasks/{task_id}", response_model=TaskOut)
async def read_task(task_id: int):
    row = await pool.fetchrow(f"SELECT {COLUMNS} FROM tasks WHERE id = $1", task_id)
    if row is None:
        raise HTTPException(status_code=404, detail="task not found")
    return dict(row)


@app.post("/tasks", response_model=TaskOut, status_code=status.HTTP_201_CREATED)
async def create_task(body: TaskIn, response: Response):
    t = task_in_dict(body)
    row = await pool.fetchrow(f"INSERT INTO tasks (title, is_completed, spent_time, created_at) "
                              f"VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}",
                              t["title"], t["is_completed"], t["spent_time"], datetime.datetime.now(datetime.timezone.utc))
    response.headers["Location"] = f"/tasks/{row['id']}"
    return dict(row)
