// Shared by the foreign-app tests (mdn.test.mjs, late-track.test.mjs, seed.test.mjs): a server
// of the test's own serving the pages of tests/browser/apps, those pages in headless Chromium,
// and gst-launch-1.0 pipelines with the webrtccall element. Run inside run.sh's namespace.
import {spawn} from "node:child_process";
import {createWriteStream} from "node:fs";
import {createInterface} from "node:readline";
import {fileURLToPath} from "node:url";

import * as web from "./web-client.mjs";

export const STEP_TIMEOUT_MS = web.STEP_TIMEOUT_MS;
export const APPS_DIR = fileURLToPath(new URL("./apps/", import.meta.url));

const started = Date.now();
export const log = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);

export async function waitUntil(what, predicate, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await predicate();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

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

// Parses the fields of a serialized GstStructure: `name, a=(string)x, b=(string)"x\ y";`.
function parseStructure(text) {
  const fields = {};
  const re = /([\w-]+)=\([\w]+\)("(?:[^"\\]|\\.)*"|<[^>]*>|[^,;]*)/g;
  for (let m; (m = re.exec(text));) {
    let value = m[2];
    if (value.startsWith('"')) value = value.slice(1, -1);
    fields[m[1]] = value.replace(/\\(.)/g, "$1");
  }
  return fields;
}

export const pipelines = [];

// gst-launch-1.0 -m -v with webrtccall "c": a 320x240 test pattern and a tone in; received
// video and audio to the fakesinks vsink and asink (counted per buffer from -v's output).
// WCC_PIPELINE_LOG=DIR keeps each pipeline's whole output there (DIR/LABEL.log).
export class Pipeline {
  messages = [];  // {name, fields}
  sinks = {};     // fakesink name -> buffers
  errors = [];
  lines = [];

  constructor(label, ws, properties) {
    this.label = label;
    this.args = [
      "-m", "-v", "webrtccall", "name=c", `signaling-server=${ws}`, "call-timeout=6", ...properties,
      "videotestsrc", "is-live=true", "!", "video/x-raw,width=320,height=240,framerate=30/1", "!",
      "c.video_0", "audiotestsrc", "is-live=true", "!", "c.audio_0",
      // async=false: a sink whose stream comes later (a page that sends no video yet) must not
      // hold the pipeline in PAUSED, waiting for its preroll.
      "c.video_src_0", "!", "queue", "!", "fakesink", "name=vsink", "silent=false", "async=false",
      "c.audio_src_0", "!", "queue", "!", "fakesink", "name=asink", "silent=false", "async=false",
    ];
    this.whole = process.env.WCC_PIPELINE_LOG
        ? createWriteStream(`${process.env.WCC_PIPELINE_LOG}/${label}.log`) : null;
    this.child = spawn("gst-launch-1.0", this.args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: {GST_DEBUG: "webrtccall:4", GST_DEBUG_NO_COLOR: "1", ...process.env},
    });
    children.push(this.child);
    pipelines.push(this);
    this.exited = null;
    this.child.on("exit", (code, signal) => (this.exited = {code, signal}));
    createInterface({input: this.child.stdout}).on("line", (line) => {
      this.whole?.write("OUT " + line + "\n");
      const chain = line.match(/GstFakeSink:(\w+): last-message = chain\b/);
      if (chain) {
        this.sinks[chain[1]] = (this.sinks[chain[1]] ?? 0) + 1;
        return;
      }
      const m = line.match(/^Got message #\d+ from element "c" \(element\): (webrtccall-[\w-]+)(.*)$/);
      if (m) {
        this.messages.push({name: m[1], fields: parseStructure(m[2])});
        log(`${label}: ${m[1]}${m[2]}`);
      }
      if (/^ERROR/.test(line)) this.errors.push(line);
    });
    const whole = this.whole;
    createInterface({input: this.child.stderr}).on("line", (line) => {
      whole?.write(line + "\n");
      this.lines.push(line);
      if (this.lines.length > 200) this.lines.shift();
    });
  }

  buffers(sink) {
    return this.sinks[sink] ?? 0;
  }

  count(name, match = () => true) {
    return this.messages.filter((m) => m.name === name && match(m.fields)).length;
  }

  check() {
    if (this.errors.length) throw new Error(`${this.label}: ${this.errors.join("; ")}`);
    if (this.exited) throw new Error(`${this.label} exited (${JSON.stringify(this.exited)})`);
  }

  async waitMessage(name, match = () => true, timeoutMs = STEP_TIMEOUT_MS) {
    return waitUntil(`${this.label} posts ${name}`, () => {
      this.check();
      return this.messages.find((m) => m.name === name && match(m.fields));
    }, timeoutMs);
  }

  // `more` buffers on the fakesink `sink` after those so far.
  async expectBuffers(sink, more, what = "") {
    const before = this.buffers(sink);
    await waitUntil(`${this.label} receives ${more} more buffers on ${sink} ${what}(${before} so far)`,
                    () => {
                      this.check();
                      return this.buffers(sink) >= before + more;
                    });
    return this.buffers(sink);
  }

  stop() {
    if (!this.exited) this.child.kill("SIGINT");
  }
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
    console.error(`---- ${p.label}: gst-launch-1.0 ${p.args.join(" ")}`);
    console.error(`buffers: ${JSON.stringify(p.sinks)}; exit: ${JSON.stringify(p.exited)}`);
    console.error("messages:\n  " + p.messages.map((m) => `${m.name} ${JSON.stringify(m.fields)}`).join("\n  "));
    console.error("stderr (last lines):\n  " + p.lines.slice(-80).join("\n  "));
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
    pipelines.forEach((p) => p.stop());
    await closeBrowser();
    clearTimeout(watchdog);
  }
  if (failed) process.exit(1);
  log(`${testName}: ${n} steps passed`);
  process.exit(0);
}
