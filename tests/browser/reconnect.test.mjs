// The signaling server dies under two pages in a call and comes back 8 s later on the same
// port: the call goes on (it is peer to peer), both pages say they are reconnecting, come back
// by themselves with their own names, and can call again. Run by run.sh inside its namespace;
// this test starts and kills its own server (WCC_SERVER_BIN), the pages come from URL's.
//   node reconnect.test.mjs http://127.0.0.1:PORT/
import {spawn} from "node:child_process";

import * as web from "./web-client.mjs";

const {STEP_TIMEOUT_MS, byTestId, userEntry, waitForState, login} = web;

const url = process.argv[2];
const serverBin = process.env.WCC_SERVER_BIN;
if (!url || !serverBin) {
  console.error("usage: WCC_SERVER_BIN=... node reconnect.test.mjs SERVER-URL");
  process.exit(2);
}
const OUTAGE_MS = 8000;
const started = Date.now();
const log = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);
const watchdog = setTimeout(() => {
  console.error("FAIL: the test did not finish within 150 s");
  process.exit(1);
}, 150_000);

// A server of the test's own on 127.0.0.1; `port` 0 picks a free one. Resolves to
// {process, port} once it listens.
function startServer(port) {
  return new Promise((resolve, reject) => {
    const child = spawn(serverBin, ["--address", "127.0.0.1", "--port", String(port)],
                        {stdio: ["ignore", "pipe", "inherit"]});
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/Listening on http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) resolve({process: child, port: Number(m[1])});
    });
    child.on("exit", (code) => reject(new Error(`server exited (${code}) before listening: ${out}`)));
  });
}

async function frames(page) {
  return page.$eval('[data-testid="remote-video"]',
                    (v) => v.getVideoPlaybackQuality().totalVideoFrames);
}

const browser = await web.launchChromium();
let server = null;
let failed = false;
const pages = {};
try {
  server = await startServer(0);
  const port = server.port;
  const pageUrl = `${url}?server=${encodeURIComponent(`ws://127.0.0.1:${port}/`)}`;
  for (const name of ["alice", "bob"]) {
    const context = await browser.newContext();
    pages[name] = await context.newPage();
    pages[name].setDefaultTimeout(STEP_TIMEOUT_MS);
    await pages[name].goto(pageUrl);
    await login(pages[name], name);
  }
  const {alice, bob} = pages;
  await userEntry(alice, "bob").click();
  await waitForState(bob, "call-state", "incoming");
  await byTestId(bob, "accept-button").click();
  await waitForState(alice, "call-state", "in-call");
  await waitForState(bob, "call-state", "in-call");
  await alice.waitForFunction(() => document.querySelector('[data-testid="remote-video"]')
                                        .getVideoPlaybackQuality().totalVideoFrames > 10);
  log("alice and bob are in a call");

  server.process.kill("SIGKILL");
  server = null;
  const down = Date.now();
  await Promise.all([alice, bob].map((p) => waitForState(p, "connection-state", "reconnecting")));
  const shown = await byTestId(alice, "connection-state").textContent();
  if (!/reconnecting in \d+ s/.test(shown)) throw new Error(`alice's page says "${shown}"`);
  log(`server killed; alice's page says "${shown}"`);

  // Through the outage the call stays up and keeps decoding, second after second.
  const before = {alice: await frames(alice), bob: await frames(bob)};
  while (Date.now() - down < OUTAGE_MS) {
    const a = await frames(alice), b = await frames(bob);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if ((await frames(alice)) <= a || (await frames(bob)) <= b) {
      throw new Error("a second without decoded frames during the outage");
    }
    for (const p of [alice, bob]) await waitForState(p, "call-state", "in-call", 100);
  }
  log(`outage over: frames alice ${before.alice} -> ${await frames(alice)}, ` +
      `bob ${before.bob} -> ${await frames(bob)}`);

  server = await startServer(port);
  const up = Date.now();
  // Default backoff: the attempt after an 8 s outage is due within one 8-16 s step.
  for (const p of [alice, bob]) await waitForState(p, "connection-state", "connected", 20_000);
  log(`both pages registered again ${Date.now() - up} ms after the restart`);
  for (const [name, p] of Object.entries(pages)) {
    const text = await byTestId(p, "connection-state").textContent();
    if (text !== `Connected as ${name}`) throw new Error(`${name}'s page says "${text}"`);
    await waitForState(p, "call-state", "in-call", 100);
  }
  await userEntry(alice, "bob").waitFor();

  // A new call through the new server.
  await byTestId(alice, "hangup-button").click();
  await waitForState(bob, "call-state", "idle");
  await userEntry(bob, "alice").click();
  await waitForState(alice, "call-state", "incoming");
  await byTestId(alice, "accept-button").click();
  await waitForState(bob, "call-state", "in-call");
  const f = await frames(bob);
  await bob.waitForFunction((n) => document.querySelector('[data-testid="remote-video"]')
                                       .getVideoPlaybackQuality().totalVideoFrames > n + 10, f);
  log("a new call through the restarted server shows video");
} catch (err) {
  failed = true;
  console.error(`FAIL: ${err.message}`);
  for (const [name, p] of Object.entries(pages)) {
    const state = await p.evaluate(() => document.querySelector('[data-testid="connection-state"]')
                                             .textContent).catch(() => "?");
    console.error(`${name}: ${state}`);
  }
} finally {
  if (server) server.process.kill("SIGTERM");
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
if (failed) process.exit(1);
console.log("browser-reconnect: passed");
