// Shared by the foreign-app tests (mdn.test.mjs, late-track.test.mjs, seed.test.mjs): a server
// of the test's own serving the pages of tests/browser/apps, those pages in headless Chromium,
// and gst-launch-1.0 pipelines with the webrtccall element. Run inside run.sh's namespace.
import {spawn} from "node:child_process";
import {createInterface} from "node:readline";
import {fileURLToPath} from "node:url";

import {pipelines, startPipeline as startGstPipeline, waitUntil} from "./pipeline.mjs";
import * as web from "./web-client.mjs";

export {pipelines, waitUntil};

export const STEP_TIMEOUT_MS = web.STEP_TIMEOUT_MS;
export const APPS_DIR = fileURLToPath(new URL("./apps/", import.meta.url));

const started = Date.now();
export const log = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);

// Everything a test starts, stopped whatever ends it.
const children = [];
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));

// webrtc-call-server (WCC_SERVER_BIN) on 127.0.0.1, any free port, serving the app pages.
// Resolves to {url (http), ws, stderr lines, stop()}.
export function startServer(extraArgs = []) {
  const bin = process.env.WCC_SERVER_BIN;
  if (!bin) throw new Error("WCC_SERVER_BIN is not set (run the test through run.sh)");
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ["--address", "127.0.0.1", "--port", "0", "--web-root", APPS_DIR,
                              ...extraArgs], {stdio: ["ignore", "pipe", "pipe"]});
    children.push(child);
    const stderr = [];
    createInterface({input: child.stderr}).on("line", (line) => {
      stderr.push(line);
      if (stderr.length > 300) stderr.shift();
    });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/Listening on (http:\/\/127\.0\.0\.1:(\d+)\/)/);
      if (m) {
        resolve({
          url: m[1], ws: `ws://127.0.0.1:${m[2]}/ws`, stderr, process: child,
          async metrics() {
            return (await fetch(new URL("metrics", m[1]))).text();
          },
          stop() {
            child.kill("SIGTERM");
          },
        });
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited (${code}) before listening: ${out}`)));
  });
}

// The value of a Prometheus line `name` (with its labels) in `text`, 0 when absent.
export function metric(text, name) {
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

// ---- pages ----

let browser = null;
export const pages = {};  // name -> {page, console}

export async function openApp(server, app, query) {
  browser ??= await web.launchChromium();
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const name = query.name;
  const consoleLines = [];
  page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => consoleLines.push(`UNCAUGHT: ${err.message}`));
  pages[name] = {page, consoleLines, app};
  await page.goto(`${server.url}${app}.html?${new URLSearchParams(query)}`);
  await waitUntil(`${name} registers`, () => page.evaluate(() => window.app?.state === "idle" ||
                                                            window.app?.state === "calling"));
  return page;
}

export const appState = (page, expr) => page.evaluate(expr);

// Our web client (examples/web, served by run.sh's server at `webUrl`) on `server`'s signaling,
// logged in as `name`.
export async function openWebClient(webUrl, server, name) {
  browser ??= await web.launchChromium();
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const consoleLines = [];
  page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => consoleLines.push(`UNCAUGHT: ${err.message}`));
  pages[name] = {page, consoleLines, app: "web client"};
  await page.goto(`${webUrl}?server=${encodeURIComponent(server.ws)}`);
  await web.login(page, name);
  return page;
}

// Frames the web client's remote video has decoded.
export const webClientFrames = (page) => page.$eval('[data-testid="remote-video"]',
    (v) => v.getVideoPlaybackQuality().totalVideoFrames);

// The page presents the remote video: `more` frames after the ones so far (a moving test
// pattern: each is a new frame). Returns the count.
export async function expectFrames(name, more, what = "") {
  const {page} = pages[name];
  const before = await page.evaluate(() => window.probe.frames);
  await waitUntil(`${name} presents ${more} more remote video frames ${what}(${before} so far)`,
                  () => page.evaluate((n) => window.probe.frames >= n, before + more));
  return page.evaluate(() => window.probe.frames);
}

export async function closeBrowser() {
  await browser?.close().catch(() => {});
}

// ---- pipelines ----

// gst-launch-1.0 -m -v with webrtccall "c" (pipeline.mjs): a 320x240 test pattern and a tone
// in; the first call's received video and audio to the fakesinks vsink and asink (counted per
// buffer from -v's output); call-timeout=6. WCC_PIPELINE_LOG_DIR=DIR keeps each pipeline's
// whole output there (DIR/LABEL.log).
export function startPipeline(label, ws, properties) {
  return startGstPipeline(label, ws, ["call-timeout=6", ...properties], {log});
}

export async function report() {
  for (const [name, {page, consoleLines, app}] of Object.entries(pages)) {
    console.error(`---- page ${name} (${app}) ----`);
    if (app === "web client") {
      console.error("console:\n  " + consoleLines.join("\n  "));
      continue;
    }
    try {
      const state = await page.evaluate(async () => {
        const {lines, ...rest} = window.probe.dump();
        const app = {...window.app};
        const stats = await window.app.stats().catch((err) => err.message);
        return {app, probe: rest, lines, stats};
      });
      console.error(JSON.stringify({app: state.app, stats: state.stats, probe: state.probe}, null, 0));
      console.error("page log:\n  " + state.lines.join("\n  "));
    } catch (err) {
      console.error(`(cannot read the page: ${err.message})`);
      console.error("console:\n  " + consoleLines.join("\n  "));
    }
  }
  for (const p of pipelines) {
    p.report();
    console.error("messages:\n  " + p.messages.map((m) => `${m.name} ${JSON.stringify(m.fields)}`).join("\n  "));
  }
}

// Runs the steps under a watchdog; reports and exits 1 on the first failure. WCC_TEST_STEPS=1,3
// runs only those steps (numbered from 1), to look at one.
export async function run(testName, totalMs, steps) {
  const watchdog = setTimeout(async () => {
    console.error(`FAIL: ${testName} did not finish within ${totalMs / 1000} s`);
    await report();
    process.exit(1);
  }, totalMs);
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      console.error(`FAIL: ${signal} received (the harness's timeout?)`);
      process.exit(1);
    });
  }
  let failed = false;
  let n = 0;
  try {
    const only = process.env.WCC_TEST_STEPS?.split(",").map(Number);
    for (const [what, fn] of steps) {
      n++;
      if (only && !only.includes(n)) continue;
      log(`step ${n}: ${what}`);
      await fn();
    }
  } catch (err) {
    failed = true;
    console.error(`FAIL in step ${n}: ${err.message}`);
    await report();
  } finally {
    if (!failed && process.env.WCC_BROWSER_VERBOSE) await report();
    pipelines.forEach((p) => p.kill("SIGINT"));
    await closeBrowser();
    clearTimeout(watchdog);
  }
  if (failed) process.exit(1);
  log(`${testName}: ${n} steps passed`);
  process.exit(0);
}
