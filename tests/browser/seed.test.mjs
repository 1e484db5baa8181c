// Pages that omit `target` the way the seed app (Swizec Teller's webrtc-sample) does
// (apps/seed-like.js: the offer without `target`, the answer keyed `targetUsername`,
// candidates and hang-ups with neither `target` nor `name`), through servers of this test's
// own:
//   1. --relay-untargeted: "seedA" calls; its offer reaches "seedB" and "seedC". seedB answers
//      first: video both ways between seedA and seedB. seedC got the offer but neither the
//      answer nor any candidate; its late answer gets a hang-up (answered-elsewhere) and the
//      call of the other two goes on. The server counts it (metrics).
//   2. --relay-untargeted: "seedG" calls "seedH", whose answer names nobody at all (no
//      `targetUsername` either): video both ways.
//   3. --relay-untargeted: "seedD" calls, the pipeline "gsts" (auto-answer) is the only other
//      user: it answers; media both ways.
//   4. The default (no flag): "seedE" calls "seedF": the server refuses the offer, `no-target`
//      (the page gets the error), seedF gets nothing.
// Run by run.sh inside its namespace:   node seed.test.mjs http://127.0.0.1:PORT/
import {
  expectFrames, log, metric, openApp, pages, run, startPipeline, startServer, waitUntil,
} from "./apps-lib.mjs";

const servers = {};
const get = (page, fn) => page.evaluate(fn);

await run("browser-seed", 160_000, [
  ["servers: three with --relay-untargeted, one without", async () => {
    servers.pair = await startServer(["--relay-untargeted"]);
    servers.pipeline = await startServer(["--relay-untargeted"]);
    servers.bare = await startServer(["--relay-untargeted"]);
    servers.off = await startServer();
  }],
  ["seedA calls without a target; seedB answers first; seedC's late answer gets a hang-up", async () => {
    const b = await openApp(servers.pair, "seed-like", {name: "seedB"});
    const c = await openApp(servers.pair, "seed-like", {name: "seedC", autoAnswer: "0"});
    const a = await openApp(servers.pair, "seed-like", {name: "seedA"});
    await waitUntil("seedA sees the other two", () => get(a, () => window.app.users.length === 3));
    await a.evaluate(() => window.app.call());
    await waitUntil("seedA and seedB are in a call", async () =>
      (await get(a, () => window.app.state)) === "in-call" &&
      (await get(b, () => window.app.state)) === "in-call");
    await expectFrames("seedA", 30, "(seedB's camera) ");
    await expectFrames("seedB", 30, "(seedA's camera) ");
    const seenByC = await get(c, () => ({
      offers: window.app.offersReceived, answers: window.app.answersReceived,
      candidates: window.app.candidatesReceived, state: window.app.state,
    }));
    log(`seedC: ${JSON.stringify(seenByC)}`);
    if (seenByC.offers.length !== 1 || seenByC.offers[0] !== "seedA") {
      throw new Error(`seedC should have got seedA's offer, got offers from ${JSON.stringify(seenByC.offers)}`);
    }
    if (seenByC.answers.length || seenByC.candidates) {
      throw new Error(`seedC got ${seenByC.answers.length} answers and ${seenByC.candidates} ` +
                      "candidates of a call it is not in");
    }
    const aOffers = await get(a, () => window.app.offersReceived.length);
    if (aOffers) throw new Error(`seedA got ${aOffers} offers: its own came back`);

    await c.evaluate(() => window.app.answer());
    await waitUntil("seedC's late answer gets a hang-up", () =>
      get(c, () => window.app.hangUps.length >= 1));
    const hangUp = await get(c, () => window.app.hangUps[0]);
    if (hangUp.name !== "seedA" || hangUp.reason !== "answered-elsewhere") {
      throw new Error(`seedC's hang-up is ${JSON.stringify(hangUp)}, not from seedA, answered-elsewhere`);
    }
    const aAnswers = await get(a, () => window.app.answersReceived);
    if (aAnswers.length !== 1 || aAnswers[0] !== "seedB") {
      throw new Error(`seedA got answers from ${JSON.stringify(aAnswers)}, not only seedB's`);
    }
    await expectFrames("seedA", 30, "after seedC's late answer ");
    await expectFrames("seedB", 30, "after seedC's late answer ");
    const m = await servers.pair.metrics();
    const offers = metric(m, "webrtc_call_untargeted_offers_total");
    const late = metric(m, "webrtc_call_late_answers_total");
    log(`server: untargeted offers ${offers}, late answers ${late}`);
    if (offers < 1 || late !== 1) throw new Error(`metrics: untargeted offers ${offers}, late answers ${late}`);
  }],
  ["seedG calls without a target; seedH answers naming nobody; video both ways", async () => {
    await openApp(servers.bare, "seed-like", {name: "seedH", answerKey: "none"});
    const g = await openApp(servers.bare, "seed-like", {name: "seedG"});
    await waitUntil("seedG sees seedH", () => get(g, () => window.app.users.length === 2));
    await g.evaluate(() => window.app.call());
    await expectFrames("seedG", 30, "(seedH's camera) ");
    await expectFrames("seedH", 30, "(seedG's camera) ");
    const sent = await get(pages.seedH.page, () => window.probe.sent.find((m) => m.type === "video-answer"));
    if (sent.target !== undefined || sent.targetUsername !== undefined) {
      throw new Error(`seedH's answer named ${JSON.stringify(sent)}`);
    }
  }],
  ["seedD calls without a target; the pipeline gsts answers it; media both ways", async () => {
    const gst = startPipeline("gsts", servers.pipeline.ws, ["username=gsts"]);
    await gst.waitMessage("webrtccall-registered");
    const d = await openApp(servers.pipeline, "seed-like", {name: "seedD", call: "1"});
    await gst.waitMessage("webrtccall-call-connected", {match: (f) => f.peer === "seedD"});
    await waitUntil("seedD is in the call", () => get(d, () => window.app.state === "in-call"));
    await expectFrames("seedD", 30, "(the element's test pattern) ");
    await gst.expectBuffers("vsink", 30, "(seedD's camera) ");
    await gst.expectBuffers("asink", 25, "(seedD's microphone) ");
    log(`gsts: video ${gst.buffers("vsink")}, audio ${gst.buffers("asink")} buffers from seedD`);
    await d.evaluate(() => window.app.hangUp());
    await gst.waitMessage("webrtccall-call-ended", {match: (f) => f.peer === "seedD"});
    gst.kill("SIGINT");
  }],
  ["without --relay-untargeted the server refuses seedE's offer (no-target)", async () => {
    const f = await openApp(servers.off, "seed-like", {name: "seedF"});
    const e = await openApp(servers.off, "seed-like", {name: "seedE"});
    await waitUntil("seedE sees seedF", () => get(e, () => window.app.users.length === 2));
    await e.evaluate(() => window.app.call());
    await waitUntil("seedE is told no-target", () =>
      get(e, () => window.probe.errors.some((x) => x.startsWith("no-target"))));
    const offers = await get(f, () => window.app.offersReceived.length);
    if (offers) throw new Error(`seedF got ${offers} offers with the mode off`);
    const m = await servers.off.metrics();
    const refused = metric(m, 'webrtc_call_messages_refused_total{reason="no-target"}');
    if (refused < 1) throw new Error(`the server counted ${refused} no-target refusals`);
    log(`seedE told no-target; seedF got nothing; the server refused ${refused} messages no-target`);
  }],
]);
