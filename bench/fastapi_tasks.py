"""The Tasks API of bench/tasks-app.yaml in FastAPI + SQLAlchemy, for bench/run.sh.

An ordinary FastAPI application, written the way the FastAPI tutorial ("SQL
(Relational) Databases") does it: an SQLAlchemy ORM model, a session per
request through a dependency, synchronous path operations (FastAPI runs them in
its thread pool), Pydantic models for bodies and responses (bench/fastapi_common.py, shared
with bench/fastapi_tasks_pg.py). It serves the same
table as crest (the file crest created, copied) with the same SQLite settings
as crest's `durability: full`: WAL journal, synchronous=FULL, 5 s busy timeout.

    TASKS_DB=/path/tasks.db uvicorn --app-dir bench fastapi_tasks:app \
        --workers 1 --no-access-log --log-level warning

Routes, as crest answers them for the benchmark's requests:
    GET  /tasks/{id}  one task, 404 when absent
    GET  /tasks       where={"field": value} (equality on is_completed),
                      sort_by=a,-b (spent_time, id), page, page_size (default 20,
                      above 50 → 50), count=exact|none;
                      {"data": [...], "meta": {"object": "list", ["total_objects": n,] "has_more": bool}}
    POST /tasks       one task → 201 with Location
"""
import datetime
import os
from typing import Optional

import anyio.to_thread
from fastapi import Depends, FastAPI, HTTPException, Query, Response, status
from sqlalchemy import Boolean, Column, Integer, String, TypeDecorator, create_engine, event, func, select
from sqlalchemy.orm import Session, declarative_base, sessionmaker
from sqlalchemy.pool import QueuePool

from fastapi_common import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, TaskIn, TaskList, TaskOut, parse_sort, parse_where, \
    task_in_dict

DB_PATH = os.environ.get("TASKS_DB", "bench-tasks.db")

# One engine for the process. check_same_thread=False because FastAPI runs the
# synchronous path operations in a thread pool (as in the FastAPI tutorial).
# A pool of kept connections, as SQLAlchemy 2.0 does by default for SQLite files
# (1.4, Debian 12's, would open a connection per request), sized like that
# thread pool (anyio's default: 40 threads): with fewer connections than threads
# (2.0's default 5 + 10 overflow) the app deadlocks under 64 connections, every
# thread waiting for a connection held by a request whose response validation
# waits for a thread, until the 30 s pool timeout.
THREADS = 40
engine = create_engine(f"sqlite:///{DB_PATH}", connect_args={"check_same_thread": False}, poolclass=QueuePool,
                       pool_size=THREADS, max_overflow=0, future=True)


@event.listens_for(engine, "connect")
def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # crest's durability: full
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


SessionLocal = sessionmaker(bind=engine, autoflush=False, future=True)
Base = declarative_base()


class UTCDateTime(TypeDecorator):
    """Datetimes stored as crest stores them: TEXT 'YYYY-MM-DDTHH:MM:SS.sssZ' in UTC."""
    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(datetime.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class Task(Base):
    __tablename__ = "tasks"
    id = Column(Integer, primary_key=True)
    title = Column(String, nullable=False)
    is_completed = Column(Boolean, nullable=False, default=False, index=True)
    spent_time = Column(Integer, nullable=False, default=0, index=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)


# ---- the module's columns by the names of bench/fastapi_common.py's allow-lists
COLUMNS = {"is_completed": Task.is_completed, "spent_time": Task.spent_time, "id": Task.id}

app = FastAPI(title="tasks (FastAPI + SQLAlchemy)")


@app.on_event("startup")
async def _thread_pool():
    # The thread pool the connection pool is sized for (anyio's default, made explicit).
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


def where_clauses(where: Optional[str]):
    return [COLUMNS[f].is_(None) if v is None else COLUMNS[f] == v for f, v in parse_where(where)]


def order_by(sort_by: Optional[str]):
    return [COLUMNS[f].desc() if desc else COLUMNS[f].asc() for f, desc in parse_sort(sort_by)]


@app.get("/tasks", response_model=TaskList, response_model_exclude_none=True)
def list_tasks(where: Optional[str] = None, sort_by: Optional[str] = None, page: int = Query(1, ge=1),
               page_size: int = Query(PAGE_SIZE_DEFAULT, ge=1), count: str = Query("exact", regex="^(exact|none)$"),
               db: Session = Depends(get_db)):
    page_size = min(page_size, PAGE_SIZE_MAX)
    conds = where_clauses(where)
    stmt = select(Task).where(*conds).order_by(*order_by(sort_by))
    if count == "exact":
        total = db.scalar(select(func.count()).select_from(Task).where(*conds))
        rows = db.scalars(stmt.limit(page_size).offset((page - 1) * page_size)).all()
        return {"data": rows, "meta": {"total_objects": total, "has_more": page * page_size < total}}
    rows = db.scalars(stmt.limit(page_size + 1).offset((page - 1) * page_size)).all()
    return {"data": rows[:page_size], "meta": {"has_more": len(rows) > page_size}}


@app.get("/tasks/{task_id}", response_model=TaskOut)
def read_task(task_id: int, db: Session = Depends(get_db)):
    task = db.get(Task, task_id)
    if task is None:
        raise HTTPException(status_code=404, detail="task not found")
    return task


@app.post("/tasks", response_model=TaskOut, status_code=status.HTTP_201_CREATED)
def create_task(body: TaskIn, response: Response, db: Session = Depends(get_db)):
    task = Task(**task_in_dict(body))
    db.add(task)
    db.commit()
    db.refresh(task)
    response.headers["Location"] = f"/tasks/{task.id}"
    return task
