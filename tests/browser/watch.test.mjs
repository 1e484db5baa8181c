// The watch page (examples/web, index.html?watch=NAME) as viewers of a broadcast use it: a
// gst-launch-1.0 sender `webrtccall username=show max-calls=8 video-codec=h264` (a moving
// pattern and a tone) in the sender's namespace, and in the viewers' namespace three Chromium
// pages (two in one browser, one in a browser with autoplay blocked) and one Firefox page, all
// on ?watch=show. A user checks:
//   - a page opened while the signaling server is down says so and connects once it is up;
//   - a page asking for a name another viewer has gets another one and watches all the same;
//   - before the sender is there, each page says it waits for show;
//   - then each page's video plays: frames presented keep rising (requestVideoFrameCallback,
//     web-client.mjs), the picture is neither black nor still; getStats says H.264 in Chromium,
//     VP8 in Firefox (no H.264 in Debian's Firefox: the codec fallback of issue 9), and the
//     sender runs two video encoders, one of each (gst-launch-1.0 -v names them), not four;
//   - the page with autoplay blocked plays muted under a "Play with sound" button; a click
//     plays it with sound;
//   - no page ever calls getUserMedia;
//   - the signaling server dies (SIGKILL) and comes back on the same port: the calls go on
//     (live, frames rising), the pages and the sender register again by themselves;
//   - the sender stops (SIGINT), and then, started again, is killed (SIGKILL): every page shows
//     "ended" or "waiting" and why, its video empty; a new sender under the same name: every
//     page plays again, without a reload.
// Run by run.sh inside tests/netns-pair-run.sh (node and the browsers in the viewers'
// namespace, the server and the pipelines in the sender's):
//   node watch.test.mjs http://10.77.1.1:PORT/
// WCC_BROWSER_VERBOSE=1 prints the pages' console and the pipelines' output, also on success.
import {spawn} from "node:child_process";

import {launchFirefox} from "./firefox.mjs";
import {Pipeline, seconds, waitUntil} from "./pipeline.mjs";
import * as web from "./web-client.mjs";

const url = process.argv[2];
if (!url) {
  console.error("usage: node watch.test.mjs SERVER-URL");
  process.exit(2);
}
const serverBin = process.env.WCC_SERVER_BIN;
if (!serverBin) {
  console.error("watch.test.mjs needs WCC_SERVER_BIN (run.sh sets it)");
  process.exit(2);
}
const senderAddress = process.env.WCC_SENDER_ADDRESS ?? "10.77.1.1";
// The page over plain http is no secure context: without this switch Chromium would give it no
// navigator.mediaDevices at all, and "no getUserMedia call" could not fail.
const secureOrigin = `--unsafely-treat-insecure-origin-as-secure=${new URL(url).origin}`;

const TOTAL_TIMEOUT_MS = 170_000;  // under the 180 s meson gives run.sh
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (text) => console.log(`[${elapsed()}] ${text}`);

const pages = {};  // name -> {page, browser, consoleLines}
const senders = [];
const pageErrors = [];

async function report() {
  for (const [name, {page, browser, consoleLines}] of Object.entries(pages)) {
    console.error(`---- page ${name} (${browser}) ----`);
    try {
      const state = await page.evaluate(() => {
        const get = (id) => document.querySelector(`[data-testid="${id}"]`);
        return {
          connection: get("connection-state").textContent,
          watch: `${get("watch-state").dataset.state} (${get("watch-state").textContent})`,
          banner: get("error-banner").hidden ? "" : get("error-message").textContent,
          playButton: !get("play-button").hidden,
          paused: get("remote-video").paused,
          getUserMedia: window.__testGetUserMedia,
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
  for (const p of senders) p.report();
}

let browsers = [];
async function finish(code) {
  await Promise.all(senders.map((p) => p.stop().catch(() => {})));
  await Promise.all(browsers.map((b) => b.close().catch(() => {})));
  process.exit(code);
}

const watchdog = setTimeout(async () => {
  console.error(`FAIL: the test did not finish within ${TOTAL_TIMEOUT_MS / 1000} s`);
  await report().catch(() => {});
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    console.error(`FAIL after ${elapsed()}: ${signal} received (the harness's timeout?)`);
    process.exit(1);
  });
}

// ---- the signaling server the pages and the sender use ------------------------------------------

// The pages load from URL (run.sh's server); their signaling and the sender's go to a server of
// the test's own, which it kills and starts again on the same port. It runs in the sender's
// namespace, like run.sh's (WCC_PIPELINE_EXEC).
let server = null;
let wsUrl = "";
process.on("exit", () => server?.kill("SIGKILL"));
function startServer(port) {
  const exec = (process.env.WCC_PIPELINE_EXEC ?? "").split(" ").filter(Boolean);
  const args = ["--address", senderAddress, "--port", String(port)];
  const child = spawn(exec[0] ?? serverBin, [...exec.slice(1), ...(exec.length ? [serverBin] : []), ...args],
                      {stdio: ["ignore", "pipe", "inherit"]});
  server = child;
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/Listening on http:\/\/[\d.]+:(\d+)\//);
      if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`the server exited (${code}) before listening: ${out}`)));
  });
}

// ---- the sender --------------------------------------------------------------------------------

// The broadcaster: a moving pattern (the SMPTE bars sliding by a pixel a frame: a whole turn takes 10 s, far more than between two samples of samplePicture) and a tone into webrtccall `c`.
// more: more properties of the element.
function startSender(label, more = []) {
  const p = new Pipeline(label, [
    "-m", "-v",
    "webrtccall", "name=c", `signaling-server=${wsUrl}`, "username=show", "max-calls=8", ...more,
    "video-codec=h264", `ice-addresses=<"${senderAddress}">`,
    "videotestsrc", "is-live=true", "pattern=smpte", "horizontal-speed=1", "!",
    "video/x-raw,width=320,height=240,framerate=30/1", "!", "c.video_0",
    "audiotestsrc", "is-live=true", "!", "c.audio_0",
  ], {log});
  senders.push(p);
  return p;
}

// Exactly one H.264 and one VP8 encoder (and no other) in the sender, as gst-launch-1.0 -v
// names them.
function expectTwoEncoders(gst) {
  const have = gst.encoderNames();
  log(`${gst.label}: encoders ${JSON.stringify(have)}`);
  const counts = Object.entries(have).map(([t, names]) => `${t}:${names.length}`).sort().join(",");
  if (counts !== "GstOpenh264Enc:1,GstVP8Enc:1") {
    throw new Error(`${gst.label} runs the encoders ${JSON.stringify(have)}, not one ` +
                    "GstOpenh264Enc and one GstVP8Enc");
  }
}

// ---- the pages ---------------------------------------------------------------------------------

// Counts the page's getUserMedia calls (window.__testGetUserMedia), before its own scripts.
function countGetUserMedia() {
  window.__testGetUserMedia = 0;
  const md = navigator.mediaDevices;
  if (!md?.getUserMedia) return;
  const native = md.getUserMedia.bind(md);
  md.getUserMedia = (...args) => {
    window.__testGetUserMedia++;
    return native(...args);
  };
}

// What the page shows, reported by the page itself on the console when it changes (console
// messages "__watch {...}"): for the page whose autoplay is blocked, which the test must not
// touch before the click. Playwright's evaluate and waitForFunction run as a user gesture
// (Runtime.callFunctionOn with userGesture: true), and so do the replies to a binding's calls
// (exposeBinding): measured, a page with --autoplay-policy=user-gesture-required played its
// video once the test had evaluated anything in it, or once it had called a binding.
function reportWatch() {
  let last = "";
  addEventListener("DOMContentLoaded", () => setInterval(() => {
    const get = (id) => document.querySelector(`[data-testid="${id}"]`);
    if (!get("watch-state")) return;
    const report = JSON.stringify({
      state: get("watch-state").dataset.state,
      playButton: !get("play-button").hidden,
      paused: get("remote-video").paused,
      muted: get("remote-video").muted,
      stream: get("remote-video").srcObject !== null,
      presented: (window.__testRemoteFrames?.count ?? 0) > 0,
    });
    if (report !== last) console.debug(`__watch ${report}`);
    last = report;
  }, 100));
}
const reports = {};  // page name -> the last report of reportWatch

async function waitReport(name, what, predicate, timeoutMs = web.STEP_TIMEOUT_MS) {
  return waitUntil(`${name} ${what}`, () => reports[name] && predicate(reports[name]) && reports[name],
                   timeoutMs).catch((err) => {
    throw new Error(`${err.message} (it reports ${JSON.stringify(reports[name])})`);
  });
}

// noGesture: the test never evaluates in the page (it reports, reportWatch) until told.
// ask: the name the page asks for (&name=), by default `name`.
async function openPage(name, browser, kind, {noGesture = false, ask = name} = {}) {
  const consoleLines = [];
  const page = await web.newPage(browser, {consoleLines, pageErrors, label: name});
  if (kind === "firefox") {
    await page.evaluateOnNewDocument(countGetUserMedia);
  } else {
    await page.context().addInitScript(countGetUserMedia);
  }
  if (noGesture) {
    page.on("console", (msg) => {
      const m = /^__watch (.*)$/.exec(msg.text());
      if (m) reports[name] = JSON.parse(m[1]);
    });
    await page.context().addInitScript(reportWatch);
  }
  pages[name] = {page, browser: kind, consoleLines};
  await page.goto(new URL(`?watch=show&name=${ask}&server=${encodeURIComponent(wsUrl)}`, url).href);
  // A mark that a reload would wipe out.
  if (!noGesture) await markNotReloaded(name);
  return page;
}

const markNotReloaded = (name) => pages[name].page.evaluate(() => (window.__testNotReloaded = true));

const watchState = (page) => page.evaluate(
    () => document.querySelector('[data-testid="watch-state"]').dataset.state);

async function expectWatchState(name, states, timeoutMs = web.STEP_TIMEOUT_MS) {
  const {page} = pages[name];
  await web.waitForPage(page, (want) => want.includes(
      document.querySelector('[data-testid="watch-state"]').dataset.state), states,
                        {timeout: timeoutMs}).catch(async () => {
    const text = await page.evaluate(
        () => document.querySelector('[data-testid="watch-state"]').textContent).catch(() => "?");
    throw new Error(`${name} should show ${states.join(" or ")}, it shows ` +
                    `"${await watchState(page).catch(() => "?")}" (${text})`);
  });
}

// A sample of the picture shown: the mean luma of a 32x24 copy, and the copy's pixels.
function samplePicture(page) {
  return page.evaluate(() => {
    const video = document.querySelector('[data-testid="remote-video"]');
    const canvas = document.createElement("canvas");
    canvas.width = 32;
    canvas.height = 24;
    const ctx = canvas.getContext("2d", {willReadFrequently: true});
    ctx.drawImage(video, 0, 0, 32, 24);
    const {data} = ctx.getImageData(0, 0, 32, 24);
    let sum = 0;
    const luma = [];
    for (let i = 0; i < data.length; i += 4) {
      const y = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
      luma.push(Math.round(y));
      sum += y;
    }
    return {mean: sum / luma.length, luma};
  });
}

// The page plays the broadcast: frames presented rise (15 more: half a second of 30/s), the
// picture is not black and moves, and getStats names `codec`.
async function expectPlaying(name, codec) {
  const {page} = pages[name];
  const frames = () => web.remoteFrames(page);
  const first = await waitUntil(`${name} presents a frame of the broadcast`, async () => {
    const f = await frames();
    return f.streamFrames > 0 && f;
  });
  const before = await samplePicture(page);
  const later = await waitUntil(`${name}'s video keeps playing (${first.streamFrames} frames)`,
                                async () => {
    const f = await frames();
    return f.streamFrames >= first.streamFrames + 15 && f;
  });
  const after = await samplePicture(page);
  const sound = await page.evaluate(() => {
    const video = document.querySelector('[data-testid="remote-video"]');
    return {muted: video.muted, paused: video.paused,
            audioTracks: video.srcObject?.getAudioTracks().length ?? 0};
  });
  if (sound.muted || sound.paused || sound.audioTracks !== 1) {
    throw new Error(`${name}: the video does not play with its sound: ${JSON.stringify(sound)}`);
  }
  if (after.mean < 40) throw new Error(`${name}: the picture is black (mean luma ${after.mean.toFixed(1)})`);
  const changed = after.luma.filter((y, i) => Math.abs(y - before.luma[i]) > 24).length;
  if (changed < 10) throw new Error(`${name}: the picture does not move (${changed} of 768 samples changed)`);
  const decoded = (await web.inboundVideo(page)).filter((v) => v.framesDecoded > 0);
  if (decoded.length !== 1) {
    throw new Error(`${name}: ${decoded.length} inbound video streams decoded, not 1: ${JSON.stringify(decoded)}`);
  }
  if (decoded[0].codec.toLowerCase() !== codec.toLowerCase()) {
    throw new Error(`${name} decodes ${decoded[0].codec}, not ${codec}`);
  }
  log(`${name}: ${later.width}x${later.height} ${decoded[0].codec}, frames ${first.streamFrames} -> ` +
      `${later.streamFrames}, mean luma ${after.mean.toFixed(0)}, ${changed} of 768 samples moved`);
}

// Waits for every check and fails with all their failures, not only the first.
async function all(checks) {
  const results = await Promise.allSettled(checks);
  const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  if (failures.length) throw new Error(failures.join("; and "));
  return results.map((r) => r.value);
}

const CHROMIUM_PAGES = ["chrome1", "chrome2", "chrome3"];
const BLOCKED = "chrome3";  // its browser blocks autoplay without a user gesture
const codecOf = (name) => (pages[name].browser === "firefox" ? "video/VP8" : "video/H264");

// WCC_WATCH_SCREENSHOTS=DIR: each page's screenshot at `step` goes to DIR/PAGE-STEP.png (a
// screenshot is no user gesture).
async function screenshots(step) {
  const dir = process.env.WCC_WATCH_SCREENSHOTS;
  if (!dir) return;
  await Promise.all(Object.entries(pages).map(([n, {page}]) =>
    page.screenshot({path: `${dir}/${n}-${step}.png`}).catch((err) => log(`${n}: no screenshot: ${err.message}`))));
}

// ---- the test ----------------------------------------------------------------------------------

let failed = false;
try {
  const launchedAt = Date.now();
  const [firefox, chromium, chromiumBlocked] = await Promise.all([
    launchFirefox(),
    web.launchChromium(["--autoplay-policy=no-user-gesture-required", secureOrigin]),
    web.launchChromium(["--autoplay-policy=user-gesture-required", secureOrigin]),
  ]);
  browsers = [firefox, chromium, chromiumBlocked];
  log(`Firefox ${await firefox.version()} and 2 Chromium launched in ${seconds(Date.now() - launchedAt)}`);

  const port = await startServer(0);
  wsUrl = `ws://${senderAddress}:${port}/ws`;
  // The first page opens while the server is down: it says so and tries again by itself.
  server.kill("SIGKILL");
  await new Promise((resolve) => server.once("exit", resolve));
  log(`chrome1 opens ?watch=show with its server down (signaling: ${wsUrl})`);
  await openPage("chrome1", chromium, "chromium");
  await web.waitForPage(pages.chrome1.page, () => {
    const state = document.querySelector('[data-testid="watch-state"]');
    return state.dataset.state === "server" && /Trying again in \d+ s/.test(state.textContent);
  }).catch(async () => {
    const text = await pages.chrome1.page.evaluate(
        () => document.querySelector('[data-testid="watch-state"]').textContent);
    throw new Error(`chrome1 should say it cannot reach the server and tries again, it says "${text}"`);
  });
  await startServer(port);
  await web.waitForState(pages.chrome1.page, "connection-state", "connected");
  log("the server is up: chrome1 connected by itself; the other pages open");
  // chrome2 asks for chrome1's name once chrome1 has it: the server gives it another one.
  await Promise.all([
    openPage("chrome2", chromium, "chromium", {ask: "chrome1"}),
    openPage(BLOCKED, chromiumBlocked, "chromium", {noGesture: true}),
    openPage("fox1", firefox, "firefox"),
  ]);
  const names = Object.keys(pages);
  await web.waitForState(pages.chrome2.page, "connection-state", "connected");
  const renamed = await pages.chrome2.page.evaluate(
      () => document.querySelector('[data-testid="watch-name"]').textContent);
  if (renamed === "chrome1" || !renamed.startsWith("chrome1")) {
    throw new Error(`chrome2 asked for the taken name chrome1 and is called "${renamed}"`);
  }
  log(`chrome2 asked for chrome1's name and watches as "${renamed}"`);
  await all(names.map((n) => n === BLOCKED ? waitReport(n, "shows waiting", (r) => r.state === "waiting")
                                           : expectWatchState(n, ["waiting"])));

  log("show starts: every page calls it and plays");
  let gst = startSender("show1");
  await gst.waitMessage("webrtccall-registered");
  const normal = names.filter((n) => n !== BLOCKED);
  await all([
    ...normal.map((n) => expectWatchState(n, ["live"]).then(() => expectPlaying(n, codecOf(n)))),
    (async () => {
      // Autoplay with sound blocked: live, muted, with the Play button (Chromium presents
      // the frames of a blocked MediaStream video, paused, anyway: the page plays it muted).
      const r = await waitReport(BLOCKED, "shows the Play button, live, muted",
                                 (r) => r.state === "live" && r.stream && r.playButton && r.muted &&
                                        !r.paused);
      log(`${BLOCKED} before the click: ${JSON.stringify(r)}`);
      await screenshots("blocked");
      const {page} = pages[BLOCKED];
      log(`${BLOCKED}: Play button shown, video muted; clicking Play`);
      await web.byTestId(page, "play-button").click();
      await markNotReloaded(BLOCKED);
      await expectPlaying(BLOCKED, codecOf(BLOCKED));
      const after = await page.evaluate(() => ({
        button: !document.querySelector('[data-testid="play-button"]').hidden,
        muted: document.querySelector('[data-testid="remote-video"]').muted,
        paused: document.querySelector('[data-testid="remote-video"]').paused,
      }));
      if (after.button || after.muted || after.paused) {
        throw new Error(`${BLOCKED}: after the click: ${JSON.stringify(after)}, not playing with sound`);
      }
    })(),
  ]);
  expectTwoEncoders(gst);
  await screenshots("live");

  log("the server dies under the calls: they go on, the pages and show come back by themselves");
  const registered = gst.count("webrtccall-registered");
  server.kill("SIGKILL");
  await new Promise((resolve) => server.once("exit", resolve));
  await all(names.map((n) => web.waitForState(pages[n].page, "connection-state", "reconnecting")));
  const during = await all(names.map(async (n) => {
    if ((await watchState(pages[n].page)) !== "live") throw new Error(`${n} is no longer live without the server`);
    return (await web.remoteFrames(pages[n].page)).streamFrames;
  }));
  await startServer(port);
  await all(names.map((n) => web.waitForState(pages[n].page, "connection-state", "connected", 40_000)));
  await waitUntil("show registers again", () => gst.count("webrtccall-registered") > registered, 40_000);
  await all(names.map(async (n, i) => {
    // The same stream, still live, 15 frames (half a second) more than during the outage.
    await expectWatchState(n, ["live"]);
    await waitUntil(`${n}'s video keeps playing after the outage`,
                    async () => (await web.remoteFrames(pages[n].page)).streamFrames >= during[i] + 15);
  }));
  log("the calls went on through the outage; the pages and show are registered again");

  // The broadcast ends (SIGINT: the element hangs up, "stopped") or drops (SIGKILL: the server
  // hangs up for it, "disconnected"): every page says so, its video empty.
  async function expectEnded(how, words) {
    await all(names.map((n) => expectWatchState(n, ["ended", "waiting"])));
    const shown = await all(names.map(async (n) => {
      const {empty, text} = await pages[n].page.evaluate(() => ({
        empty: document.querySelector('[data-testid="remote-video"]').srcObject === null,
        text: document.querySelector('[data-testid="watch-state"]').textContent,
      }));
      if (!empty) throw new Error(`${n} still shows a stream after show ${how}`);
      if (!text.includes(words)) throw new Error(`${n} says "${text}" after show ${how}, not "${words}"`);
      return text;
    }));
    log(`show ${how}: the pages show ${JSON.stringify(shown)}`);
  }
  log("show stops: the pages say so");
  await gst.stop();
  await expectEnded("stopped", "show hung up: its pipeline stopped.");
  await screenshots("stopped");

  log("show starts again, and is killed: the pages say so");
  gst = startSender("show1b");
  await all(names.map((n) => expectWatchState(n, ["live"], 30_000).then(() => expectPlaying(n, codecOf(n)))));
  gst.kill("SIGKILL");
  await gst.exited;
  await expectEnded("was killed", "show went offline (disconnected from the server).");

  log("show starts again: every page plays again, without a reload");
  // This time show also calls fox1 itself (peer=fox1), while fox1 calls show: whichever offer
  // goes first, or both at once (glare: the smaller name, fox1, keeps its offer), one call.
  gst = startSender("show2", ["peer=fox1"]);
  await gst.waitMessage("webrtccall-registered");
  await all(names.map((n) => expectWatchState(n, ["live"], 30_000).then(() => expectPlaying(n, codecOf(n)))));
  expectTwoEncoders(gst);
  const foxCalls = gst.messages.filter((m) => m.name === "webrtccall-call-started" && m.fields.peer === "fox1");
  log(`show2's calls with fox1: ${foxCalls.map((m) => m.fields.direction).join(", ")}`);
  if (gst.count("webrtccall-call-connected", "fox1") !== 1) {
    throw new Error(`show2 connected ${gst.count("webrtccall-call-connected", "fox1")} calls with fox1, not 1`);
  }

  for (const n of names) {
    const {calls, notReloaded} = await pages[n].page.evaluate(
        () => ({calls: window.__testGetUserMedia, notReloaded: window.__testNotReloaded === true}));
    if (calls !== 0) throw new Error(`${n} called getUserMedia ${calls} times`);
    if (pages[n].browser === "chromium" && !(await pages[n].page.evaluate(() => window.isSecureContext))) {
      throw new Error(`${n} is no secure context: it could not call getUserMedia`);
    }
    if (!notReloaded) throw new Error(`${n} was reloaded`);
  }
  if (pageErrors.length) throw new Error(`uncaught errors in the pages:\n  ${pageErrors.join("\n  ")}`);
  log("no page called getUserMedia or reloaded");
  if (process.env.WCC_BROWSER_VERBOSE) await report();
} catch (err) {
  failed = true;
  console.error(`FAIL after ${elapsed()}: ${err.message}`);
  await report();
}
clearTimeout(watchdog);
console.log(`browser-watch: ${failed ? "FAIL" : "ok"} (${elapsed()})`);
await finish(failed ? 1 : 0);
