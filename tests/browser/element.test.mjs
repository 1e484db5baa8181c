// The GStreamer element against the web client: headless Chromium pages (examples/web) and
// gst-launch-1.0 pipelines with `webrtccall` call each other through the server at URL.
//   1. The page "web" calls the element "gst" (auto-answer): video plays in the page, the
//      element's fakesinks receive raw video and audio; the page hangs up, the element says
//      "web hung up" and its pipeline keeps running.
//   2. The element "gst2" (peer=web2) calls the page "web2", which accepts: media both ways;
//      SIGINT stops the pipeline, the element hangs up and the page returns to idle. Then
//      "gst3", sending only, the same with gst-launch -e (the element's EOS path).
//   3. The page calls "gst" again and then closes its RTCPeerConnection without a word on the
//      signaling channel (its WebSocket stays open): the element ends the call by itself
//      within its call-timeout (4 s here), "remote gone", and the page is told "timeout".
//      A third call still works.
// Run by run.sh (element mode), which makes the network namespace and starts the server.
//   node element.test.mjs http://127.0.0.1:PORT/
// Needs gst-launch-1.0 and GST_PLUGIN_PATH with the built webrtccall plugin.
// WCC_BROWSER_VERBOSE=1 prints the pages' state and console and the pipelines' output at the
// end, also on success. WCC_ELEMENT_TEST_EOS=0 stops gst2 (which has receiving sinks) with a
// plain SIGINT instead of gst-launch -e (EOS through the element's source pads).
// The pipelines' element logs at GST_DEBUG=webrtccall:4 unless GST_DEBUG is set.
import {pipelines, seconds, startPipeline as startGstPipeline, waitUntil, within} from "./pipeline.mjs";
import * as web from "./web-client.mjs";

const {STEP_TIMEOUT_MS, byTestId, userEntry, waitForState, login, bannerText} = web;

async function expectBanner(name, words) {
  log(`${name} is told: "${await web.expectBanner(clients[name].page, name, words)}"`);
}

const url = process.argv[2];
if (!url) {
  console.error("usage: node element.test.mjs SERVER-URL");
  process.exit(2);
}
const wsUrl = new URL("ws", url).href.replace(/^http/, "ws");  // http://h:p/ -> ws://h:p/ws

const TOTAL_TIMEOUT_MS = 150_000;  // under the 180 s meson gives run.sh
const CALL_TIMEOUT_S = 4;          // the element's call-timeout

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (text) => console.log(`[${elapsed()}] ${text}`);

// ---- gst-launch-1.0 pipelines (pipeline.mjs) -----------------------------------------------

// A pipeline sending a test pattern (320x240) and a tone; with `receive`, the first call's
// video and audio go to the fakesinks vsink and asink. `eos`: gst-launch-1.0 -e.
function startPipeline(label, properties, {eos = false, receive = true} = {}) {
  return startGstPipeline(label, wsUrl, [`call-timeout=${CALL_TIMEOUT_S}`, ...properties],
                          {log, eos, receive: receive ? 1 : 0});
}

// A pipeline left running behind the test is killed by pipeline.mjs, whatever ends it.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    console.error(`FAIL after ${elapsed()}: ${signal} received (the harness's timeout?)`);
    pipelines.forEach((p) => p.report());
    process.exit(1);
  });
}

// ---- pages ----------------------------------------------------------------------------------

const watchdog = setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${TOTAL_TIMEOUT_MS / 1000} s`);
  pipelines.forEach((p) => p.report());
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

const browser = await web.launchChromium();

const clients = {};  // name -> {page, consoleLines, sockets}
const pageErrors = [];

// The web client in a browser context of its own. The test keeps each RTCPeerConnection the
// page makes (window.__testPeerConnections), to close one behind the page's back, and each
// WebSocket (sockets), to tell whether the signaling connection stayed open.
async function openClient(name) {
  const context = await browser.newContext();
  await context.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.__testPeerConnections = [];
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        window.__testPeerConnections.push(this);
      }
    };
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const consoleLines = [];
  const sockets = [];
  page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
  page.on("websocket", (ws) => {
    const socket = {url: ws.url(), closed: false};
    sockets.push(socket);
    ws.on("close", () => (socket.closed = true));
  });
  clients[name] = {page, consoleLines, sockets};
  await page.goto(url);
  return page;
}






const REMOTE_VIDEO = '[data-testid="remote-video"]';

// Resolves when the page has decoded its first remote video frame; returns when (Date.now()).
async function firstRemoteFrame(name) {
  const {page} = clients[name];
  await page.waitForFunction((sel) => {
    const v = document.querySelector(sel);
    return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0;
  }, REMOTE_VIDEO, {timeout: STEP_TIMEOUT_MS, polling: 20}).catch(() => {
    throw new Error(`${name}: no remote video frame decoded within ${seconds(STEP_TIMEOUT_MS)}`);
  });
  return Date.now();
}

// The remote video shows the element's test pattern: 320x240, decoded frames keep coming.
async function expectRemoteVideoPlaying(name) {
  const {page} = clients[name];
  await firstRemoteFrame(name);
  const first = await page.$eval(REMOTE_VIDEO, (v) => v.getVideoPlaybackQuality().totalVideoFrames);
  // videotestsrc sends 30 frames a second: fifteen more frames is half a second.
  await page.waitForFunction(([sel, n]) => {
    return document.querySelector(sel).getVideoPlaybackQuality().totalVideoFrames >= n;
  }, [REMOTE_VIDEO, first + 15], {timeout: STEP_TIMEOUT_MS, polling: 50}).catch(() => {
    throw new Error(`${name}: the remote video stopped after ${first} frames`);
  });
  const {width, height, frames} = await page.$eval(REMOTE_VIDEO, (v) => ({
    width: v.videoWidth,
    height: v.videoHeight,
    frames: v.getVideoPlaybackQuality().totalVideoFrames,
  }));
  if (width !== 320 || height !== 240) {
    throw new Error(`${name}: the remote video is ${width}x${height}, not the element's 320x240`);
  }
  log(`${name}: remote video ${width}x${height} playing, decoded frames ${first} -> ${frames}`);
}

// The element outputs raw video and audio on its fakesinks, and more keeps coming.
async function expectElementReceiving(gst) {
  await waitUntil(`${gst.label} receives video and audio`, () => {
    gst.check();
    return gst.buffers("vsink") > 0 && gst.buffers("asink") > 0;
  });
  const v0 = gst.buffers("vsink");
  const a0 = gst.buffers("asink");
  // The fake camera sends about 30 frames a second, Opus 50 packets: half a second of each.
  await waitUntil(`${gst.label} keeps receiving (video ${v0} -> ${gst.buffers("vsink")}, ` +
                  `audio ${a0} -> ${gst.buffers("asink")})`, () => {
    gst.check();
    return gst.buffers("vsink") >= v0 + 15 && gst.buffers("asink") >= a0 + 25;
  });
  const {vsink, asink} = gst.sinks;
  if (!vsink.caps.startsWith("video/x-raw")) throw new Error(`${gst.label}: vsink caps are "${vsink.caps}"`);
  if (!asink.caps.startsWith("audio/x-raw")) throw new Error(`${gst.label}: asink caps are "${asink.caps}"`);
  log(`${gst.label}: received video ${v0} -> ${gst.buffers("vsink")} buffers (${vsink.caps.split(",").slice(0, 4).join(",")}), ` +
      `audio ${a0} -> ${gst.buffers("asink")} buffers (${asink.caps.split(",").slice(0, 3).join(",")})`);
}

// Idle: no call, the remote video cleared.
async function expectIdle(name, timeoutMs = STEP_TIMEOUT_MS) {
  const {page} = clients[name];
  await waitForState(page, "call-state", "idle", timeoutMs);
  await page.waitForFunction(
      () => document.querySelector('[data-testid="remote-video"]').srcObject === null,
      null, {timeout: STEP_TIMEOUT_MS, polling: 50});
}

// ---- reporting ------------------------------------------------------------------------------

async function report() {
  for (const [name, {page, consoleLines, sockets}] of Object.entries(clients)) {
    console.error(`---- page ${name} ----`);
    try {
      const state = await page.evaluate(() => {
        const get = (id) => document.querySelector(`[data-testid="${id}"]`);
        return {
          connection: `${get("connection-state").dataset.state} (${get("connection-state").textContent})`,
          call: `${get("call-state").dataset.state} (${get("call-state").textContent})`,
          banner: get("error-banner").hidden ? "" : get("error-message").textContent,
          users: [...document.querySelectorAll('[data-testid="user-entry"]')].map((e) => e.textContent),
          peerConnections: window.__testPeerConnections.map(
              (pc) => `${pc.signalingState}/${pc.iceConnectionState}/${pc.connectionState}`),
        };
      });
      console.error(JSON.stringify({...state, sockets}, null, 2));
    } catch (err) {
      console.error(`(page state unavailable: ${err.message})`);
    }
    console.error("console:\n  " + (consoleLines.join("\n  ") || "(empty)"));
  }
  for (const p of pipelines) p.report();
}

let stepCount = 0;
async function step(title, fn) {
  stepCount++;
  log(`${title}...`);
  await fn();
}

// ---- the scenario ---------------------------------------------------------------------------

const timings = [];
let failed = false;
try {
  let web, web2, gst, gst2;

  await step("the pipeline \"gst\" registers; the page \"web\" logs in and sees it", async () => {
    gst = startPipeline("gst", ["username=gst"]);
    web = await openClient("web");
    await login(web, "web");
    await gst.waitMessage("webrtccall-registered", {match: (f) => f.name === "gst"});
    await userEntry(web, "gst").waitFor();
  });

  await step("web calls gst; gst answers by itself; media flows both ways", async () => {
    const from = gst.messages.length;
    const clicked = Date.now();
    await userEntry(web, "gst").click();
    await waitForState(web, "call-state", "in-call");
    const [pageFrameAt] = await Promise.all([
      firstRemoteFrame("web"),
      waitUntil("gst receives its first video buffer", () => {
        gst.check();
        return gst.sinks.vsink?.firstAt > clicked;
      }),
    ]);
    const connected = await gst.waitMessage("webrtccall-call-connected",
                                            {from, match: (f) => f.peer === "web"});
    timings.push(`web calls gst: call click -> first frame in the page ${seconds(pageFrameAt - clicked)}, ` +
                 `-> first video buffer in gst ${seconds(gst.sinks.vsink.firstAt - clicked)}, ` +
                 `-> webrtccall-call-connected ${seconds(connected.at - clicked)}`);
    await Promise.all([expectRemoteVideoPlaying("web"), expectElementReceiving(gst)]);
  });

  await step("web hangs up: gst ends the call (\"web hung up\") and keeps running", async () => {
    const from = gst.messages.length;
    await byTestId(web, "hangup-button").click();
    await expectIdle("web");
    const ended = await gst.waitMessage("webrtccall-call-ended",
                                        {from, match: (f) => f.peer === "web"});
    if (ended.fields.reason !== "web hung up") {
      throw new Error(`gst's call ended with reason "${ended.fields.reason}", not "web hung up"`);
    }
    gst.check();
  });

  // gst-launch-1.0 -e: the EOS event reaches the element (a source), which ends the
  // received streams so the receiving sinks get EOS too and the pipeline can stop.
  const gst2Eos = process.env.WCC_ELEMENT_TEST_EOS !== "0";
  await step(`the pipeline "gst2" (peer=web2${gst2Eos ? ", gst-launch -e" : ""}) calls the page ` +
             `"web2"; web2 accepts`, async () => {
    web2 = await openClient("web2");
    await login(web2, "web2");
    gst2 = startPipeline("gst2", ["username=gst2", "peer=web2"], {eos: gst2Eos});
    await waitForState(web2, "call-state", "incoming");
    timings.push(`gst2 calls web2: gst-launch start -> incoming call in the page ` +
                 `${seconds(Date.now() - gst2.startedAt)}`);
    const from = gst2.messages.length;
    const clicked = Date.now();
    await byTestId(web2, "accept-button").click();
    const [pageFrameAt] = await Promise.all([
      firstRemoteFrame("web2"),
      waitUntil("gst2 receives its first video buffer", () => {
        gst2.check();
        return gst2.sinks.vsink?.firstAt;
      }),
    ]);
    const connected = await gst2.waitMessage("webrtccall-call-connected",
                                             {from, match: (f) => f.peer === "web2"});
    timings.push(`gst2 calls web2: accept click -> first frame in the page ${seconds(pageFrameAt - clicked)}, ` +
                 `-> first video buffer in gst2 ${seconds(gst2.sinks.vsink.firstAt - clicked)}, ` +
                 `-> webrtccall-call-connected ${seconds(connected.at - clicked)}`);
    await Promise.all([expectRemoteVideoPlaying("web2"), expectElementReceiving(gst2)]);
    await waitForState(web2, "call-state", "in-call");
  });

  // Stops a calling pipeline with SIGINT: the element hangs up on its way to NULL, so the
  // page returns to idle told "<name> hung up: its pipeline stopped." (the server's hang-up
  // for a user who disconnected would say "<name> went offline."); gst-launch exits 0.
  async function stopAndExpectHangUp(gst, pageName) {
    const stoppedAt = Date.now();
    gst.kill("SIGINT");
    await expectIdle(pageName).catch((err) => {
      let why = "";
      if (gst.alive() && gst.eosWaiting()) {
        const eos = Object.entries(gst.sinks).map(([n, {eos}]) => `${n} ${eos ? "got" : "did not get"} EOS`);
        why = ` ${gst.label} (gst-launch -e) is still waiting for the pipeline's EOS after ` +
              `SIGINT (${eos.join(", ") || "no receiving sinks"}), so it never goes to NULL ` +
              `and the element never hangs up.`;
      }
      throw new Error(`${err.message}.${why}`);
    });
    const idleAt = Date.now();
    // The element's hang-up says why: its pipeline stopped (reason "stopped").
    await expectBanner(pageName, `${gst.label} hung up: its pipeline stopped`);
    timings.push(`${gst.label} stopped: SIGINT -> ${pageName} idle ${seconds(idleAt - stoppedAt)}`);
    const exit = await within(10_000, gst.exited);
    if (!exit) throw new Error(`${gst.label} did not exit within 10 s of SIGINT`);
    if (exit.code !== 0) throw new Error(`${gst.label} exited with ${JSON.stringify(exit)} after SIGINT`);
  }

  await step("gst2 is stopped (SIGINT): web2 returns to idle, told gst2 hung up", async () => {
    await stopAndExpectHangUp(gst2, "web2");
  });

  await step("the pipeline \"gst3\" (gst-launch -e, sending only) calls web2; stopped with " +
             "SIGINT, it ends with EOS and hangs up", async () => {
    const gst3 = startPipeline("gst3", ["username=gst3", "peer=web2"], {eos: true, receive: false});
    await waitForState(web2, "call-state", "incoming");
    await byTestId(web2, "accept-button").click();
    await gst3.waitMessage("webrtccall-call-connected", {match: (f) => f.peer === "web2"});
    await expectRemoteVideoPlaying("web2");
    await stopAndExpectHangUp(gst3, "web2");
  });

  await step("web calls gst again: a second call on the same pipeline", async () => {
    gst.check();
    const from = gst.messages.length;
    await userEntry(web, "gst").click();
    await waitForState(web, "call-state", "in-call");
    await gst.waitMessage("webrtccall-call-connected", {from, match: (f) => f.peer === "web"});
    await expectRemoteVideoPlaying("web");
  });

  await step(`web's peer connection closes without a word: gst ends the call within its ` +
             `call-timeout (${CALL_TIMEOUT_S} s), "remote gone"`, async () => {
    const from = gst.messages.length;
    const socketsBefore = clients.web.sockets.filter((s) => !s.closed).length;
    if (socketsBefore !== 1) throw new Error(`web has ${socketsBefore} open WebSockets, not 1`);
    const closedAt = Date.now();
    const states = await web.evaluate(() => {
      const pcs = window.__testPeerConnections.filter((pc) => pc.signalingState !== "closed");
      pcs.forEach((pc) => pc.close());
      return pcs.length;
    });
    if (states !== 1) throw new Error(`web had ${states} open peer connections, not 1`);
    // Not idle yet: the page does not know its connection is gone (nothing told it).
    const ended = await gst.waitMessage("webrtccall-call-ended", {
      from,
      match: (f) => f.peer === "web",
      timeoutMs: (CALL_TIMEOUT_S + 4) * 1000,
    }).catch((err) => {
      throw new Error(`${err.message} (after web's pc.close(), with call-timeout=${CALL_TIMEOUT_S})`);
    });
    const took = ended.at - closedAt;
    timings.push(`web's pc.close() -> webrtccall-call-ended in gst ${seconds(took)} ` +
                 `(call-timeout=${CALL_TIMEOUT_S})`);
    if (!/remote gone/.test(ended.fields.reason)) {
      throw new Error(`gst's call ended with reason "${ended.fields.reason}", not "remote gone"`);
    }
    if (took < CALL_TIMEOUT_S * 1000 - 1000) {
      throw new Error(`gst ended the call ${seconds(took)} after pc.close(), before its call-timeout`);
    }
    // The signaling connection was up all along: the server had no part in it.
    const closed = clients.web.sockets.filter((s) => s.closed);
    if (closed.length) throw new Error(`web's WebSocket closed: ${closed.map((s) => s.url)}`);
    await waitForState(web, "connection-state", "connected", 1000);
    // The element tells the page with a hang-up (reason "timeout"): the page returns to idle.
    await expectIdle("web");
    await expectBanner("web", "gst ended the call: timeout");
    gst.check();
  });

  await step("a third call on the same pipeline still connects", async () => {
    const from = gst.messages.length;
    await userEntry(web, "gst").click();
    await gst.waitMessage("webrtccall-call-connected", {from, match: (f) => f.peer === "web"});
    await expectRemoteVideoPlaying("web");
    await byTestId(web, "hangup-button").click();
    const ended = await gst.waitMessage("webrtccall-call-ended", {from, match: (f) => f.peer === "web"});
    if (ended.fields.reason !== "web hung up") {
      throw new Error(`gst's call ended with reason "${ended.fields.reason}", not "web hung up"`);
    }
    gst.check();
  });

  if (pageErrors.length) throw new Error(`uncaught errors in the pages:\n  ${pageErrors.join("\n  ")}`);
} catch (err) {
  failed = true;
  console.error(`FAIL after ${elapsed()} in step ${stepCount}: ${err.message}`);
  await report();
} finally {
  if (!failed && process.env.WCC_BROWSER_VERBOSE) await report();
  for (const p of pipelines) {
    p.kill("SIGINT");
    if (!(await within(5000, p.exited))) p.kill("SIGKILL");
  }
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
}

for (const t of timings) console.log(`timing: ${t}`);
if (failed) process.exit(1);
console.log(`[${elapsed()}] browser-element: ${stepCount} steps passed`);
