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
// (default /usr/bin/chromium).
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [buildArg, srcArg] = process.argv.slice(2);
if (!buildArg || !srcArg) {
  console.error("usage: node browser.mjs BUILD_DIR SOURCE_DIR");
  process.exit(2);
}
const build = path.resolve(buildArg);
const src = path.resolve(srcArg);
const crest = process.env.CREST_BIN || path.join(build, "crest");
const chromiumPath = process.env.CREST_CHROMIUM || "/usr/bin/chromium";
const app = path.join(src, "examples/tasks/app.yaml");
const screenshot = path.join(build, "docs-screenshot.png");

const STEP_MS = 20_000; // any one wait in the page
const TOTAL_MS = 150_000; // the whole test

const require = createRequire(path.join(build, "node", "package.json"));
const { chromium } = require("playwright-core");

let server = null;
let browser = null;
let page = null;
const problems = []; // what went wrong in the page, reported at the end
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "crest-browser-"));
const log = (...a) => console.log(...a);

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const proc = server;
  const gone = new Promise((r) => proc.once("exit", r));
  process.kill(proc.pid, "SIGTERM");
  const killer = setTimeout(() => { try { process.kill(proc.pid, "SIGKILL"); } catch {} }, 10_000);
  await gone;
  clearTimeout(killer);
}

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  browser = null;
  await stopServer();
  fs.rmSync(tmp, { recursive: true, force: true });
}

const overall = setTimeout(async () => {
  console.error(`FAIL: the browser test took more than ${TOTAL_MS / 1000} s`);
  await Promise.race([cleanup(), new Promise((r) => setTimeout(r, 15_000))]);
  process.exit(1);
}, TOTAL_MS);

/** Starts crest; resolves with "host:port" from its listening event. */
function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(crest, ["serve", app, "--listen", "127.0.0.1:0"], {
      cwd: tmp,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    const timer = setTimeout(
      () => reject(new Error(`crest printed no listening event within 15 s:\n${stderr}`)), 15_000);
    server.on("error", (e) => { clearTimeout(timer); reject(e); });
    server.on("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`crest exited (${code ?? sig}) before listening:\n${stderr}`));
    });
    server.stderr.setEncoding("utf8");
    server.stderr.on("data", (chunk) => {
      if (stderr.length < 1 << 16) stderr += chunk;
      for (const line of stderr.split("\n")) {
        if (!line.includes('"listening"')) continue;
        try {
          const ev = JSON.parse(line);
          if (ev.event === "listening" && ev.address) {
            clearTimeout(timer);
            resolve(ev.address);
          }
        } catch {}
      }
    });
  });
}

async function main() {
  if (!fs.existsSync(chromiumPath))
    throw new Error(`${chromiumPath} not found: install Debian's chromium (scripts/deps.sh test)`);
  const address = await startServer();
  const base = `http://${address}`;
  log(`crest serve ${app} → ${base} (pid ${server.pid})`);

  const docRes = await fetch(`${base}/openapi.json`, { signal: AbortSignal.timeout(10_000) });
  if (docRes.status !== 200) throw new Error(`GET /openapi.json answered ${docRes.status}`);
  const doc = await docRes.json();
  const tags = new Set((doc.tags || []).map((t) => t.name));
  for (const ops of Object.values(doc.paths || {}))
    for (const op of Object.values(ops))
      if (op && typeof op === "object" && Array.isArray(op.tags)) op.tags.forEach((t) => tags.add(t));
  log(`document: OpenAPI ${doc.openapi}, "${doc.info?.title}", tags: ${[...tags].join(", ")}`);
  if (!doc.paths?.["/tasks"]?.get) throw new Error("the document has no GET /tasks");

  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    timeout: 30_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
  log(`browser: ${chromiumPath} ${browser.version()}`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);

  // The page must work offline: anything but crest itself is refused and counted.
  await page.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (u.protocol === "data:" || u.host === address) return route.continue();
    problems.push(`request to another host: ${route.request().url()}`);
    return route.abort();
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} for ${r.request().method()} ${r.url()}`);
  });

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
  const op = page.locator(".opblock.opblock-get")
    .filter({ has: page.locator('.opblock-summary-path[data-path="/tasks"]') }).first();
  await op.waitFor({ state: "visible" });
  if (!(await op.locator(".opblock-body").count()))
    await op.locator(".opblock-summary").first().click();
  await op.locator(".opblock-body").first().waitFor({ state: "visible" });
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

  const bodyText = (await live.locator(".response-col_description pre").first().innerText()).trim();
  let body;
  try {
    body = JSON.parse(bodyText);
  } catch (e) {
    throw new Error(`the response body shown is not JSON: ${bodyText.slice(0, 300)}`);
  }
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

  if (problems.length) throw new Error(`the page had problems:\n  ${problems.join("\n  ")}`);
}

let code = 0;
try {
  await main();
  log("browser: ok");
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  if (problems.length) console.error(`in the page:\n  ${problems.join("\n  ")}`);
  code = 1;
  if (page) {
    const shot = path.join(build, "docs-screenshot-failure.png");
    if (await page.screenshot({ path: shot, fullPage: true, timeout: 10_000 }).then(() => true, () => false))
      console.error(`the page as it was: ${shot}`);
  }
} finally {
  await cleanup();
  clearTimeout(overall);
}
process.exit(code);
