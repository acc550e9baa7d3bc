// Shared by the /docs browser tests (browser.mjs, browser_auth.mjs): the
// command line, a temporary folder, `crest serve` on a free port (stopped by
// its PID), Debian's Chromium driven by playwright-core, offline request
// routing, the page's problems (errors, failed requests), an overall time
// limit, and the run itself (cleanup, a screenshot of the page on failure).
//
// Each test: node tests/openapi/TEST.mjs BUILD_DIR SOURCE_DIR; playwright-core
// comes from BUILD_DIR/node/node_modules (installed by scripts/npm.sh —
// nothing is installed here). Env: CREST_BIN (default BUILD_DIR/crest),
// CREST_CHROMIUM (default /usr/bin/chromium).
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const log = (...a) => console.log(...a);

export class BrowserTest {
  /**
   * name: the script, for the usage line; failureShot: the file name (in
   * BUILD_DIR) of the screenshot taken when the test fails.
   */
  constructor({ name, failureShot, stepMs = 20_000, totalMs = 150_000, tmpPrefix = "crest-browser-" }) {
    const [buildArg, srcArg] = process.argv.slice(2);
    if (!buildArg || !srcArg) {
      console.error(`usage: node ${name} BUILD_DIR SOURCE_DIR`);
      process.exit(2);
    }
    this.build = path.resolve(buildArg);
    this.src = path.resolve(srcArg);
    this.crest = process.env.CREST_BIN || path.join(this.build, "crest");
    this.chromiumPath = process.env.CREST_CHROMIUM || "/usr/bin/chromium";
    this.failureShot = path.join(this.build, failureShot);
    this.STEP_MS = stepMs; // any one wait in the page
    this.TOTAL_MS = totalMs; // the whole test

    const require = createRequire(path.join(this.build, "node", "package.json"));
    this.chromium = require("playwright-core").chromium;

    this.server = null;
    this.browser = null;
    this.page = null;
    this.problems = []; // what went wrong in the page, reported at the end
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix));

    // A promise that fails with nobody waiting on it (say a page wait left
    // behind by a failed click) must not end the process before cleanup():
    // it is counted, and the test fails.
    process.on("unhandledRejection", (e) => this.problems.push(`unhandled: ${e?.message ?? e}`));

    this.overall = setTimeout(async () => {
      console.error(`FAIL: the browser test took more than ${this.TOTAL_MS / 1000} s`);
      await Promise.race([this.cleanup(), new Promise((r) => setTimeout(r, 15_000))]);
      process.exit(1);
    }, this.TOTAL_MS);
  }

  async stopServer() {
    const proc = this.server;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once("exit", r));
    process.kill(proc.pid, "SIGTERM");
    const killer = setTimeout(() => { try { process.kill(proc.pid, "SIGKILL"); } catch {} }, 10_000);
    await gone;
    clearTimeout(killer);
  }

  async cleanup() {
    if (this.browser) await this.browser.close().catch(() => {});
    this.browser = null;
    await this.stopServer();
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  /** Fails early when Chromium is not installed. */
  requireChromium() {
    if (!fs.existsSync(this.chromiumPath))
      throw new Error(`${this.chromiumPath} not found: install Debian's chromium (scripts/deps.sh test)`);
  }

  /**
   * Starts `crest ARGS...` in the temporary folder (env: undefined inherits
   * this process's); resolves with "host:port" from its listening event.
   */
  startServer(args, env = undefined) {
    return new Promise((resolve, reject) => {
      const server = spawn(this.crest, args, {
        cwd: this.tmp,
        env,
        stdio: ["ignore", "ignore", "pipe"],
      });
      this.server = server;
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

  /**
   * Launches headless Chromium and opens a page that may only reach
   * `address` (crest): any other host is refused and counted as a problem,
   * as are page errors, console errors and answers >= 400 — except those
   * for which expected(kind, detail) says true (kind "response": detail is
   * the playwright Response; kind "console": the ConsoleMessage).
   */
  async openPage(address, expected = () => false) {
    this.requireChromium();
    this.browser = await this.chromium.launch({
      executablePath: this.chromiumPath,
      headless: true,
      timeout: 30_000,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
    });
    log(`browser: ${this.chromiumPath} ${this.browser.version()}`);
    const context = await this.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    this.page = page;
    page.setDefaultTimeout(this.STEP_MS);

    // The page must work offline: anything but crest itself is refused and counted.
    await page.route("**/*", (route) => {
      const u = new URL(route.request().url());
      if (u.protocol === "data:" || u.host === address) return route.continue();
      this.problems.push(`request to another host: ${route.request().url()}`);
      return route.abort();
    });
    page.on("pageerror", (e) => this.problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" && !expected("console", m)) this.problems.push(`console error: ${m.text()}`);
    });
    page.on("response", (r) => {
      if (r.status() >= 400 && !expected("response", r))
        this.problems.push(`${r.status()} for ${r.request().method()} ${r.url()}`);
    });
    return page;
  }

  /**
   * Expands the operation METHOD PATH on the docs page and waits for its
   * body; returns its locator (the .opblock element).
   */
  async expandOperation(page, method, path) {
    const op = page.locator(`.opblock.opblock-${method.toLowerCase()}`)
      .filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) }).first();
    await op.waitFor({ state: "visible" });
    if (!(await op.locator(".opblock-body").count()))
      await op.locator(".opblock-summary").first().click();
    await op.locator(".opblock-body").first().waitFor({ state: "visible" });
    return op;
  }

  /** The JSON body the page shows in a live response (LIVE: its locator). */
  async shownJson(live) {
    const text = (await live.locator(".response-col_description pre").first().innerText()).trim();
    try {
      return { text, body: JSON.parse(text) };
    } catch (e) {
      throw new Error(`the response body shown is not JSON: ${text.slice(0, 300)}`);
    }
  }

  /** Fails when the page had problems. */
  checkProblems() {
    if (this.problems.length) throw new Error(`the page had problems:\n  ${this.problems.join("\n  ")}`);
  }

  /** Runs main(), then cleans up and exits: 0 when it passed, 1 when not. */
  async run(main) {
    let code = 0;
    try {
      await main();
      log("browser: ok");
    } catch (e) {
      console.error(`FAIL: ${e.message}`);
      if (this.problems.length) console.error(`in the page:\n  ${this.problems.join("\n  ")}`);
      code = 1;
      if (this.page) {
        const shot = this.failureShot;
        if (await this.page.screenshot({ path: shot, fullPage: true, timeout: 10_000 }).then(() => true, () => false))
          console.error(`the page as it was: ${shot}`);
      }
    } finally {
      await this.cleanup();
      clearTimeout(this.overall);
    }
    process.exit(code);
  }
}
