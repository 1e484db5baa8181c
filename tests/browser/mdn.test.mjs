// The webrtccall element against a page that behaves as MDN's webrtc-from-chat client
// (apps/mdn-like.js): called, it answers and then, because it adds its camera with
// addTransceiver() after setRemoteDescription(), sends a NEW video-offer in the same call.
//   1. The pipeline "gst1" (peer=mdn1) calls the page "mdn1": the page answers, re-offers; the
//      element answers the re-offer on the same call (no glare, no second call): the page
//      decodes the element's test pattern throughout (frames counted across the
//      renegotiation, no freeze), the element receives the page's video and audio (sent
//      only on the m-lines of the re-offer).
//   2. The page "mdn2" calls the pipeline "gst2" (tracks added before the offer): media both
//      ways.
// Each ends with the page's hang-up, which the element reports.
// On a tree whose element refuses re-offers (main before branch `neg`), step 1 fails: the
// element ends its call ("glare: answering the call of mdn1 instead") and answers on a new
// webrtcbin the page cannot use, or ignores the offer.
// With renegotiation but webrtcbin's own answer to the page's re-offer (a=setup:active), the
// call the element placed fails: the element is that call's DTLS server (the page answered
// the first offer active), so Chromium refuses the answer ("Failed to set SSL role for the
// transport") or DTLS ends with a fatal SSL error. The element keeps the role (DtlsRole in
// gst-plugin/negotiation.h).
// Run by run.sh inside its namespace (WCC_SERVER_BIN: the server; this test starts its own,
// serving tests/browser/apps):   node mdn.test.mjs http://127.0.0.1:PORT/
import {
  expectFrames, log, openApp, pages, run, startPipeline, startServer, waitUntil,
} from "./apps-lib.mjs";

const FREEZE_MS = 3000;  // a gap in the presented frames this long is a frozen picture
let server;

async function mediaBothWays(pageName, gst) {
  const {page} = pages[pageName];
  await waitUntil(`${pageName} is in the call`, () => page.evaluate(() => window.app.state === "in-call"));
  await expectFrames(pageName, 30, "(the element's test pattern) ");
  await gst.expectBuffers("vsink", 30, "(the page's camera) ");
  await gst.expectBuffers("asink", 25, "(the page's microphone) ");
  const frames = await expectFrames(pageName, 60, "while the element receives ");
  const {maxGapMs, tracks} = await page.evaluate(() => ({
    maxGapMs: window.probe.maxGapMs,
    // Distinct tracks: ontrack fires again for the same track when a later description gives
    // it a stream (msid) it had not.
    tracks: new Set(window.app.remoteTracks.filter((t) => t.kind === "video").map((t) => t.id)).size,
  }));
  log(`${pageName}: ${frames} frames presented, longest gap ${maxGapMs.toFixed(0)} ms, ` +
      `${tracks} remote video track(s); ${gst.label}: video ${gst.buffers("vsink")}, ` +
      `audio ${gst.buffers("asink")} buffers`);
  if (maxGapMs > FREEZE_MS) {
    throw new Error(`${pageName}: the remote video froze for ${maxGapMs.toFixed(0)} ms`);
  }
  if (tracks !== 1) throw new Error(`${pageName} got ${tracks} remote video tracks, not 1`);
}

async function hangUpFromPage(pageName, gst) {
  await pages[pageName].page.evaluate(() => window.app.hangUp());
  const ended = await gst.waitMessage("webrtccall-call-ended", {match: (f) => f.peer === pageName});
  if (!/hung up/.test(ended.fields.reason)) {
    throw new Error(`${gst.label}'s call ended "${ended.fields.reason}", not "${pageName} hung up"`);
  }
}

await run("browser-mdn", 160_000, [
  ["a server serving the app pages", async () => {
    server = await startServer();
  }],
  ["gst1 calls the mdn-like page; it answers, then re-offers in the same call", async () => {
    const page = await openApp(server, "mdn-like", {name: "mdn1"});
    const gst = startPipeline("gst1", server.ws, ["username=gst1", "peer=mdn1"]);
    await waitUntil("mdn1 answers and then sends its own offer", () => page.evaluate(
        () => window.app.answersSent >= 1 && window.app.offersSent >= 1));
    await waitUntil("gst1 answers mdn1's re-offer", async () => {
      gst.check();
      if (gst.count("webrtccall-call-ended")) {
        const m = gst.messages.find((x) => x.name === "webrtccall-call-ended");
        throw new Error(`gst1 ended its call after mdn1's re-offer: "${m.fields.reason}"`);
      }
      return page.evaluate(() => window.app.answersReceived >= 1 && window.app.signalingState === "stable");
    });
    await mediaBothWays("mdn1", gst);
    const started = gst.count("webrtccall-call-started");
    const ended = gst.count("webrtccall-call-ended");
    const offersReceived = await page.evaluate(() => window.app.offersReceived);
    if (started !== 1 || ended !== 0) {
      throw new Error(`gst1: ${started} call-started and ${ended} call-ended, not one call going on`);
    }
    log(`mdn1 received ${offersReceived} offer(s), sent ${await page.evaluate(() => window.app.offersSent)}`);
    await hangUpFromPage("mdn1", gst);
    gst.kill("SIGINT");
  }],
  ["the mdn-like page calls gst2: media both ways", async () => {
    const gst = startPipeline("gst2", server.ws, ["username=gst2"]);
    await gst.waitMessage("webrtccall-registered");
    const page = await openApp(server, "mdn-like", {name: "mdn2", call: "gst2"});
    await waitUntil("gst2 answers", () => page.evaluate(() => window.app.answersReceived >= 1));
    await mediaBothWays("mdn2", gst);
    if (gst.count("webrtccall-call-started") !== 1 || gst.count("webrtccall-call-ended") !== 0) {
      throw new Error("gst2: not exactly one call going on");
    }
    await hangUpFromPage("mdn2", gst);
    gst.kill("SIGINT");
  }],
]);
