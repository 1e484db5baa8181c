// The webrtccall element against a page that starts its call with audio only and adds its
// camera's video track a few seconds in (renegotiation: a new video-offer in the same call),
// then removes it again (another offer): apps/late-track.js.
//   1. The page "late1" calls the pipeline "gstl1" (audio, and receiving video);
//   2. the pipeline "gstl2" (peer=late2) calls the page "late2", which answers with audio only.
// Each time: before the video track, the element gets audio and no video; once the page adds
// it, the element gets a new video source pad and its buffers; after the page removes it,
// audio still flows to the element; the page decodes the element's video throughout (no
// freeze, frames counted across both renegotiations); one call, never ended until the page
// hangs up.
// On a tree whose element refuses re-offers (main before branch `neg`), the video added mid-call
// never reaches the element: its offer is ignored ("not supported") or taken for glare.
// With renegotiation but webrtcbin's own answer to the page's re-offer (a=setup:active), the
// call the element placed fails: the element is that call's DTLS server (the page answered
// the first offer active), so Chromium refuses the answer ("Failed to set SSL role for the
// transport") or DTLS ends with a fatal SSL error. The element keeps the role (DtlsRole in
// gst-plugin/negotiation.h).
// Run by run.sh inside its namespace (WCC_SERVER_BIN: the server; this test starts its own,
// serving tests/browser/apps):   node late-track.test.mjs http://127.0.0.1:PORT/
import {
  expectFrames, log, openApp, pages, run, startPipeline, startServer, waitUntil,
} from "./apps-lib.mjs";

const FREEZE_MS = 3000;
const VIDEO_AFTER_MS = 4000;   // into the call, the page adds its video track
const REMOVE_AFTER_MS = 4000;  // and this long after, removes it
let server;

async function lateVideo(pageName, gst) {
  const {page} = pages[pageName];
  const app = (expr) => page.evaluate(expr);
  const noCallEnded = () => {
    gst.check();
    const ended = gst.messages.find((m) => m.name === "webrtccall-call-ended");
    if (ended) throw new Error(`${gst.label} ended the call: "${ended.fields.reason}"`);
  };
  await waitUntil(`${pageName} is in the call`, () => app(() => window.app.state === "in-call"));
  await expectFrames(pageName, 30, "(the element's test pattern, audio-only page) ");
  await gst.expectBuffers("asink", 25, "(the page's microphone) ");
  const early = {video: gst.buffers("vsink"), added: await app(() => window.app.videoAddedAt)};
  if (!early.added && early.video) {
    throw new Error(`${gst.label} received ${early.video} video buffers from an audio-only page`);
  }

  await waitUntil(`${pageName} adds its video track and the element answers the re-offer`, async () => {
    noCallEnded();
    return app(() => window.app.videoAddedAt > 0 && window.app.signalingState === "stable" &&
               window.app.renegotiated.length >= 1);
  }, VIDEO_AFTER_MS + 20_000);
  await waitUntil(`${gst.label} receives the video added mid-call`, () => {
    noCallEnded();
    return gst.buffers("vsink") >= 30;
  });
  await expectFrames(pageName, 30, "after the video was added ");
  log(`${gst.label}: ${gst.buffers("vsink")} video buffers from the track added mid-call`);

  await waitUntil(`${pageName} removes its video track and the element answers`, async () => {
    noCallEnded();
    return app(() => window.app.videoRemovedAt > 0 && window.app.signalingState === "stable" &&
               window.app.renegotiated.length >= 2);
  }, REMOVE_AFTER_MS + 20_000);
  await gst.expectBuffers("asink", 25, "after the video was removed ");
  const frames = await expectFrames(pageName, 60, "after the video was removed ");
  noCallEnded();
  const {maxGapMs, renegotiated, offersReceived, offersSent} = await app(() => ({
    maxGapMs: window.probe.maxGapMs, renegotiated: window.app.renegotiated,
    offersReceived: window.app.offersReceived, offersSent: window.app.offersSent,
  }));
  log(`${pageName}: ${frames} frames presented, longest gap ${maxGapMs.toFixed(0)} ms; offers ` +
      `sent ${offersSent}, received ${offersReceived}; renegotiations: ${renegotiated.join(", ")}`);
  if (maxGapMs > FREEZE_MS) throw new Error(`${pageName}: the remote video froze for ${maxGapMs.toFixed(0)} ms`);
  if (gst.count("webrtccall-call-started") !== 1) {
    throw new Error(`${gst.label}: ${gst.count("webrtccall-call-started")} call-started, not 1`);
  }
  await app(() => window.app.hangUp());
  await gst.waitMessage("webrtccall-call-ended", {match: (f) => f.peer === pageName});
  gst.kill("SIGINT");
}

const query = (name, extra = {}) => ({
  name, videoAfter: VIDEO_AFTER_MS, removeAfter: REMOVE_AFTER_MS, ...extra,
});

await run("browser-late-track", 170_000, [
  ["a server serving the app pages", async () => {
    server = await startServer();
  }],
  ["the late-track page calls gstl1 with audio, adds video, removes it", async () => {
    const gst = startPipeline("gstl1", server.ws, ["username=gstl1"]);
    await gst.waitMessage("webrtccall-registered");
    await openApp(server, "late-track", query("late1", {call: "gstl1"}));
    await lateVideo("late1", gst);
  }],
  ["gstl2 calls the late-track page; it answers with audio, adds video, removes it", async () => {
    await openApp(server, "late-track", query("late2"));
    const gst = startPipeline("gstl2", server.ws, ["username=gstl2", "peer=late2"]);
    await lateVideo("late2", gst);
  }],
]);
