// Our web client (examples/web) against a page that behaves as MDN's webrtc-from-chat client
// (apps/mdn-like.js), through a server of this test's own:
//   1. the web client "webm" calls the page "mdn3": the page answers and then re-offers in
//      the same call (its camera added with addTransceiver() after setRemoteDescription());
//      the web client answers that offer on the same connection: video both ways;
//   2. the page "mdn4" calls the web client "webn", which accepts: video both ways.
// Each time the web client's remote video keeps playing and the page presents the web
// client's camera. Run by run.sh inside its namespace; the web client comes from run.sh's
// server at URL and signals through this test's:   node mdn-web.test.mjs http://127.0.0.1:PORT/
import * as web from "./web-client.mjs";
import {
  expectFrames, log, openApp, openWebClient, run, startServer, waitUntil, webClientFrames,
} from "./apps-lib.mjs";

const webUrl = process.argv[2];
let server;

async function bothWays(webPage, pageName) {
  await waitUntil(`the web client decodes ${pageName}'s video`,
                  async () => (await webClientFrames(webPage)) >= 30);
  const frames = await expectFrames(pageName, 30, "(the web client's camera) ");
  const before = await webClientFrames(webPage);
  await waitUntil(`the web client keeps decoding (${before} frames so far)`,
                  async () => (await webClientFrames(webPage)) >= before + 30);
  log(`${pageName}: ${frames} frames presented; the web client: ${await webClientFrames(webPage)} decoded`);
}

await run("browser-mdn-web", 150_000, [
  ["a server serving the app pages", async () => {
    server = await startServer();
  }],
  ["the web client calls the mdn-like page; it answers, re-offers; the web client answers", async () => {
    const page = await openApp(server, "mdn-like", {name: "mdn3"});
    const webPage = await openWebClient(webUrl, server, "webm");
    await web.userEntry(webPage, "mdn3").click();
    await web.waitForState(webPage, "call-state", "in-call");
    await waitUntil("mdn3's re-offer is answered", () => page.evaluate(
        () => window.app.offersSent >= 1 && window.app.answersReceived >= 1 &&
              window.app.signalingState === "stable"));
    await bothWays(webPage, "mdn3");
    await web.byTestId(webPage, "hangup-button").click();
    await waitUntil("mdn3 hangs up too", () => page.evaluate(() => window.app.state === "idle"));
  }],
  ["the mdn-like page calls the web client, which accepts", async () => {
    const webPage = await openWebClient(webUrl, server, "webn");
    await openApp(server, "mdn-like", {name: "mdn4", call: "webn"});
    await web.waitForState(webPage, "call-state", "incoming");
    await web.byTestId(webPage, "accept-button").click();
    await web.waitForState(webPage, "call-state", "in-call");
    await bothWays(webPage, "mdn4");
  }],
]);
