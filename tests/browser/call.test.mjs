// Headless Chromium pages run the web client (examples/web) against the server at URL, as a
// person would: log in, chat, call, accept, see the other's video, hang up, decline, call
// back, call each other at once (glare), call someone busy, someone gone, without a camera,
// and log in with a name the server refuses. Run by run.sh, which makes the network
// namespace and starts the server.
//   node call.test.mjs http://127.0.0.1:PORT/
// WCC_BROWSER_VERBOSE=1 prints every page's state and console at the end, also on success.
import * as web from "./web-client.mjs";

const {STEP_TIMEOUT_MS, byTestId, userEntry, waitForState, login, bannerText} = web;

async function expectBanner(name, words) {
  log(`${name} is told: "${await web.expectBanner(clients[name].page, name, words)}"`);
}

const url = process.argv[2];
if (!url) {
  console.error("usage: node call.test.mjs SERVER-URL");
  process.exit(2);
}

const TOTAL_TIMEOUT_MS = 150_000;  // under the 180 s meson gives run.sh

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (text) => console.log(`[${elapsed()}] ${text}`);

// Whatever happens, never outlive the harness's timeout with a browser left running.
const watchdog = setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${TOTAL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

const browser = await web.launchChromium();

// ---- pages --------------------------------------------------------------------------------

const clients = {};  // name -> {page, consoleLines}
const pageErrors = [];

// Opens the web client in a browser context of its own (its own profile, like another
// person). relay: a Relay that carries the page's signaling WebSocket. noCamera: the browser
// refuses camera and microphone, as when a person clicks "Block". lateScript: the page's
// script (app.js) arrives 700 ms after the page asked for it, as on a slow network.
async function openClient(name, {relay, noCamera, lateScript} = {}) {
  const context = await browser.newContext();
  if (relay) await context.routeWebSocket(() => true, (ws) => relay.attach(ws));
  if (lateScript) {
    await context.route("**/app.js", async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 700));
      await route.continue();
    });
  }
  if (noCamera) {
    await context.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () =>
          Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
    });
  }
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const consoleLines = [];
  page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
  clients[name] = {page, consoleLines};
  await page.goto(url);
  return page;
}

async function closeClient(name) {
  await clients[name].page.context().close();
  delete clients[name];
}






// The remote video shows the peer's camera: it has a size, and decoded frames keep coming.
async function expectRemoteVideoPlaying(name) {
  const {page} = clients[name];
  const video = '[data-testid="remote-video"]';
  await page.waitForFunction((sel) => {
    const v = document.querySelector(sel);
    return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0;
  }, video, {timeout: STEP_TIMEOUT_MS, polling: 100});
  const first = await page.$eval(video, (v) => v.getVideoPlaybackQuality().totalVideoFrames);
  // The fake camera sends about 30 frames a second: ten more frames is a third of a second.
  await page.waitForFunction(([sel, n]) => {
    return document.querySelector(sel).getVideoPlaybackQuality().totalVideoFrames >= n;
  }, [video, first + 10], {timeout: STEP_TIMEOUT_MS, polling: 100});
  const {width, height, frames} = await page.$eval(video, (v) => ({
    width: v.videoWidth,
    height: v.videoHeight,
    frames: v.getVideoPlaybackQuality().totalVideoFrames,
  }));
  log(`${name}: remote video ${width}x${height} playing, decoded frames ${first} -> ${frames}`);
}

// Idle: no call, the remote video cleared.
async function expectIdle(name) {
  const {page} = clients[name];
  await waitForState(page, "call-state", "idle");
  await page.waitForFunction(
      () => document.querySelector('[data-testid="remote-video"]').srcObject === null,
      null, {timeout: STEP_TIMEOUT_MS, polling: 100});
}

// ---- a WebSocket relay to stage races ------------------------------------------------------

// Carries the signaling WebSockets of some pages through the test. While `holdOffers`, the
// offers the server sends them (and whatever follows) wait for release(): both sides are then
// sure to be calling each other when the offers land, which is glare on demand. While
// `dropUserLists`, user lists are not delivered: a page keeps showing someone who has left.
class Relay {
  holdOffers = false;
  dropUserLists = false;
  offersSent = 0;
  answersSent = 0;
  #held = [];

  attach(ws) {
    const server = ws.connectToServer();
    ws.onMessage((text) => {
      const type = typeOf(text);
      if (type === "video-offer") this.offersSent++;
      if (type === "video-answer") this.answersSent++;
      server.send(text);
    });
    server.onMessage((text) => {
      const type = typeOf(text);
      if (this.dropUserLists && type === "userlist") return;
      if (this.holdOffers && (type === "video-offer" || this.#held.some((h) => h.ws === ws))) {
        this.#held.push({ws, text});
      } else {
        ws.send(text);
      }
    });
  }

  release() {
    this.holdOffers = false;
    for (const {ws, text} of this.#held.splice(0)) ws.send(text);
  }
}

function typeOf(text) {
  try {
    return JSON.parse(text).type;
  } catch {
    return undefined;
  }
}

async function waitUntil(what, predicate) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ---- reporting ----------------------------------------------------------------------------

async function report() {
  for (const [name, {page, consoleLines}] of Object.entries(clients)) {
    console.error(`---- ${name} ----`);
    try {
      const state = await page.evaluate(() => {
        const get = (id) => document.querySelector(`[data-testid="${id}"]`);
        return {
          connection: `${get("connection-state").dataset.state} (${get("connection-state").textContent})`,
          call: `${get("call-state").dataset.state} (${get("call-state").textContent})`,
          banner: get("error-banner").hidden ? "" : get("error-message").textContent,
          users: [...document.querySelectorAll('[data-testid="user-entry"]')].map(
              (e) => e.textContent),
        };
      });
      console.error(JSON.stringify(state, null, 2));
    } catch (err) {
      console.error(`(page state unavailable: ${err.message})`);
    }
    console.error("console:\n  " + (consoleLines.join("\n  ") || "(empty)"));
  }
}

let stepCount = 0;
async function step(title, fn) {
  stepCount++;
  log(`${title}...`);
  await fn();
}

// ---- the scenario -------------------------------------------------------------------------

let failed = false;
try {
  let alice, bob;

  // bob's script comes late: the page must not take a login before its script is wired (a
  // script loaded by another module after the load event lost it: CI failed that way).
  await step("alice and bob open the web client and log in", async () => {
    [alice, bob] = await Promise.all([openClient("alice"), openClient("bob", {lateScript: true})]);
    await login(alice, "alice");
    await login(bob, "bob");
  });

  await step("each sees the other online, not themselves", async () => {
    await userEntry(alice, "bob").waitFor();
    await userEntry(bob, "alice").waitFor();
    const aliceSees = await byTestId(alice, "user-entry").allTextContents();
    if (aliceSees.includes("alice")) throw new Error(`alice's user list shows herself: ${aliceSees}`);
  });

  await step("alice's chat message reaches bob, as text", async () => {
    // "&lt;" would show as "<" if the page rendered messages as markup.
    const text = "hello bob & all: &lt;b&gt; stays text";
    await byTestId(alice, "chat-input").fill(text);
    await byTestId(alice, "chat-send").click();
    const got = byTestId(bob, "chat-message").filter({hasText: text});
    await got.waitFor();
    const from = await got.locator(".chat-name").textContent();
    const shown = await got.locator(".chat-text").textContent();
    if (from !== "alice" || shown !== text) {
      throw new Error(`bob shows the message as ${from}: "${shown}"`);
    }
  });

  await step("alice calls bob", async () => {
    await userEntry(alice, "bob").click();
    await waitForState(alice, "call-state", "calling");
    await waitForState(bob, "call-state", "incoming");
  });

  await step("bob accepts", async () => {
    await byTestId(bob, "accept-button").click();
    await waitForState(bob, "call-state", "in-call");
    await waitForState(alice, "call-state", "in-call");
  });

  await step("video flows both ways", async () => {
    await Promise.all([expectRemoteVideoPlaying("alice"), expectRemoteVideoPlaying("bob")]);
  });

  await step("carol calls bob while he is in a call: bob is busy", async () => {
    const carol = await openClient("carol");
    await login(carol, "carol");
    await userEntry(carol, "bob").click();
    await expectBanner("carol", "busy");
    await expectIdle("carol");
    await waitForState(bob, "call-state", "in-call");
    await closeClient("carol");
  });

  await step("bob hangs up; both return to idle", async () => {
    await byTestId(bob, "hangup-button").click();
    await Promise.all([expectIdle("alice"), expectIdle("bob")]);
    await expectBanner("alice", "hung up");
  });

  await step("bob calls alice, alice declines", async () => {
    await userEntry(bob, "alice").click();
    await waitForState(alice, "call-state", "incoming");
    await byTestId(alice, "decline-button").click();
    await Promise.all([expectIdle("alice"), expectIdle("bob")]);
    await expectBanner("bob", "declined");
  });

  await step("bob calls alice again: video flows, alice hangs up", async () => {
    await userEntry(bob, "alice").click();
    await waitForState(alice, "call-state", "incoming");
    await byTestId(alice, "accept-button").click();
    await Promise.all([expectRemoteVideoPlaying("alice"), expectRemoteVideoPlaying("bob")]);
    await byTestId(alice, "hangup-button").click();
    await Promise.all([expectIdle("alice"), expectIdle("bob")]);
  });

  const relay = new Relay();
  let dave, erin;
  await step("dave and erin call each other at the same moment (glare)", async () => {
    [dave, erin] = await Promise.all(
        [openClient("dave", {relay}), openClient("erin", {relay})]);
    await login(dave, "dave");
    await login(erin, "erin");
    await userEntry(dave, "erin").waitFor();
    await userEntry(erin, "dave").waitFor();
    relay.holdOffers = true;
    await Promise.all([userEntry(dave, "erin").click(), userEntry(erin, "dave").click()]);
    await waitUntil("both have sent an offer", () => relay.offersSent === 2);
    relay.release();
    // "dave" < "erin": dave stays the caller, erin answers his offer.
    await Promise.all([expectRemoteVideoPlaying("dave"), expectRemoteVideoPlaying("erin")]);
    await waitForState(dave, "call-state", "in-call");
    await waitForState(erin, "call-state", "in-call");
    if (relay.answersSent !== 1) throw new Error(`${relay.answersSent} answers were sent, not 1`);
  });

  await step("erin closes her page mid-call; dave returns to idle", async () => {
    await closeClient("erin");
    await expectIdle("dave");
    await expectBanner("dave", "erin");
  });

  await step("dave calls bob, who left a moment ago: bob is not online", async () => {
    relay.dropUserLists = true;  // dave keeps seeing bob
    await closeClient("bob");
    await userEntry(alice, "bob").waitFor({state: "detached"});  // the server knows bob left
    await userEntry(dave, "bob").click();
    await expectBanner("dave", "not online");
    await expectIdle("dave");
  });

  await step("frank, whose camera is blocked, calls alice: frank is told why", async () => {
    const frank = await openClient("frank", {noCamera: true});
    await login(frank, "frank");
    await userEntry(frank, "alice").click();
    await expectBanner("frank", "refused");
    await expectIdle("frank");
    await waitForState(alice, "call-state", "idle");
  });

  await step("a name the server refuses: the page says so and offers the login again", async () => {
    const page = await openClient("bad-name");
    await byTestId(page, "login-name").fill("a<b>");
    await byTestId(page, "login-button").click();
    await expectBanner("bad-name", "refused");
    await byTestId(page, "login-button").waitFor();
    await waitForState(page, "connection-state", "disconnected");
  });

  await step("a taken name: the server gives another, the page says which", async () => {
    const page = await openClient("alice-again");
    await login(page, "alice");
    await expectBanner("alice-again", "your name is now alice");
    await userEntry(page, "alice").waitFor();  // the first alice, not us
  });

  if (pageErrors.length) throw new Error(`uncaught errors in the pages:\n  ${pageErrors.join("\n  ")}`);
} catch (err) {
  failed = true;
  console.error(`FAIL after ${elapsed()} in step ${stepCount}: ${err.message}`);
  await report();
} finally {
  if (!failed && process.env.WCC_BROWSER_VERBOSE) await report();
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
}

if (failed) process.exit(1);
console.log(`[${elapsed()}] browser-call: ${stepCount} steps passed`);
