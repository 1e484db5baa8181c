// A third user cannot end or disturb a call between two pages: the server stamps who sent a
// message, and the web client must act only on what comes from its call's peer. "mallory" (a
// raw WebSocket in a page of her own, not the web client) sends alice and bob each a hang-up
// posing as the other, a decline, an answer and a candidate: first while alice is calling
// and bob's page rings (alice must not take mallory's answer for bob's, bob's call must keep
// ringing), then during the call, with an offer to bob on top (answered `busy`). Both stay in
// the call with video still decoded and nothing in their banners; bob's own hang-up still
// ends it. Run by run.sh inside its namespace:
//   node spoof.test.mjs http://127.0.0.1:PORT/
import * as web from "./web-client.mjs";

const {STEP_TIMEOUT_MS, byTestId, userEntry, waitForState, login, bannerText} = web;

const url = process.argv[2];
if (!url) {
  console.error("usage: node spoof.test.mjs SERVER-URL");
  process.exit(2);
}
const wsUrl = new URL("ws", url).href.replace(/^http/, "ws");
const started = Date.now();
const log = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);
const watchdog = setTimeout(() => {
  console.error("FAIL: the test did not finish within 120 s");
  process.exit(1);
}, 120_000);

const browser = await web.launchChromium();
const pages = {};

async function openPage(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const consoleLines = [];
  page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  pages[name] = {page, consoleLines};
  await page.goto(url);
  return page;
}

async function frames(page) {
  return page.$eval('[data-testid="remote-video"]',
                    (v) => v.getVideoPlaybackQuality().totalVideoFrames);
}

async function expectVideoGoesOn(name, more) {
  const {page} = pages[name];
  const first = await frames(page);
  await page.waitForFunction(([n]) => {
    return document.querySelector('[data-testid="remote-video"]')
               .getVideoPlaybackQuality().totalVideoFrames >= n;
  }, [first + more], {timeout: STEP_TIMEOUT_MS, polling: 50}).catch(() => {
    throw new Error(`${name}: the remote video stopped after ${first} frames`);
  });
}

async function report() {
  for (const [name, {page, consoleLines}] of Object.entries(pages)) {
    console.error(`---- ${name} ----`);
    try {
      console.error(await page.evaluate(() => {
        const get = (id) => document.querySelector(`[data-testid="${id}"]`);
        return `call ${get("call-state").dataset.state}; banner "${
            get("error-banner").hidden ? "" : get("error-message").textContent}"; received by ` +
            `the raw socket: ${JSON.stringify(window.__received ?? null)}`;
      }));
    } catch (err) {
      console.error(`(page state unavailable: ${err.message})`);
    }
    console.error("console:\n  " + (consoleLines.join("\n  ") || "(empty)"));
  }
}

let failed = false;
try {
  const alice = await openPage("alice");
  const bob = await openPage("bob");
  await login(alice, "alice");
  await login(bob, "bob");
  const mallory = await openPage("mallory");
  await mallory.evaluate(async (wsUrl) => {
    window.__received = [];
    const ws = new WebSocket(wsUrl, "json");
    await new Promise((resolve, reject) => {
      ws.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (msg.type === "id") ws.send(JSON.stringify({type: "username", name: "mallory", id: msg.id}));
        if (msg.type === "userlist" && msg.users.includes("mallory")) resolve();
        if (msg.type !== "userlist") window.__received.push({type: msg.type, name: msg.name, reason: msg.reason});
      };
      ws.onerror = () => reject(new Error("mallory's WebSocket failed"));
    });
    window.__mallory = ws;
  }, wsUrl);
  // What mallory sends to `target`: a hang-up posing as the other user, a decline, an answer,
  // a candidate.
  const disturb = (targets) => mallory.evaluate((targets) => {
    const sdp = {type: "answer", sdp: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"};
    for (const target of targets) {
      const ws = window.__mallory;
      ws.send(JSON.stringify({type: "hang-up", name: target === "alice" ? "bob" : "alice", target}));
      ws.send(JSON.stringify({type: "hang-up", target, reason: "declined"}));
      ws.send(JSON.stringify({type: "video-answer", target, sdp}));
      ws.send(JSON.stringify({type: "new-ice-candidate", target,
                              candidate: {candidate: "candidate:1 1 udp 1 10.77.0.9 9 typ host",
                                          sdpMid: "0", sdpMLineIndex: 0}}));
    }
  }, targets);
  // Mallory ends with a chat message: once a page shows it, it has handled all she sent
  // before (one connection, in order).
  const handled = async (marker) => {
    await mallory.evaluate((text) => window.__mallory.send(JSON.stringify({type: "message", text})),
                           marker);
    for (const page of [alice, bob]) {
      await byTestId(page, "chat-message").filter({hasText: marker}).waitFor();
    }
  };

  // While alice is calling and bob's page rings: mallory's answer must not be taken as bob's.
  await userEntry(alice, "bob").click();
  await waitForState(bob, "call-state", "incoming");
  await waitForState(alice, "call-state", "calling");
  await disturb(["alice", "bob"]);
  await handled("disturb-1");
  await waitForState(alice, "call-state", "calling", 2000).catch((err) => {
    throw new Error(`alice: mallory's messages changed her call: ${err.message}`);
  });
  await waitForState(bob, "call-state", "incoming", 2000).catch((err) => {
    throw new Error(`bob: mallory's messages changed the ringing call: ${err.message}`);
  });
  await byTestId(bob, "accept-button").click();
  await Promise.all([waitForState(alice, "call-state", "in-call"),
                     waitForState(bob, "call-state", "in-call")]);
  await Promise.all([expectVideoGoesOn("alice", 15), expectVideoGoesOn("bob", 15)]);
  log("mallory's messages while alice was calling changed nothing: alice and bob are in a call");

  // In the call: the same again, and an offer to bob.
  await disturb(["alice", "bob"]);
  await mallory.evaluate(() => window.__mallory.send(JSON.stringify(
      {type: "video-offer", target: "bob", sdp: {type: "offer", sdp: "v=0\r\n"}})));
  // Mallory's offer is answered `busy` by bob's page: by then bob's page has handled (and
  // must have ignored) everything mallory sent before it.
  await mallory.waitForFunction(() => window.__received.some((m) => m.type === "hang-up"),
                                null, {timeout: STEP_TIMEOUT_MS, polling: 50}).catch(() => {
    throw new Error("mallory's offer was not answered with hang-up busy");
  });
  const answer = await mallory.evaluate(() => window.__received.find((m) => m.type === "hang-up"));
  if (answer.name !== "bob" || answer.reason !== "busy") {
    throw new Error(`mallory's offer was answered with ${JSON.stringify(answer)}, not bob's busy`);
  }
  for (const name of ["alice", "bob"]) {
    const {page} = pages[name];
    await waitForState(page, "call-state", "in-call", 1000).catch((err) => {
      throw new Error(`${name}: a message from mallory changed the call: ${err.message}`);
    });
    const banner = await bannerText(page);
    if (banner) throw new Error(`${name} is told "${banner}" after mallory's messages`);
  }
  await Promise.all([expectVideoGoesOn("alice", 30), expectVideoGoesOn("bob", 30)]);
  log("mallory's hang-ups, answers, candidates and offer changed nothing; video goes on");

  await byTestId(bob, "hangup-button").click();
  await waitForState(alice, "call-state", "idle");
  log("bob's own hang-up ends the call");
} catch (err) {
  failed = true;
  console.error(`FAIL: ${err.message}`);
  await report();
} finally {
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
if (failed) process.exit(1);
log("browser-spoof: passed");
