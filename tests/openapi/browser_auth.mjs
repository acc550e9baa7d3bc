// The /docs page lets a user paste a bearer token, in a real browser, with no
// internet: writes an app file whose GET /tasks needs a signed-in user (auth.jwt
// HS256, the secret in CREST_JWT_SECRET — random, made here) into a temporary
// folder, starts `crest serve` on a free port, makes a token with
// `crest token APP --sub alice --ttl 1h`, and in Debian's Chromium (headless,
// playwright-core) opens /docs and
//   1. expands GET /tasks, clicks "Try it out" and "Execute": the page shows
//      401 (and that request carried no Authorization header);
//   2. clicks the page's "Authorize" button, pastes the token into the
//      bearer-token field of the dialog, clicks Authorize, closes the dialog;
//   3. clicks "Execute" again: the page shows 200 with the seeded row, and the
//      request sent carried `Authorization: Bearer <token>`.
// The 401 of step 1 (its response and Chromium's "Failed to load resource"
// console line) is expected and not counted as a problem; anything else is, as
// in browser.mjs. Saves BUILD_DIR/docs-auth-screenshot.png, then stops the
// server by its PID and removes the temporary folder.
//
// Usage: node tests/openapi/browser_auth.mjs BUILD_DIR SOURCE_DIR
// (tests/openapi/browser.sh BUILD SRC browser_auth runs it; see browser_lib.mjs for the env).
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { BrowserTest, log } from "./browser_lib.mjs";

const t = new BrowserTest({
  name: "browser_auth.mjs",
  failureShot: "docs-auth-screenshot-failure.png",
  tmpPrefix: "crest-browser-auth-",
});
const screenshot = path.join(t.build, "docs-auth-screenshot.png");
const appFile = path.join(t.tmp, "app.yaml");
const APP = `\
database: sqlite:auth.db
auth:
  jwt:
    algorithms: [HS256]
    secret_env: CREST_JWT_SECRET
models:
  Task:
    fields:
      title: {type: string, required: true}
    seed:
      - {title: first}
modules:
  tasks:
    model: Task
    permissions:
      index: authenticated
      read: authenticated
`;
// 48 random bytes: a 64-character secret, for this run only.
const env = { ...process.env, CREST_JWT_SECRET: crypto.randomBytes(48).toString("base64url") };

/** Runs `crest ARGS...` (bounded) and returns its stdout; fails on a non-zero exit. */
function crestRun(args) {
  const r = spawnSync(t.crest, args, { cwd: t.tmp, env, encoding: "utf8", timeout: 15_000 });
  if (r.error) throw new Error(`crest ${args[0]}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(`crest ${args[0]} exited (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function main() {
  t.requireChromium();
  fs.writeFileSync(appFile, APP);
  crestRun(["check", appFile]);
  const token = crestRun(["token", appFile, "--sub", "alice", "--ttl", "1h"]).trim();
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new Error(`crest token printed no JWT: ${token.slice(0, 200)}`);
  const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
  log(`token: ${token.length} characters, sub ${claims.sub}, expires in ${claims.exp - Math.floor(Date.now() / 1000)} s`);

  const address = await t.startServer(["serve", appFile, "--listen", "127.0.0.1:0"], env);
  const base = `http://${address}`;
  const tasksUrl = `${base}/tasks`;
  log(`crest serve ${appFile} → ${base} (pid ${t.server.pid})`);

  // Outside the browser first: the document asks for the bearer scheme, and
  // the server answers 401 without a token, 200 with it.
  const docRes = await fetch(`${base}/openapi.json`, { signal: AbortSignal.timeout(10_000) });
  if (docRes.status !== 200) throw new Error(`GET /openapi.json answered ${docRes.status}`);
  const doc = await docRes.json();
  const schemes = doc.components?.securitySchemes || {};
  const bearer = Object.keys(schemes).find((k) => schemes[k].type === "http" && schemes[k].scheme === "bearer");
  if (!bearer) throw new Error(`the document has no http bearer scheme: ${JSON.stringify(schemes)}`);
  const opSecurity = doc.paths?.["/tasks"]?.get?.security;
  if (!JSON.stringify(opSecurity ?? doc.security ?? []).includes(`"${bearer}"`))
    throw new Error(`GET /tasks does not ask for "${bearer}": ${JSON.stringify(opSecurity)}`);
  log(`document: security scheme "${bearer}" ${JSON.stringify(schemes[bearer])}, GET /tasks security ${JSON.stringify(opSecurity)}`);
  const anon = await fetch(tasksUrl, { signal: AbortSignal.timeout(10_000) });
  await anon.arrayBuffer();
  const signed = await fetch(tasksUrl, { headers: { Authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000) });
  await signed.arrayBuffer();
  if (anon.status !== 401 || signed.status !== 200)
    throw new Error(`GET /tasks answered ${anon.status} without the token and ${signed.status} with it (want 401, 200)`);
  log("ok: GET /tasks (fetch) answers 401 without the token, 200 with it");

  // Only the GET /tasks of step 1 may answer 401 (once); Chromium logs that
  // as "Failed to load resource: ... status of 401" on the console.
  let allow401 = true;
  let seen401 = 0;
  const isTasks = (url) => url.split("?")[0] === tasksUrl;
  const expected = (kind, x) => {
    if (!allow401) return false;
    if (kind === "response" && x.status() === 401 && x.request().method() === "GET" && isTasks(x.url())) {
      seen401++;
      return seen401 === 1;
    }
    return kind === "console" && /status of 401\b/.test(x.text()) && isTasks(x.location()?.url || "");
  };
  const page = await t.openPage(address, expected);

  // The Authorization header of every GET /tasks the page sends, in order.
  const sent = [];
  page.on("request", (r) => {
    if (r.method() === "GET" && isTasks(r.url())) sent.push({ url: r.url(), auth: r.headers()["authorization"] });
  });

  const res = await page.goto(`${base}/docs`, { waitUntil: "load", timeout: t.STEP_MS });
  if (!res || res.status() !== 200) throw new Error(`GET /docs answered ${res?.status()}`);
  await page.locator(".swagger-ui .info .title").first().waitFor();
  log(`page: "${await page.title()}"`);

  // 1. GET /tasks without a token: 401.
  const op = await t.expandOperation(page, "GET", "/tasks");
  // The try-out button says "Try it out" (or "Cancel" when the page starts in
  // that mode): wait for it rather than count it, then for Execute.
  const tryOut = op.locator("button.try-out__btn").first();
  await tryOut.waitFor({ state: "visible" });
  if (!(await tryOut.getAttribute("class")).includes("cancel")) await tryOut.click();
  const execute = op.getByRole("button", { name: "Execute" });
  await execute.waitFor({ state: "visible" });
  log("GET /tasks expanded, trying it out: clicking Execute without a token");
  const status = op.locator(".live-responses-table .response .response-col_status").first();

  // (Promise.all: a failed click must not leave the wait rejecting unhandled.)
  const tasksAnswer = (r) => r.request().method() === "GET" && isTasks(r.url());
  const [firstRes] = await Promise.all([page.waitForResponse(tasksAnswer, { timeout: t.STEP_MS }), execute.click()]);
  await status.filter({ hasText: /^\s*401\s*$/ }).waitFor({ state: "visible" });
  log(`ok: step 1: Execute without a token → ${firstRes.status()} from the server, the page shows ` +
    `${(await status.innerText()).trim()}`);
  if (firstRes.status() !== 401) throw new Error(`the first Execute answered ${firstRes.status()}, not 401`);
  if (sent.length !== 1 || sent[0].auth !== undefined)
    throw new Error(`the first Execute sent ${JSON.stringify(sent)} (want one request without Authorization)`);
  allow401 = false;

  // 2. Authorize: paste the token into the dialog.
  log("clicking Authorize, pasting the token");
  const authorizeBtn = page.locator(".scheme-container .auth-wrapper button.authorize").first();
  await authorizeBtn.waitFor({ state: "visible" });
  if (!(await authorizeBtn.getAttribute("class")).includes("unlocked"))
    throw new Error(`the Authorize button is not "unlocked" before the token: ${await authorizeBtn.getAttribute("class")}`);
  await authorizeBtn.click();
  const dialog = page.locator(".dialog-ux .modal-ux").first();
  await dialog.waitFor({ state: "visible" });
  const field = dialog.locator("input#auth-bearer-value");
  await field.waitFor({ state: "visible" });
  await field.fill(token);
  await dialog.locator("button.modal-btn.auth.authorize").click();
  await dialog.locator("button", { hasText: "Logout" }).first().waitFor({ state: "visible" });
  await dialog.locator("h6", { hasText: "Authorized" }).first().waitFor({ state: "visible" });
  log("ok: step 2: Authorize dialog: token pasted, the dialog says \"Authorized\"");
  await dialog.locator("button.btn-done").click();
  await dialog.waitFor({ state: "hidden" });
  const cls = await authorizeBtn.getAttribute("class");
  if (!/\blocked\b/.test(cls)) throw new Error(`the Authorize button is not "locked" after the token: ${cls}`);
  log(`ok: dialog closed, the Authorize button is now "${cls}"`);

  // 3. Execute again: 200 with the seeded row, sent with the token.
  await execute.waitFor({ state: "visible" });
  log("clicking Execute with the token");
  const [secondRes] = await Promise.all([page.waitForResponse(tasksAnswer, { timeout: t.STEP_MS }), execute.click()]);
  await status.filter({ hasText: /^\s*200\s*$/ }).waitFor({ state: "visible" });
  log(`step 3: Execute with the token → ${secondRes.status()} from the server, the page shows ` +
    `${(await status.innerText()).trim()}`);
  if (secondRes.status() !== 200) throw new Error(`the second Execute answered ${secondRes.status()}, not 200`);
  if (sent.length !== 2) throw new Error(`the page sent ${sent.length} GET /tasks, not 2: ${JSON.stringify(sent)}`);
  const header = (await secondRes.request().allHeaders())["authorization"] ?? sent[1].auth;
  if (sent[1].auth !== `Bearer ${token}` || header !== `Bearer ${token}`)
    throw new Error(`the second Execute sent Authorization: ${JSON.stringify(sent[1].auth)} ` +
      `(all headers: ${JSON.stringify(header)}), not "Bearer <the token>"`);
  log("ok: the request carried Authorization: Bearer <the token>");

  const live = op.locator(".live-responses-table .response").first();
  const { text: bodyText, body } = await t.shownJson(live);
  if (!Array.isArray(body.data) || body.data.length !== 1 || body.data[0].title !== "first")
    throw new Error(`the response shown is not the seeded row: ${bodyText.slice(0, 300)}`);
  log(`ok: step 3: 200 with the seeded row shown: ${JSON.stringify(body.data[0])}`);
  const curl = (await op.locator(".curl-command").first().innerText().catch(() => "")).replace(token, "<the token>");
  if (curl) log(`curl shown: ${curl.replace(/\s+/g, " ").trim()}`);

  // From the top of the page down to the end of the live response: the
  // Authorize button (locked) and GET /tasks with its 200.
  const bottom = await live.evaluate((el) => el.getBoundingClientRect().bottom + window.scrollY);
  const height = Math.ceil(Math.min(bottom + 24, await page.evaluate(() => document.body.scrollHeight)));
  await page.screenshot({ path: screenshot, fullPage: true, timeout: t.STEP_MS,
    clip: { x: 0, y: 0, width: 1280, height } });
  log(`screenshot: ${screenshot}`);

  if (seen401 !== 1) throw new Error(`the page saw ${seen401} answers 401 for GET /tasks, not 1`);
  t.checkProblems();
}

await t.run(main);
