// A small typed client of the People API (examples/people/app.yaml, the
// relations example), written against the types openapi-typescript generates
// from crest's OpenAPI document. tests/openapi/typescript.sh copies it beside
// the generated ./people-api.ts and compiles it with `tsc --noEmit --strict`:
// it compiles only when the document types the relations the way a client
// uses them (include as a list of the allowed paths, embedded rows typed as
// their model, a nested route's list and create), and the @ts-expect-error
// lines prove those types are precise rather than `any`.
import type { components, paths } from "./people-api";

/** The JSON body of a response or request body object. */
type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;

type Person = components["schemas"]["Person"];
type Computer = components["schemas"]["Computer"];

type PeopleQuery = NonNullable<paths["/people"]["get"]["parameters"]["query"]>;
type ComputersQuery = NonNullable<paths["/computers"]["get"]["parameters"]["query"]>;
type PeopleList = Json<paths["/people"]["get"]["responses"][200]>;
type ComputerRead = Json<paths["/computers/{id}"]["get"]["responses"][200]>;
type NestedPath = paths["/people/{id}/computers"]["get"]["parameters"]["path"];
type NestedList = Json<paths["/people/{id}/computers"]["get"]["responses"][200]>;
type NestedCreate = Json<NonNullable<paths["/people/{id}/computers"]["post"]["requestBody"]>>;

/** GET /people with each person's computers embedded, names only. */
export function withComputers(): PeopleQuery {
  return { include: ["computers"], fields: "name" };
}

/** GET /computers with the owner and the owner's computers, rows 2 and 3. */
export function withOwners(): ComputersQuery {
  return { include: ["owner", "owner.computers"], limit: 2, offset: 1 };
}

/** An embedded has_many: each person's computers, typed as Computer rows. */
export function vendorsByPerson(body: PeopleList): Record<string, (string | null)[]> {
  const out: Record<string, (string | null)[]> = {};
  for (const p of body.data) {
    const computers: Computer[] = p.computers ?? [];
    out[p.name] = computers.map((c) => c.vendor ?? null);
  }
  return out;
}

/** An embedded belongs_to: the owner row, or null for a computer without one. */
export function ownerName(c: ComputerRead): string | null {
  const owner: Person | null | undefined = c.owner;
  return owner ? owner.name : null;
}

/** The nested route takes a person's id and lists Computer rows. */
export function nestedPath(p: Person): NestedPath {
  return { id: p.id };
}

export function nestedNames(body: NestedList): string[] {
  return body.data.map((c) => c.name);
}

/** The body of POST /people/{id}/computers: the path gives the owner. */
export function newComputer(name: string): NestedCreate {
  return { name, vendor: "Dell" };
}

// ---- the types are precise: each line below must be a type error --------

// @ts-expect-error include takes only the module's allowed paths
export const badInclude: ComputersQuery = { include: ["vendor"] };
// @ts-expect-error include is a list of paths, not one string
export const includeString: PeopleQuery = { include: "computers" };
// @ts-expect-error an embedded owner is a Person: its name is a string
export const badOwner = (c: ComputerRead): number | undefined => c.owner?.name;
// @ts-expect-error <relation>_has_more is a boolean
export const badMore = (p: Person): number | undefined => p.computers_has_more;
// @ts-expect-error embedded computers are Computer rows, not ids
export const idsOnly: Person = { id: 1, name: "x", computers: [1, 2] };
