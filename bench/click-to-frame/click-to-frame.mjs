// bench/click-to-frame: from the click (or the element's `call`) to the first remote video
// frame on each end of a call, through webrtc-call-server, for Chromium and Firefox (headless
// Debian browsers, tests/browser/web-client.mjs and firefox.mjs) and webrtccall pipelines
// (gst-launch-1.0, video-codec=vp8 unless --codec). Prints a table of p50/p95 over --calls calls per path; it
// is not a test and judges nothing. Exits 1 when the run went wrong (a browser or pipeline did
// not start, more than half the calls of a path failed), 3 over its time limit.
// Run by run.sh, inside a network namespace it makes, with the server already started:
//   node click-to-frame.mjs SERVER-URL [--calls 30] [--warmup 1] [--browsers chromium,firefox]
//                           [--codec vp8|h264|vp9]   (the pipelines' video-codec, default vp8)
//
// Paths, for each browser B:
//   B -> pipeline   the page clicks the pipeline's user (auto-answer). From the click (the
//                   click event's time in the page) to the first frame the page's remote video
//                   presents (requestVideoFrameCallback) and to the first decoded video buffer
//                   at the pipeline's fakesink.
//   pipeline -> B   the pipeline (peer=the page's user) calls when the page logs in; the page
//                   accepts as soon as the call shows (a script in the page clicks Accept). From
//                   the element's webrtccall-call-started to the first frame on each end.
//   B -> B          two pages of B; the callee's page accepts at once. From the click.
//   firefox -> chromium, when both browsers run.
// Each call is hung up by the caller's side (the page, or for pipeline -> B the page too), and
// the next starts once both ends are idle. Times on the pages' clocks are put on this
// process's clock with an offset measured per page (Date.now() around a page's clock read).
import {launchFirefox} from "../../tests/browser/firefox.mjs";
import {startPipeline, waitUntil} from "../../tests/browser/pipeline.mjs";
import * as web from "../../tests/browser/web-client.mjs";

const args = process.argv.slice(2);
const url = args.shift();
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const CALLS = Number(opt("calls", 30));
const WARMUP = Number(opt("warmup", 1));
const BROWSERS = opt("browsers", "chromium,firefox").split(",");
const CODEC = opt("codec", "vp8");
if (!url || !(CALLS > 0) || !(WARMUP >= 0) || BROWSERS.some((b) => !["chromium", "firefox"].includes(b)) ||
    !["vp8", "h264", "vp9"].includes(CODEC)) {
  console.error("usage: node click-to-frame.mjs SERVER-URL [--calls 30] [--warmup 1] " +
                "[--browsers chromium,firefox] [--codec vp8|h264|vp9]");
  process.exit(2);
}
const wsUrl = new URL("ws", url).href.replace(/^http/, "ws");
const CALL_WAIT_MS = 20_000;

// A hard limit: 15 s a call at most (two paths per browser, two with pipelines, one mixed),
// plus start-up.
const paths = BROWSERS.length * 3 + (BROWSERS.length === 2 ? 1 : 0);
const LIMIT_S = 60 + paths * (CALLS + WARMUP) * 15;
const limit = setTimeout(() => {
  console.error(`click-to-frame: over the time limit (${LIMIT_S} s)`);
  process.exit(3);
}, LIMIT_S * 1000);

const started = Date.now();
const log = (text) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);

// ---- pages -------------------------------------------------------------------------------------

const browsers = {};
for (const b of BROWSERS) {
  const t = Date.now();
  browsers[b] = b === "firefox" ? await launchFirefox() : await web.launchChromium();
  log(`${b} launched in ${Date.now() - t} ms`);
}

// page clock - this process's clock, in ms: the page's clock read between two of ours.
async function clockOffset(page) {
  let best = null;
  for (let i = 0; i < 5; i++) {
    const before = Date.now();
    const pageNow = await page.evaluate(() => performance.timeOrigin + performance.now());
    const after = Date.now();
    if (!best || after - before < best.rtt) best = {rtt: after - before, offset: pageNow - (before + after) / 2};
  }
  return best.offset;
}

// The page clicks Accept as soon as an incoming call shows; window.__benchAcceptAt is when.
function autoAccept(page) {
  return page.evaluate(() => {
    const state = document.querySelector('[data-testid="call-state"]');
    const accept = () => {
      if (state.dataset.state !== "incoming") return;
      window.__benchAcceptAt = performance.timeOrigin + performance.now();
      document.querySelector('[data-testid="accept-button"]').click();
    };
    new MutationObserver(accept).observe(state, {attributes: true, attributeFilter: ["data-state"]});
    accept();
  });
}

// A second Firefox for the callee of firefox -> firefox: Firefox shows one tab of a window at a
// time, and a tab in the background presents no video frames (requestVideoFrameCallback
// never fires there: every such call timed out). Two people are two browsers anyway.
let secondFirefox = null;

// A page of browser `b`, logged in as `name`; {page, offset} with its clock offset.
async function openPage(b, name, {accept = false, second = false} = {}) {
  let browser = browsers[b];
  if (second && b === "firefox") browser = secondFirefox ??= await launchFirefox();
  const page = await web.newPage(browser, {label: name});
  await page.goto(url);
  await web.login(page, name);
  if (accept) await autoAccept(page);
  return {page, name, offset: await clockOffset(page)};
}

async function idle(page) {
  await web.waitForState(page, "call-state", "idle", CALL_WAIT_MS);
  await web.waitForPage(page, () => document.querySelector('[data-testid="remote-video"]').srcObject === null,
                        null, {timeout: CALL_WAIT_MS}).catch((err) => {
    throw new Error(`the remote video is not cleared after the call (${err.message})`);
  });
}

// The first frame of the page's current call, on this process's clock.
async function pageFirstFrame(p) {
  const f = await waitUntil(`${p.name} shows the call's first remote frame`, async () => {
    const frames = await web.remoteFrames(p.page);
    return frames.streamFrames > 0 && frames;
  }, CALL_WAIT_MS);
  return f.streamFirstAt - p.offset;
}

// ---- pipelines -----------------------------------------------------------------------------------

// Enough fakesinks for every call of a path (the element numbers a call's pads in order).
function pipeline(label, properties) {
  return startPipeline(label, wsUrl, [`video-codec=${CODEC}`, ...properties], {receive: CALLS + WARMUP + 2});
}

// The first video buffer of a sink that had none before `used` was taken, on this process's clock.
async function pipelineFirstFrame(gst, used) {
  const sink = await waitUntil(`${gst.label} receives the call's first video buffer`, () => {
    gst.check();
    return Object.keys(gst.sinks).find((n) => n.startsWith("vsink") && !used.has(n) && gst.buffers(n) > 0);
  }, CALL_WAIT_MS);
  used.add(sink);
  return gst.sinks[sink].firstAt;
}

// ---- the paths ---------------------------------------------------------------------------------

const rows = [];  // {path, caller: [ms], callee: [ms], failed, errors}

async function runPath(path, callerEnd, calleeEnd, setup, oneCall) {
  log(`${path}: ${WARMUP} warm-up call(s), then ${CALLS}`);
  const row = {path, callerEnd, calleeEnd, caller: [], callee: [], failed: 0, errors: []};
  rows.push(row);
  let ctx;
  try {
    ctx = await setup();
    for (let i = 0; i < WARMUP + CALLS; i++) {
      try {
        const {caller, callee} = await oneCall(ctx, i);
        if (i >= WARMUP) {
          row.caller.push(caller);
          row.callee.push(callee);
        }
      } catch (err) {
        row.failed++;
        if (row.errors.length < 3) row.errors.push(err.message);
        log(`${path}: call ${i + 1} failed: ${err.message}`);
        await ctx.recover?.().catch(() => {});
      }
    }
  } catch (err) {
    row.failed = WARMUP + CALLS;
    row.errors.push(`setup: ${err.message}`);
    log(`${path}: ${err.message}`);
  } finally {
    await ctx?.close?.().catch(() => {});
  }
}

let unique = 0;

// B -> pipeline.
async function browserToPipeline(b) {
  const id = ++unique;
  await runPath(`${b} -> pipeline`, b, "pipeline", async () => {
    const gst = pipeline(`gst${id}`, [`username=gst${id}`]);
    await gst.waitMessage("webrtccall-registered");
    const p = await openPage(b, `${b}${id}`);
    await web.waitForUser(p.page, `gst${id}`);
    const used = new Set();
    return {
      gst, p, used,
      recover: async () => {
        await web.byTestId(p.page, "hangup-button").click({timeout: 1000}).catch(() => {});
        await idle(p.page);
      },
      close: async () => {
        await web.closePage(p.page);
        await gst.stop();
      },
    };
  }, async ({gst, p, used}) => {
    const from = gst.messages.length;
    await web.userEntry(p.page, `gst${id}`).click();
    const [pageAt, gstAt] = await Promise.all([pageFirstFrame(p), pipelineFirstFrame(gst, used)]);
    const clickAt = (await p.page.evaluate(() => window.__testClickAt)) - p.offset;
    await web.byTestId(p.page, "hangup-button").click();
    await idle(p.page);
    await gst.waitMessage("webrtccall-call-ended", {from, timeoutMs: CALL_WAIT_MS});
    return {caller: pageAt - clickAt, callee: gstAt - clickAt};
  });
}

// pipeline -> B: the page logs in (again) and the pipeline calls it.
async function pipelineToBrowser(b) {
  const id = ++unique;
  const name = `${b}${id}`;
  await runPath(`pipeline -> ${b}`, "pipeline", b, async () => {
    const gst = pipeline(`gstc${id}`, [`username=gstc${id}`, `peer=${name}`]);
    await gst.waitMessage("webrtccall-registered");
    const page = await web.newPage(browsers[b], {label: name});
    return {
      gst, page, used: new Set(),
      close: async () => {
        await web.closePage(page);
        await gst.stop();
      },
    };
  }, async (ctx) => {
    const {gst, page, used} = ctx;
    // Logging in (again) brings the user online: the element calls it.
    await page.goto(url);
    const from = gst.messages.length;
    await web.login(page, name);
    await autoAccept(page);
    const p = {page, name, offset: await clockOffset(page)};
    const startedMsg = await gst.waitMessage("webrtccall-call-started",
                                             {from, match: (f) => f.peer === name, timeoutMs: CALL_WAIT_MS});
    const [pageAt, gstAt] = await Promise.all([pageFirstFrame(p), pipelineFirstFrame(gst, used)]);
    await web.byTestId(page, "hangup-button").click();
    await idle(page);
    await gst.waitMessage("webrtccall-call-ended", {from, timeoutMs: CALL_WAIT_MS});
    return {caller: gstAt - startedMsg.at, callee: pageAt - startedMsg.at};
  });
}

// B1 -> B2, two pages.
async function browserToBrowser(b1, b2) {
  const id = ++unique;
  await runPath(`${b1} -> ${b2}`, b1, b2, async () => {
    const caller = await openPage(b1, `${b1}${id}a`);
    const callee = await openPage(b2, `${b2}${id}b`, {accept: true, second: true});
    await web.waitForUser(caller.page, callee.name);
    return {
      caller, callee,
      recover: async () => {
        await web.byTestId(caller.page, "hangup-button").click({timeout: 1000}).catch(() => {});
        await Promise.all([idle(caller.page), idle(callee.page)]);
      },
      close: async () => {
        await Promise.all([web.closePage(caller.page), web.closePage(callee.page)]);
      },
    };
  }, async ({caller, callee}) => {
    await web.userEntry(caller.page, callee.name).click();
    const [callerAt, calleeAt] = await Promise.all([pageFirstFrame(caller), pageFirstFrame(callee)]);
    const clickAt = (await caller.page.evaluate(() => window.__testClickAt)) - caller.offset;
    await web.byTestId(caller.page, "hangup-button").click();
    await Promise.all([idle(caller.page), idle(callee.page)]);
    return {caller: callerAt - clickAt, callee: calleeAt - clickAt};
  });
}

for (const b of BROWSERS) {
  await browserToPipeline(b);
  await pipelineToBrowser(b);
  await browserToBrowser(b, b);
}
if (BROWSERS.length === 2) await browserToBrowser("firefox", "chromium");

await Promise.all([...Object.values(browsers), secondFirefox].filter(Boolean)
    .map((b) => b.close().catch(() => {})));
clearTimeout(limit);

// ---- the table -----------------------------------------------------------------------------------

// Nearest-rank percentile.
function pct(values, p) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
const ms = (v) => (Number.isNaN(v) ? "-" : `${Math.round(v)}`);
const cell = (values) => `${ms(pct(values, 50))} / ${ms(pct(values, 95))}`;

console.log(`click-to-frame: first remote video frame after the click (or the element's call), ` +
            `ms, p50 / p95 over ${CALLS} calls (${WARMUP} warm-up), pipelines with video-codec=${CODEC}`);
console.log("| path | calls | first frame at the caller | first frame at the callee |");
console.log("|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.path} | ${r.caller.length}${r.failed ? ` (${r.failed} failed)` : ""} | ` +
              `${cell(r.caller)} (${r.callerEnd}) | ${cell(r.callee)} (${r.calleeEnd}) |`);
}
for (const r of rows.filter((r) => r.errors.length)) {
  console.log(`${r.path}: ${r.errors.join("; ")}`);
}
const wrong = rows.some((r) => r.caller.length < CALLS / 2);
process.exit(wrong ? 1 : 0);
