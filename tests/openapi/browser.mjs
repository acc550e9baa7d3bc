// The /docs page works in a real browser, with no internet: starts
// `crest serve examples/tasks/app.yaml` on a free port in a temporary folder,
// drives Debian's Chromium (headless) with playwright-core, opens /docs,
// checks that every tag of the Tasks API is shown, expands GET /tasks, clicks
// "Try it out" and "Execute", and waits for a 200 with rows in the page. Saves
// BUILD_DIR/docs-screenshot.png, then stops the server by its PID.
//
// Usage: node tests/openapi/browser.mjs BUILD_DIR SOURCE_DIR
// (tests/openapi/browser.sh runs it; playwright-core comes from
// BUILD_DIR/node/node_modules, installed by scripts/npm.sh — nothing is
// installed here). Env: CREST_BIN (default BUILD_DIR/crest), CREST_CHROMIUM
// (default /usr/bin/chromium). The server, the browser and the cleanup are in
// browser_lib.mjs (shared with browser_auth.mjs).
import path from "node:path";
import { BrowserTest, log } from "./browser_lib.mjs";

const t = new BrowserTest({ name: "browser.mjs", failureShot: "docs-screenshot-failure.png" });
const app = path.join(t.src, "examples/tasks/app.yaml");
const screenshot = path.join(t.build, "docs-screenshot.png");
const STEP_MS = t.STEP_MS;

async function main() {
  t.requireChromium();
  const address = await t.startServer(["serve", app, "--listen", "127.0.0.1:0"]);
  const base = `http://${address}`;
  log(`crest serve ${app} → ${base} (pid ${t.server.pid})`);

  const docRes = await fetch(`${base}/openapi.json`, { signal: AbortSignal.timeout(10_000) });
  if (docRes.status !== 200) throw new Error(`GET /openapi.json answered ${docRes.status}`);
  const doc = await docRes.json();
  const tags = new Set((doc.tags || []).map((t) => t.name));
  for (const ops of Object.values(doc.paths || {}))
    for (const op of Object.values(ops))
      if (op && typeof op === "object" && Array.isArray(op.tags)) op.tags.forEach((t) => tags.add(t));
  log(`document: OpenAPI ${doc.openapi}, "${doc.info?.title}", tags: ${[...tags].join(", ")}`);
  if (!doc.paths?.["/tasks"]?.get) throw new Error("the document has no GET /tasks");

  const page = await t.openPage(address);

  const res = await page.goto(`${base}/docs`, { waitUntil: "load", timeout: STEP_MS });
  if (!res || res.status() !== 200) throw new Error(`GET /docs answered ${res?.status()}`);
  await page.locator(".swagger-ui .info .title").first().waitFor();
  const title = (await page.locator(".swagger-ui .info .title").first().innerText()).trim();
  log(`page: "${await page.title()}", shown title: "${title.split("\n")[0]}"`);
  if (doc.info?.title && !title.includes(doc.info.title))
    throw new Error(`the page shows the title "${title}", the document says "${doc.info.title}"`);

  // Every tag has its section.
  const missing = [];
  for (const tag of tags) {
    const section = page.locator(`.opblock-tag[data-tag="${tag.replace(/"/g, '\\"')}"]`);
    try {
      await section.first().waitFor({ state: "visible", timeout: 5_000 });
    } catch {
      missing.push(tag);
    }
  }
  if (missing.length) throw new Error(`tags not shown on /docs: ${missing.join(", ")}`);
  log(`ok: every tag shown (${[...tags].join(", ")})`);

  // GET /tasks: expand, Try it out, Execute.
  const op = await t.expandOperation(page, "GET", "/tasks");
  log("ok: GET /tasks expanded");
  // (With tryItOutEnabled the page starts in that mode: no button to click.)
  const tryIt = op.getByRole("button", { name: "Try it out" });
  if (await tryIt.count()) await tryIt.first().click();
  await op.getByRole("button", { name: "Execute" }).click();
  log("ok: clicked Try it out, Execute");

  const live = op.locator(".live-responses-table .response").first();
  await live.waitFor({ state: "visible" });
  const status = (await live.locator(".response-col_status").first().innerText()).trim();
  const url = (await op.locator(".request-url pre").first().innerText().catch(() => "")).trim();
  log(`request URL shown: ${url}; status shown: ${status}`);
  if (status !== "200") throw new Error(`Execute answered ${status}, not 200`);

  const { text: bodyText, body } = await t.shownJson(live);
  if (!Array.isArray(body.data) || body.data.length === 0)
    throw new Error(`the response shown has no rows: ${bodyText.slice(0, 300)}`);
  log(`ok: 200 with ${body.data.length} rows shown, first: ${JSON.stringify(body.data[0])}`);

  // From the top of the page down to the end of the live response: the
  // title, the tags and GET /tasks with its answer.
  const bottom = await live.evaluate((el) => el.getBoundingClientRect().bottom + window.scrollY);
  const height = Math.ceil(Math.min(bottom + 24, await page.evaluate(() => document.body.scrollHeight)));
  await page.screenshot({ path: screenshot, fullPage: true, timeout: STEP_MS,
    clip: { x: 0, y: 0, width: 1280, height } });
  log(`screenshot: ${screenshot}`);

  t.checkProblems();
}

await t.run(main);
