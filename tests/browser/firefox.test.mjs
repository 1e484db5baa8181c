// Firefox in the browser suite: Debian's firefox-esr (headless, puppeteer-core over WebDriver
// BiDi, firefox.mjs) and Chromium run the web client (examples/web) against the server at URL
// and gst-launch-1.0 pipelines with webrtccall. Each section has pages and pipelines of its
// own, so that one failing does not hide the others; every section's outcome is printed.
//   1. Firefox and Chromium call each other (each way): video both ways.
//   2. video-codec=vp8: Firefox calls the pipeline, and a pipeline calls Firefox: video both
//      ways, VP8 in Firefox.
//   3. video-codec=h264, max-calls=2: Firefox and Chromium call the pipeline at the same time;
//      then a pipeline calls Firefox while Chromium calls it. Debian's Firefox has no H.264:
//      it must get VP8 while Chromium gets H.264, from one encoder per codec (the element's
//      encoders, as gst-launch-1.0 -v names them: one GstVP8Enc and one GstOpenh264Enc).
//      These need the element's codec fallback (branch `codec`); before it they fail: when
//      Firefox calls, the pipeline answers its video line recvonly (Firefox shows no frame);
//      when the pipeline calls, Firefox rejects the H.264 line and the call ends.
// What "video" means here: the remote video element presents frames (counted with
// requestVideoFrameCallback, web-client.mjs: Firefox's getVideoPlaybackQuality() counts none
// for WebRTC video) and keeps doing so; getStats says which codec was decoded; a pipeline's
// fakesinks get raw video and audio buffers.
// Run by run.sh, which makes the network namespace and starts the server:
//   node firefox.test.mjs http://127.0.0.1:PORT/
// WCC_BROWSER_VERBOSE=1 prints the pages' console and the pipelines' output at the end of each
// section, also on success. WCC_FIREFOX_SECTIONS=1,3 runs only those sections (meson runs 1,2
// as browser-firefox and 3,4 as browser-firefox-h264).
import {launchFirefox} from "./firefox.mjs";
import {seconds, startPipeline, waitUntil} from "./pipeline.mjs";
import * as web from "./web-client.mjs";

const {STEP_TIMEOUT_MS, byTestId, userEntry, waitForState, waitForUser, login} = web;

const url = process.argv[2];
if (!url) {
  console.error("usage: node firefox.test.mjs SERVER-URL");
  process.exit(2);
}
const wsUrl = new URL("ws", url).href.replace(/^http/, "ws");

const TOTAL_TIMEOUT_MS = 170_000;  // under the 180 s meson gives run.sh
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (text) => console.log(`[${elapsed()}] ${text}`);

const watchdog = setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${TOTAL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    console.error(`FAIL after ${elapsed()}: ${signal} received (the harness's timeout?)`);
    process.exit(1);
  });
}

const launchedAt = Date.now();
const [firefox, chromium] = await Promise.all([launchFirefox(), web.launchChromium()]);
log(`Firefox ${await firefox.version()} and Chromium launched in ${seconds(Date.now() - launchedAt)}`);

// ---- one section: its pages and pipelines ----------------------------------------------------

class Section {
  pages = {};      // name -> {page, browser, consoleLines}
  pipelines = [];
  pageErrors = [];

  // The web client of `browser` ("firefox" or "chromium"), logged in as `name`.
  async page(name, browser) {
    const consoleLines = [];
    const page = await web.newPage(browser === "firefox" ? firefox : chromium,
                                   {consoleLines, pageErrors: this.pageErrors, label: name});
    this.pages[name] = {page, browser, consoleLines};
    await page.goto(url);
    await login(page, name);
    return page;
  }

  pipeline(label, properties, options = {}) {
    const p = startPipeline(label, wsUrl, ["call-timeout=4", ...properties], {log, ...options});
    this.pipelines.push(p);
    return p;
  }

  async report() {
    for (const [name, {page, browser, consoleLines}] of Object.entries(this.pages)) {
      console.error(`---- page ${name} (${browser}) ----`);
      try {
        const state = await page.evaluate(() => {
          const get = (id) => document.querySelector(`[data-testid="${id}"]`);
          return {
            connection: get("connection-state").textContent,
            call: `${get("call-state").dataset.state} (${get("call-state").textContent})`,
            banner: get("error-banner").hidden ? "" : get("error-message").textContent,
            peerConnections: window.__testPeerConnections.map(
                (pc) => `${pc.signalingState}/${pc.iceConnectionState}/${pc.connectionState}`),
          };
        });
        console.error(JSON.stringify({...state, frames: await web.remoteFrames(page),
                                      inbound: await web.inboundVideo(page)}, null, 2));
      } catch (err) {
        console.error(`(page state unavailable: ${err.message})`);
      }
      console.error("console:\n  " + (consoleLines.slice(-60).join("\n  ") || "(empty)"));
    }
    for (const p of this.pipelines) p.report();
  }

  async close() {
    await Promise.all(this.pipelines.map((p) => p.stop()));
    await Promise.all(Object.values(this.pages).map(({page}) => web.closePage(page).catch(() => {})));
  }
}

// ---- what a user checks ------------------------------------------------------------------------

// The page's remote video shows the current call's video and keeps showing it; getStats says it
// decoded `codec` (e.g. "video/VP8"), when given; `size` [w, h], when given. Returns the codec.
async function expectVideo(s, name, {codec, size} = {}) {
  const {page} = s.pages[name];
  const frames = () => web.remoteFrames(page);
  const first = await waitUntil(`${name} shows a remote video frame`, async () => {
    const f = await frames();
    return f.streamFrames > 0 && f;
  }).catch(async (err) => {
    const f = await frames();
    if (!f.supported) throw new Error(`${name}: this browser has no requestVideoFrameCallback`);
    const inbound = await web.inboundVideo(page);
    const state = await page.evaluate(() => ({
      call: document.querySelector('[data-testid="call-state"]').dataset.state,
      banner: document.querySelector('[data-testid="error-message"]').textContent,
      video: window.__testPeerConnections.filter((pc) => pc.signalingState !== "closed")
          .flatMap((pc) => pc.getTransceivers()).filter((t) => t.receiver.track.kind === "video")
          .map((t) => `${t.mid}: ${t.currentDirection}`),
    }));
    throw new Error(`${name}: no remote video frame (${err.message}); call state ` +
                    `"${state.call}", banner "${state.banner}", video transceivers ` +
                    `${JSON.stringify(state.video)}, inbound video ${JSON.stringify(inbound)}`);
  });
  // 30 frames a second from either kind of sender: fifteen more is half a second.
  const later = await waitUntil(`${name}'s remote video keeps playing (${first.streamFrames} frames)`,
                                async () => {
    const f = await frames();
    return f.streamFrames >= first.streamFrames + 15 && f;
  });
  const decoded = (await web.inboundVideo(page)).filter((v) => v.framesDecoded > 0);
  if (decoded.length !== 1) {
    throw new Error(`${name}: ${decoded.length} inbound video streams with decoded frames, not 1: ` +
                    JSON.stringify(decoded));
  }
  const [{codec: got, framesDecoded}] = decoded;
  log(`${name}: remote video ${later.width}x${later.height}, ${got}, frames presented ` +
      `${first.streamFrames} -> ${later.streamFrames}, decoded ${framesDecoded}`);
  if (codec && got.toLowerCase() !== codec.toLowerCase()) {
    throw new Error(`${name} decodes ${got}, not ${codec}`);
  }
  if (size && (later.width !== size[0] || later.height !== size[1])) {
    throw new Error(`${name}: the remote video is ${later.width}x${later.height}, not ${size.join("x")}`);
  }
  return got;
}

// The pipeline receives raw video and audio from `calls` calls at once (that many of its pairs of
// fakesinks vsink/asink, vsink1/asink1, ... get buffers, and more keeps coming).
async function expectPipelineReceiving(gst, calls = 1) {
  const pairs = () => Object.keys(gst.sinks).filter((n) => n.startsWith("vsink"))
      .map((v) => [v, v.replace("vsink", "asink")])
      .filter(([v, a]) => gst.buffers(v) > 0 && gst.buffers(a) > 0);
  const flowing = await waitUntil(`${gst.label} receives video and audio from ${calls} call(s)`, () => {
    gst.check();
    const p = pairs();
    return p.length >= calls && p;
  });
  const before = flowing.map(([v, a]) => [gst.buffers(v), gst.buffers(a)]);
  const growing = () => flowing.every(([v, a], i) =>
    gst.buffers(v) >= before[i][0] + 15 && gst.buffers(a) >= before[i][1] + 25);
  await waitUntil(`${gst.label} keeps receiving on ${flowing.flat().join(", ")}`, () => {
    gst.check();
    return growing();
  });
  for (const [v, a] of flowing) {
    if (!gst.sinks[v].caps.startsWith("video/x-raw")) throw new Error(`${gst.label}: ${v} caps are "${gst.sinks[v].caps}"`);
    if (!gst.sinks[a].caps.startsWith("audio/x-raw")) throw new Error(`${gst.label}: ${a} caps are "${gst.sinks[a].caps}"`);
  }
  log(`${gst.label}: receiving on ${flowing.map(([v, a]) => `${v} ${gst.buffers(v)}, ${a} ${gst.buffers(a)} buffers`).join("; ")}`);
}

// Waits for every check (promises) and fails with all their failures, not only the first.
async function all(checks) {
  const results = await Promise.allSettled(checks);
  const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  if (failures.length) throw new Error(failures.join("; and "));
  return results.map((r) => r.value);
}

// Exactly one encoder of each kind in `want` (and none other) is in the element.
function expectEncoders(gst, want) {
  const have = gst.encoderNames();
  log(`${gst.label}: encoders ${JSON.stringify(have)}`);
  const counts = Object.fromEntries(Object.entries(have).map(([t, names]) => [t, names.length]));
  const expected = Object.fromEntries(want.map((t) => [t, 1]));
  if (JSON.stringify(Object.entries(counts).sort()) !== JSON.stringify(Object.entries(expected).sort())) {
    throw new Error(`${gst.label} has the encoders ${JSON.stringify(have)}, not one each of ${want.join(", ")}`);
  }
}

async function expectIdle(s, name) {
  const {page} = s.pages[name];
  await waitForState(page, "call-state", "idle");
  await web.waitForPage(page, () => document.querySelector('[data-testid="remote-video"]').srcObject === null);
}

// `caller` clicks `callee` in the user list; a page callee accepts. Returns when both pages are
// in the call.
async function pageCalls(s, caller, callee) {
  const page = s.pages[caller].page;
  await waitForUser(page, callee);
  await userEntry(page, callee).click();
  if (s.pages[callee]) {
    await waitForState(s.pages[callee].page, "call-state", "incoming");
    await byTestId(s.pages[callee].page, "accept-button").click();
    await waitForState(s.pages[callee].page, "call-state", "in-call");
  }
  await waitForState(page, "call-state", "in-call");
}

async function hangUp(s, name) {
  await byTestId(s.pages[name].page, "hangup-button").click();
  await expectIdle(s, name);
}

// ---- the sections -------------------------------------------------------------------------------

const sections = [
  ["Firefox and Chromium call each other: video both ways", async (s) => {
    await s.page("fox1", "firefox");
    await s.page("chrome1", "chromium");
    log("fox1 calls chrome1, chrome1 accepts");
    await pageCalls(s, "fox1", "chrome1");
    await all([expectVideo(s, "fox1"), expectVideo(s, "chrome1")]);
    await hangUp(s, "fox1");
    await expectIdle(s, "chrome1");
    log("chrome1 calls fox1, fox1 accepts");
    await pageCalls(s, "chrome1", "fox1");
    await all([expectVideo(s, "fox1"), expectVideo(s, "chrome1")]);
    await hangUp(s, "chrome1");
    await expectIdle(s, "fox1");
  }],

  ["video-codec=vp8: Firefox calls the pipeline, the pipeline calls Firefox", async (s) => {
    await s.page("fox2", "firefox");
    const gst = s.pipeline("gst2", ["username=gst2", "video-codec=vp8"]);
    await gst.waitMessage("webrtccall-registered");
    log("fox2 calls gst2 (auto-answer)");
    await pageCalls(s, "fox2", "gst2");
    await all([expectVideo(s, "fox2", {codec: "video/VP8", size: [320, 240]}),
               expectPipelineReceiving(gst)]);
    const from = gst.messages.length;
    await hangUp(s, "fox2");
    const ended = await gst.waitMessage("webrtccall-call-ended", {from});
    if (ended.fields.reason !== "fox2 hung up") throw new Error(`gst2's call ended: "${ended.fields.reason}"`);

    log("the pipeline gst2c (peer=fox2) calls fox2, fox2 accepts");
    const caller = s.pipeline("gst2c", ["username=gst2c", "peer=fox2", "video-codec=vp8"]);
    await waitForState(s.pages.fox2.page, "call-state", "incoming");
    await byTestId(s.pages.fox2.page, "accept-button").click();
    await all([expectVideo(s, "fox2", {codec: "video/VP8", size: [320, 240]}),
               expectPipelineReceiving(caller)]);
    await caller.waitMessage("webrtccall-call-connected", {match: (f) => f.peer === "fox2"});
    await hangUp(s, "fox2");
  }],

  ["video-codec=h264, max-calls=2: Firefox (VP8) and Chromium (H.264) call the pipeline at once",
   async (s) => {
    await Promise.all([s.page("fox3", "firefox"), s.page("chrome3", "chromium")]);
    const gst = s.pipeline("gst3", ["username=gst3", "video-codec=h264", "max-calls=2"], {receive: 4});
    await gst.waitMessage("webrtccall-registered");
    log("fox3 and chrome3 call gst3 at the same time");
    await Promise.all([pageCalls(s, "fox3", "gst3"), pageCalls(s, "chrome3", "gst3")]);
    await all([
      expectVideo(s, "fox3", {codec: "video/VP8", size: [320, 240]}),
      expectVideo(s, "chrome3", {codec: "video/H264", size: [320, 240]}),
      expectPipelineReceiving(gst, 2),
    ]);
    expectEncoders(gst, ["GstOpenh264Enc", "GstVP8Enc"]);
    await Promise.all([hangUp(s, "fox3"), hangUp(s, "chrome3")]);
  }],

  ["video-codec=h264, max-calls=2: the pipeline calls Firefox (VP8) while Chromium (H.264) calls it",
   async (s) => {
    await Promise.all([s.page("fox4", "firefox"), s.page("chrome4", "chromium")]);
    const gst = s.pipeline("gst4", ["username=gst4", "peer=fox4", "video-codec=h264", "max-calls=2"],
                           {receive: 4});
    log("gst4 calls fox4; chrome4 calls gst4");
    const chromeCalls = pageCalls(s, "chrome4", "gst4");
    await waitForState(s.pages.fox4.page, "call-state", "incoming");
    await byTestId(s.pages.fox4.page, "accept-button").click();
    await chromeCalls;
    await all([
      expectVideo(s, "fox4", {codec: "video/VP8", size: [320, 240]}),
      expectVideo(s, "chrome4", {codec: "video/H264", size: [320, 240]}),
      expectPipelineReceiving(gst, 2),
    ]);
    expectEncoders(gst, ["GstOpenh264Enc", "GstVP8Enc"]);
    await Promise.all([hangUp(s, "fox4"), hangUp(s, "chrome4")]);
  }],
];

const only = process.env.WCC_FIREFOX_SECTIONS?.split(",").map(Number);
const results = [];
for (const [i, [title, fn]] of sections.entries()) {
  if (only && !only.includes(i + 1)) continue;
  const s = new Section();
  const sectionStart = Date.now();
  log(`section ${i + 1}: ${title}...`);
  let error = null;
  try {
    await fn(s);
    if (s.pageErrors.length) throw new Error(`uncaught errors in the pages:\n  ${s.pageErrors.join("\n  ")}`);
  } catch (err) {
    error = err;
    // Why the pipelines' calls ended, for the summary.
    const ended = s.pipelines.flatMap((p) => p.messages.filter((m) => m.name === "webrtccall-call-ended")
        .map((m) => `${p.label}'s call with ${m.fields.peer}: "${m.fields.reason}"`));
    if (ended.length) err.message += ` [calls ended: ${ended.join(", ")}]`;
    console.error(`FAIL in section ${i + 1} (${title}) after ${elapsed()}: ${err.message}`);
    await s.report();
  }
  if (!error && process.env.WCC_BROWSER_VERBOSE) await s.report();
  await s.close();
  results.push({n: i + 1, title, error, took: Date.now() - sectionStart});
}

await Promise.all([firefox.close(), chromium.close()].map((p) => p.catch(() => {})));
clearTimeout(watchdog);

console.log("---- sections ----");
for (const {n, title, error, took} of results) {
  console.log(`${error ? "FAIL" : "ok  "} ${n}. ${title} (${seconds(took)})${error ? `: ${error.message}` : ""}`);
}
const failed = results.filter((r) => r.error).length;
console.log(`browser-firefox: ${results.length - failed} of ${results.length} sections passed`);
process.exit(failed ? 1 : 0);
