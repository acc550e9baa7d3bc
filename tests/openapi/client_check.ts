// A small typed client of the Tasks API (examples/tasks/app.yaml), written
// against the types openapi-typescript generates from crest's OpenAPI
// document. tests/openapi/typescript.sh copies this file beside the
// generated ./tasks-api.ts and compiles it with `tsc --noEmit --strict`:
// it compiles only when the document describes the API the way a client
// uses it (a create body, a list envelope with meta, a task's id usable as
// the path parameter, an SQL endpoint's typed columns, problem+json
// errors), and the @ts-expect-error lines
// prove the types are precise rather than `any`.
import type { components, paths } from "./tasks-api";

/** The JSON body of a response or request body object. */
type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;

type Task = components["schemas"]["Task"];
type Problem = components["schemas"]["Problem"];

type ListQuery = NonNullable<paths["/tasks"]["get"]["parameters"]["query"]>;
type ListBody = Json<paths["/tasks"]["get"]["responses"][200]>;
type CreateBody = Json<NonNullable<paths["/tasks"]["post"]["requestBody"]>>;
type UpdateBody = Json<NonNullable<paths["/tasks/{id}"]["patch"]["requestBody"]>>;
type ReadPath = paths["/tasks/{id}"]["get"]["parameters"]["path"];
type ReadBody = Json<paths["/tasks/{id}"]["get"]["responses"][200]>;
type StatsBody = Json<paths["/stats/spent"]["get"]["responses"][200]>;

/** The body of POST /tasks for one new task. */
export function newTask(title: string, spentSeconds: number): CreateBody {
  return { title, spent_time: spentSeconds, is_completed: false };
}

/** The body of POST /tasks creating several tasks in one transaction. */
export function newTasks(titles: string[]): CreateBody {
  return titles.map((title) => ({ title }));
}

/** The body of PATCH /tasks/{id}: every field optional. */
export function finish(): UpdateBody {
  return { is_completed: true };
}

/** GET /tasks query: a page of open tasks, longest first. */
export function openTasksQuery(page: number): ListQuery {
  return {
    page,
    page_size: 20,
    sort_by: "-spent_time",
    where: JSON.stringify({ is_completed: false }),
  };
}

/** Reads a list response: the rows' titles and the paging meta. */
export function summarize(body: ListBody): { titles: string[]; total?: number; more: boolean } {
  const rows: Task[] = body.data;
  const titles: string[] = rows.map((t) => t.title);
  return { titles, total: body.meta.total_objects, more: body.meta.has_more };
}

/** A listed task's id is what GET /tasks/{id} takes. */
export function readPath(t: Task): ReadPath {
  return { id: t.id };
}

/** GET /tasks/{id} answers the same shape the list holds. */
export function asTask(body: ReadBody): Task {
  return body;
}

/** GET /stats/spent: its `columns:` make the row typed (numbers, not unknown). */
export function spentHours(body: StatsBody): { total: number; finished: number } {
  const total: number | null = body.total;
  const finished: number | null = body.finished;
  return { total: (total ?? 0) / 3600, finished: (finished ?? 0) / 3600 };
}

export function problemText(p: Problem): string {
  return `${p.status} ${p.title} (${p.code})${p.detail ? ": " + p.detail : ""}`;
}

/** The whole round trip, with fetch (not run by the test: compiled only). */
export async function listOpenTasks(base: string, page: number): Promise<ListBody> {
  const url = new URL("/tasks", base);
  for (const [k, v] of Object.entries(openTasksQuery(page)))
    if (v !== undefined) url.searchParams.set(k, String(v));
  const r = await fetch(url, { headers: { accept: "application/json" } });
  if (r.status !== 200) throw new Error(problemText((await r.json()) as Problem));
  return (await r.json()) as ListBody;
}

// ---- the types are precise: each line below must be a type error --------

// @ts-expect-error title is a string
export const badTitle: CreateBody = { title: 42 };
// @ts-expect-error title is required
export const noTitle: CreateBody = { spent_time: 10 };
// @ts-expect-error created_at is read-only: not part of the create shape
export const readOnly: CreateBody = { title: "x", created_at: "2024-01-01T00:00:00Z" };
// @ts-expect-error unknown fields are rejected (additionalProperties: false)
export const unknownField: CreateBody = { title: "x", colour: "red" };
// @ts-expect-error page is an integer, not a string
export const badPage: ListQuery = { page: "2" };
// @ts-expect-error a list response is an envelope, not an array
export const bareArray: ListBody = [];
// @ts-expect-error a typed column (int) is a number, not a string
export const textTotal = (b: StatsBody): string | null => b.total;
// @ts-expect-error a declared column is always in the row
export const noTotal: StatsBody = { finished: 1 };
// @ts-expect-error no such route
export type NoRoute = paths["/no/such/route"];
