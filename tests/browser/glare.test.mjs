// Glare between the web client and the webrtccall element: each calls the other at once, and
// both must apply the same rule (the element's, Engine::on_description: the smaller name,
// byte by byte, keeps its offer and the other answers it). If the page's rule were the
// reverse, both would wait for an answer (or both answer) and the call would fail or be
// redialed. Run by run.sh inside its namespace:
//   node glare.test.mjs http://127.0.0.1:PORT/
// To make the offers cross whatever each side takes to make its own, the page holds an offer
// that arrives while it has not sent one yet, and lets it in right after it sent its own (a
// wrapper around the page's WebSocket): the element has called by then, the page calls
// (a click), and each side then sees the other's offer while its own is unanswered.
//   1. "gstg" (element, peer=webg) and the page "webg": the element's name is smaller, it
//      keeps its offer; the page drops its own and answers.
//   2. "gsth" (element, peer=aweb) and the page "aweb": the page's name is smaller, it keeps
//      its offer; the element drops its own (webrtccall-call-ended "glare: ...") and answers.
// Each time: exactly one answer, by the right side; no hang-up either way; one call each
// (no redial by the element's peer property); video decoded in the page, buffers in the
// element.
import {pipelines, startPipeline, waitUntil} from "./pipeline.mjs";
import * as web from "./web-client.mjs";

const {STEP_TIMEOUT_MS, userEntry, waitForState, login, byTestId} = web;

const url = process.argv[2];
if (!url) {
  console.error("usage: node glare.test.mjs SERVER-URL");
  process.exit(2);
}
const wsUrl = new URL("ws", url).href.replace(/^http/, "ws");
const started = Date.now();
const log = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);
const watchdog = setTimeout(() => {
  console.error("FAIL: the test did not finish within 150 s");
  report();
  process.exit(1);
}, 150_000);

// ---- the page, with its signaling traffic logged and a hold on early offers ----

const browser = await web.launchChromium();
const pages = {};

async function openPage(name) {
  const context = await browser.newContext();
  await context.addInitScript(() => {
    const Native = window.WebSocket;
    const sig = (window.__sig = {sent: [], received: [], held: [], sentOffer: false});
    window.WebSocket = class extends Native {
      addEventListener(type, listener, options) {
        if (type !== "message") return super.addEventListener(type, listener, options);
        return super.addEventListener("message", (event) => {
          let msg = null;
          try {
            msg = JSON.parse(event.data);
          } catch {}
          if (msg) sig.received.push({type: msg.type, name: msg.name, reason: msg.reason});
          if (msg?.type === "video-offer" && !sig.sentOffer) {
            sig.held.push(() => listener.call(this, event));
            return;
          }
          listener.call(this, event);
        }, options);
      }
      send(data) {
        super.send(data);
        let msg = null;
        try {
          msg = JSON.parse(data);
        } catch {}
        if (!msg) return;
        sig.sent.push({type: msg.type, target: msg.target, reason: msg.reason});
        if (msg.type === "video-offer" && !sig.sentOffer) {
          sig.sentOffer = true;
          setTimeout(() => sig.held.splice(0).forEach((deliver) => deliver()), 0);
        }
      }
    };
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const consoleLines = [];
  page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  pages[name] = {page, consoleLines};
  await page.goto(url);
  await login(page, name);
  return page;
}

const traffic = (page) => page.evaluate(() => ({sent: window.__sig.sent, received: window.__sig.received}));

async function frames(page) {
  return page.$eval('[data-testid="remote-video"]',
                    (v) => v.getVideoPlaybackQuality().totalVideoFrames);
}

async function report() {
  for (const [name, {page, consoleLines}] of Object.entries(pages)) {
    console.error(`---- page ${name} ----`);
    try {
      console.error(JSON.stringify(await traffic(page), null, 1));
    } catch {}
    console.error("console:\n  " + (consoleLines.join("\n  ") || "(empty)"));
  }
  for (const p of pipelines) {
    console.error(`---- ${p.label} ----\n  ${p.messages.map((m) => m.name + m.text).join("\n  ")}`);
    p.report();
  }
}

// ---- the scenario ----

async function glare({pageName, gstName, pageKeeps}) {
  const expectedAnswerer = pageKeeps ? gstName : pageName;
  log(`glare between the page "${pageName}" and the element "${gstName}": ` +
      `${expectedAnswerer} must answer`);
  const page = await openPage(pageName);
  // The element (pipeline.mjs): its webrtccall-* messages and video buffers (fakesink vsink).
  const gst = startPipeline(gstName, wsUrl, [`username=${gstName}`, `peer=${pageName}`], {log});
  // The element calls as soon as it sees the page online; the page holds that offer.
  await waitUntil(`${gstName}'s offer reaches the page`,
                  () => page.evaluate(() => window.__sig.held.length === 1));
  await userEntry(page, gstName).click();  // the page calls too: glare
  await waitForState(page, "call-state", "in-call");
  await waitUntil(`${gstName} posts webrtccall-call-connected`,
                  () => gst.count("webrtccall-call-connected", `peer=(string)${pageName}`) === 1);
  // Media both ways, for long enough that a redial (1 s after a failed call) would show.
  await page.waitForFunction(() => {
    const v = document.querySelector('[data-testid="remote-video"]');
    return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0;
  }, null, {timeout: STEP_TIMEOUT_MS, polling: 50});
  const first = await frames(page);
  await waitUntil(`the page decodes 60 more frames (${first} so far)`,
                  async () => (await frames(page)) >= first + 60);
  await waitUntil(`${gstName} receives video`, () => gst.buffers("vsink") >= 30);
  log(`page ${pageName}: ${await frames(page)} frames decoded; ${gstName}: ${gst.buffers("vsink")} video buffers`);

  const {sent, received} = await traffic(page);
  const count = (list, type) => list.filter((m) => m.type === type).length;
  const problems = [];
  if (count(sent, "video-offer") !== 1) problems.push(`the page sent ${count(sent, "video-offer")} offers, not 1`);
  if (count(received, "video-offer") !== 1) {
    problems.push(`the page received ${count(received, "video-offer")} offers, not 1 (a redial?)`);
  }
  const pageAnswers = count(sent, "video-answer"), gstAnswers = count(received, "video-answer");
  if (pageAnswers + gstAnswers !== 1) {
    problems.push(`${pageAnswers} answers by the page and ${gstAnswers} by the element, not exactly one`);
  } else if ((pageAnswers === 1 ? pageName : gstName) !== expectedAnswerer) {
    problems.push(`${pageAnswers === 1 ? pageName : gstName} answered: the smaller name must keep ` +
                  `its offer, so ${expectedAnswerer} answers (the element's rule)`);
  }
  if (count(sent, "hang-up") || count(received, "hang-up")) {
    problems.push(`hang-ups: sent ${JSON.stringify(sent.filter((m) => m.type === "hang-up"))}, ` +
                  `received ${JSON.stringify(received.filter((m) => m.type === "hang-up"))}`);
  }
  const startedOut = gst.count("webrtccall-call-started", "outgoing");
  const startedIn = gst.count("webrtccall-call-started", "incoming");
  const ended = gst.count("webrtccall-call-ended");
  const want = pageKeeps ? {startedIn: 1, ended: 1} : {startedIn: 0, ended: 0};
  if (startedOut !== 1 || startedIn !== want.startedIn || ended !== want.ended) {
    problems.push(`${gstName}: ${startedOut} outgoing and ${startedIn} incoming call-started, ` +
                  `${ended} call-ended; expected 1, ${want.startedIn}, ${want.ended}`);
  }
  if (pageKeeps && gst.count("webrtccall-call-ended", "glare") !== 1) {
    problems.push(`${gstName} did not end its own call for glare`);
  }
  if (gst.count("webrtccall-call-refused")) problems.push(`${gstName} refused a call`);
  if (problems.length) throw new Error(problems.join("; "));
  log(`${expectedAnswerer} answered; one call, no hang-up, no redial`);

  await byTestId(page, "hangup-button").click();
  await waitUntil(`${gstName} ends the call`, () => gst.count("webrtccall-call-ended", "hung up") === 1);
  gst.kill("SIGINT");
}

let failed = false;
try {
  await glare({pageName: "webg", gstName: "gstg", pageKeeps: false});
  await glare({pageName: "aweb", gstName: "gsth", pageKeeps: true});
} catch (err) {
  failed = true;
  console.error(`FAIL: ${err.message}`);
  await report();
} finally {
  for (const p of pipelines) p.kill("SIGINT");
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
if (failed) process.exit(1);
log("browser-glare: 2 scenarios passed");
