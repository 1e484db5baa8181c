// Why a call ended, as the page tells the user (examples/web/outcome.js), and as the element's
// webrtccall-call-ended says it, against gst-launch-1.0 pipelines with `webrtccall`:
//   0. gstno (auto-answer=false) declines: "declined"; a reason the page does not know
//      (rewritten by the test) is shown verbatim.
//   1. gstaudio has no video input: the page's call to it connects and the page says
//      "gstaudio sends no video" (a notice, not an error); a second page calling it is told
//      it is busy. gstblank's video input sends no frame: "no picture has arrived". gst sends
//      video: no notice.
//   2. The page's offer reaches the element without a=fingerprint: "invalid-sdp".
//   3. The page's offer reaches the element with another fingerprint: the element ends the
//      call after DTLS, and the page shows "failed on gst's side: <the element's words>".
//   4. The element's answer reaches the page mangled: setRemoteDescription's error on the
//      page, and the element says the call failed on the page's side, with that text.
//   5. Neither side's candidates arrive (dropped): the element's connect-timeout ends the
//      call, the page says "timeout".
//   6. Both sides' candidates name an address nobody has: ICE fails, both say "ICE failed";
//      the same between two pages (one of them says its own ICE failed).
// The signaling WebSocket of the page goes through the test (routeWebSocket), which drops or
// rewrites messages per step. Run by run.sh (element mode).
//   node outcomes.test.mjs http://127.0.0.1:PORT/
import {Pipeline, pipelines, waitUntil} from "./pipeline.mjs";
import * as web from "./web-client.mjs";

const {STEP_TIMEOUT_MS, byTestId, waitForState, login, bannerText} = web;
// By exact name ("gst" is in "gstaudio" too).
const userEntry = (page, name) => page.locator(`[data-testid="user-entry"][data-name="${name}"]`);

const url = process.argv[2];
if (!url) {
  console.error("usage: node outcomes.test.mjs SERVER-URL");
  process.exit(2);
}
const wsUrl = new URL("ws", url).href.replace(/^http/, "ws");
const TOTAL_TIMEOUT_MS = 165_000;  // under the 180 s meson gives run.sh

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (text) => console.log(`[${elapsed()}] ${text}`);

// ---- pipelines: gst-launch-1.0 -m (pipeline.mjs), the element's messages parsed -------------

// video: false is a pipeline without video input (audio only).
// video: "blank" is a video input that never sends a frame (an appsrc nobody feeds).
function startPipeline(name, properties = [], {video = true} = {}) {
  const caps = "video/x-raw,format=I420,width=320,height=240,framerate=30/1";
  return new Pipeline(name, [
    "-m",
    "webrtccall", "name=c", `signaling-server=${wsUrl}`, `username=${name}`, ...properties,
    ...(video === "blank" ? ["appsrc", "is-live=true", "format=time", `caps=${caps}`, "!", "c.video_0"]
        : video ? ["videotestsrc", "is-live=true", "!", caps, "!", "c.video_0"] : []),
    "audiotestsrc", "is-live=true", "!", "c.audio_0",
  ], {log: (text) => / webrtccall-users /.test(text) || log(text)});
}

// ---- the page and its signaling relay ------------------------------------------------------

// Carries a page's WebSocket; `toServer` and `toPage` may rewrite a parsed message or drop it
// (return null). Both pass everything until a step sets them.
class Relay {
  toServer = (m) => m;
  toPage = (m) => m;

  attach(ws) {
    const server = ws.connectToServer();
    const pass = (text, fn, send) => {
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        send(text);
        return;
      }
      const out = fn(msg);
      if (out) send(JSON.stringify(out));
    };
    ws.onMessage((text) => pass(text, this.toServer, (t) => server.send(t)));
    server.onMessage((text) => pass(text, this.toPage, (t) => ws.send(t)));
  }

  reset() {
    this.toServer = (m) => m;
    this.toPage = (m) => m;
  }
}

const watchdog = setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${TOTAL_TIMEOUT_MS / 1000} s`);
  pipelines.forEach((p) => p.report());
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

const browser = await web.launchChromium();
const consoleLines = [];
const pageErrors = [];

async function openPage(name, relay) {
  const context = await browser.newContext();
  if (relay) await context.routeWebSocket(() => true, (ws) => relay.attach(ws));
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("console", (msg) => consoleLines.push(`${name} ${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
  await page.goto(url);
  await login(page, name);
  pages.push(page);
  return page;
}

async function expectTold(page, name, words, timeoutMs = STEP_TIMEOUT_MS) {
  const text = await web.expectBanner(page, name, words, timeoutMs);
  log(`${name} is told: "${text}"`);
  return text;
}

async function idleAndDismissed(page) {
  await waitForState(page, "call-state", "idle");
  if (await byTestId(page, "error-dismiss").isVisible()) await byTestId(page, "error-dismiss").click();
}

// Rewrites the SDP of a message of `type` (video-offer, video-answer) with `fn`.
const rewriteSdp = (type, fn) => (m) =>
  m.type === type && m.sdp?.sdp ? {...m, sdp: {...m.sdp, sdp: fn(m.sdp.sdp)}} : m;

// WCC_KEEP_GOING=1: a failed step is reported and the next one runs (the test still fails),
// e.g. to see which assertions an older web client or element fails.
const keepGoing = process.env.WCC_KEEP_GOING === "1";
const stepFailures = [];
let stepCount = 0;
let relay;
async function step(title, fn) {
  stepCount++;
  log(`${title}...`);
  if (!keepGoing || stepCount === 1) return fn();
  try {
    await fn();
  } catch (err) {
    stepFailures.push(`step ${stepCount}: ${err.message}`);
    log(`FAIL (going on): ${err.message}`);
    relay.reset();
    for (const p of pages) {
      for (const id of ["hangup-button", "error-dismiss"]) {
        if (await byTestId(p, id).isVisible()) await byTestId(p, id).click().catch(() => {});
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));  // not an assertion: let the hang-ups land
  }
}
const pages = [];

let failed = false;
try {
  relay = new Relay();
  let page, page2, gst, gstaudio, gstice;

  await step("pipelines gst, gstaudio (no video input) and gstice register; the page logs in", async () => {
    gst = startPipeline("gst", ["connect-timeout=3"]);
    gstaudio = startPipeline("gstaudio", [], {video: false});
    // ICE must fail before its connect-timeout ends the call.
    gstice = startPipeline("gstice", ["connect-timeout=60"]);
    startPipeline("gstno", ["auto-answer=false"], {video: false});
    startPipeline("gstblank", [], {video: "blank"});
    page = await openPage("web", relay);
    for (const name of ["gst", "gstaudio", "gstice", "gstno", "gstblank"]) await userEntry(page, name).waitFor();
  });

  await step("web calls gstno (auto-answer=false): web is told gstno declined; a reason the " +
             "page does not know is shown as sent", async () => {
    await userEntry(page, "gstno").click();
    await expectTold(page, "web", "gstno declined the call");
    await idleAndDismissed(page);
    relay.toPage = (m) => (m.type === "hang-up" ? {...m, reason: "gone fishing"} : m);
    await userEntry(page, "gstno").click();
    await expectTold(page, "web", "gstno ended the call: gone fishing");
    await idleAndDismissed(page);
    relay.reset();
  });

  await step("web calls gstaudio: the call connects, the page says gstaudio sends no video", async () => {
    const from = gstaudio.messages.length;
    await userEntry(page, "gstaudio").click();
    await gstaudio.waitMessage("webrtccall-call-connected", {from, match: (f) => f.peer === "web"});
    await waitForState(page, "call-state", "in-call");
    await byTestId(page, "video-notice").filter({hasText: "gstaudio sends no video"}).waitFor()
        .catch(() => {
          throw new Error("the page shows no \"gstaudio sends no video\" notice");
        });
    log(`web shows: "${await byTestId(page, "video-notice").textContent()}"`);
    // A notice, not an error: the call goes on.
    if (await bannerText(page)) throw new Error(`the page shows a banner: "${await bannerText(page)}"`);
    await waitForState(page, "call-state", "in-call", 1000);
  });

  await step("web2 calls gstaudio (max-calls=1) meanwhile: web2 is told gstaudio is busy", async () => {
    page2 = await openPage("web2");
    await userEntry(page2, "gstaudio").click();
    await expectTold(page2, "web2", "gstaudio is busy");
    await waitForState(page2, "call-state", "idle");
    await byTestId(page, "hangup-button").click();
    await idleAndDismissed(page);
    if (!(await byTestId(page, "video-notice").isHidden())) throw new Error("the notice outlives the call");
  });

  await step("web calls gstblank, whose video input sends nothing: the page says no picture " +
             "has arrived", async () => {
    await userEntry(page, "gstblank").click();
    await waitForState(page, "call-state", "in-call");
    await byTestId(page, "video-notice").filter({hasText: "gstblank sends no video"}).waitFor()
        .catch(() => {
          throw new Error("the page shows no \"gstblank sends no video\" notice");
        });
    log(`web shows: "${await byTestId(page, "video-notice").textContent()}"`);
    await byTestId(page, "hangup-button").click();
    await idleAndDismissed(page);
  });

  await step("web calls gst, which sends video: no notice after 5 s of pictures", async () => {
    await userEntry(page, "gst").click();
    await waitForState(page, "call-state", "in-call");
    await page.waitForFunction(() => document.querySelector('[data-testid="remote-video"]').videoWidth > 0,
                               null, {timeout: STEP_TIMEOUT_MS, polling: 50});
    // Not an assertion: longer than the page waits for a picture (4 s) before its notice.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    if (!(await byTestId(page, "video-notice").isHidden())) {
      throw new Error(`the page shows "${await byTestId(page, "video-notice").textContent()}" with video playing`);
    }
    await byTestId(page, "hangup-button").click();
    await idleAndDismissed(page);
  });

  await step("web's offer reaches gst without a=fingerprint: web is told invalid-sdp", async () => {
    relay.toServer = rewriteSdp("video-offer", (sdp) => sdp.replace(/^a=fingerprint:.*\r\n/gm, ""));
    await userEntry(page, "gst").click();
    await expectTold(page, "web", "invalid-sdp");
    await idleAndDismissed(page);
    relay.reset();
  });

  await step("web's offer reaches gst with another fingerprint: gst ends the call after DTLS, " +
             "web is told why", async () => {
    const from = gst.messages.length;
    // Another certificate's hash: the SDP is well formed, DTLS then finds the mismatch.
    relay.toServer = rewriteSdp("video-offer", (sdp) => sdp.replace(
        /^(a=fingerprint:sha-256 )([0-9A-F:]+)/gm,
        (_, head, hash) => head + hash.split(":").map((b) => b === "00" ? "01" : "00").join(":")));
    await userEntry(page, "gst").click();
    const text = await expectTold(page, "web", "failed on gst's side");
    if (!/does not match the SDP fingerprint/.test(text)) {
      throw new Error(`web is not told the element's reason: "${text}"`);
    }
    await gst.waitMessage("webrtccall-call-ended", {from, match: (f) => f.peer === "web"});
    await idleAndDismissed(page);
    relay.reset();
  });

  await step("gst's answer reaches web mangled: web shows setRemoteDescription's error, gst " +
             "says the call failed on web's side", async () => {
    const from = gst.messages.length;
    relay.toPage = rewriteSdp("video-answer", (sdp) => sdp.replace(/^a=ice-ufrag:.*\r\n/gm, ""));
    await userEntry(page, "gst").click();
    const text = await expectTold(page, "web", "setRemoteDescription");
    const ended = await gst.waitMessage("webrtccall-call-ended", {from, match: (f) => f.peer === "web"});
    log(`gst: call ended: "${ended.fields.reason}"`);
    if (!ended.fields.reason.startsWith("the call failed on web's side: ") ||
        !ended.fields.reason.includes("setRemoteDescription")) {
      throw new Error(`gst's call-ended reason is "${ended.fields.reason}", not web's failure (${text})`);
    }
    await idleAndDismissed(page);
    relay.reset();
  });

  await step("no candidate arrives on either side: gst's connect-timeout (3 s) ends the call, " +
             "web is told timeout", async () => {
    relay.toServer = (m) => (m.type === "new-ice-candidate" ? null : m);
    relay.toPage = (m) => (m.type === "new-ice-candidate" ? null : m);
    await userEntry(page, "gst").click();
    await expectTold(page, "web", "timeout");
    await idleAndDismissed(page);
    relay.reset();
  });

  // 10.77.0.99 is in the namespace's veth subnet, but nobody answers there.
  const unreachable = (m) => m.type === "new-ice-candidate" && m.candidate?.candidate
      ? {...m, candidate: {...m.candidate, candidate: m.candidate.candidate.replace(
          /^(candidate:\S+ \d+ \S+ \d+ )\S+/, (_, head) => `${head}10.77.0.99`)}}
      : m;
  await step("every candidate names an address nobody has: ICE fails, web and gstice say " +
             "ICE failed", async () => {
    const from = gstice.messages.length;
    relay.toServer = unreachable;
    relay.toPage = unreachable;
    const clicked = Date.now();
    await userEntry(page, "gstice").click();
    await expectTold(page, "web", "ICE failed").catch(async (err) => {
      throw new Error(`${err.message} (${((Date.now() - clicked) / 1000).toFixed(1)} s after the call)`);
    });
    const ended = await gstice.waitMessage("webrtccall-call-ended", {from, match: (f) => f.peer === "web"});
    log(`ICE failed ${((Date.now() - clicked) / 1000).toFixed(1)} s after the call; gstice: "${ended.fields.reason}"`);
    if (!/ICE failed/.test(ended.fields.reason)) {
      throw new Error(`gstice's call-ended reason is "${ended.fields.reason}", not ICE failed`);
    }
    await waitForState(page, "call-state", "idle");
    relay.reset();
  });

  await step("the same between two pages (web calls web2): each page says ICE failed, the " +
             "first to fail in its own words", async () => {
    relay.toServer = unreachable;
    relay.toPage = unreachable;
    const clicked = Date.now();
    await userEntry(page, "web2").click();
    await waitForState(page2, "call-state", "incoming");
    await byTestId(page2, "accept-button").click();
    // Chromium gives up on ICE after about 20 s here (libnice after 7 s).
    const told = await Promise.all([
      expectTold(page, "web", "ICE failed", 45_000), expectTold(page2, "web2", "ICE failed", 45_000),
    ]).catch((err) => {
      throw new Error(`${err.message} (${((Date.now() - clicked) / 1000).toFixed(1)} s after the call)`);
    });
    log(`ICE failed ${((Date.now() - clicked) / 1000).toFixed(1)} s after the call`);
    // One of them saw it fail ("between you and ..."), the other was told ("found no ...").
    if (!told.some((t) => t.includes("no network path between you and"))) {
      throw new Error(`neither page says its own ICE failed: ${JSON.stringify(told)}`);
    }
    relay.reset();
  });

  if (pageErrors.length) throw new Error(`uncaught errors in the pages:\n  ${pageErrors.join("\n  ")}`);
  if (stepFailures.length) throw new Error(`${stepFailures.length} steps failed:\n  ${stepFailures.join("\n  ")}`);
} catch (err) {
  failed = true;
  console.error(`FAIL after ${elapsed()} in step ${stepCount}: ${err.message}`);
  console.error("---- page console ----\n  " + consoleLines.slice(-60).join("\n  "));
  pipelines.forEach((p) => p.report());
} finally {
  for (const p of pipelines) await p.stop();
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
if (failed) process.exit(1);
console.log(`[${elapsed()}] browser-outcomes: ${stepCount} steps passed`);
