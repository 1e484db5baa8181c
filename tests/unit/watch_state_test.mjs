// The watch page's decisions (examples/web/watch-state.js): pure, run by Node.
//   node tests/unit/watch_state_test.mjs
import assert from "node:assert/strict";
import fs from "node:fs";
import {test} from "node:test";

// examples/web has no package.json saying its .js files are ES modules: load it as one.
const source = fs.readFileSync(new URL("../../examples/web/watch-state.js", import.meta.url), "utf8");
const {WATCH_TIMING, WatchPlan, hangUpWhy, retryDelayMs, utf8Less, viewerName} =
    await import(`data:text/javascript,${encodeURIComponent(source)}`);

// A plan whose random numbers are always `r` (0: the shortest delays, 1: the longest).
const plan = (r = 0) => new WatchPlan("show", {random: () => r});
// A plan connected to the server, with `show` online (or not).
function connected(online, r = 0, now = 0) {
  const p = plan(r);
  p.serverState("connecting", now);
  p.serverState("connected", now);
  p.userList(online, now);
  return p;
}

test("retry delays double from 1 s up to 15 s, each in its upper half", () => {
  assert.equal(retryDelayMs(0, 0), 500);
  assert.equal(retryDelayMs(0, 1), 1000);
  assert.equal(retryDelayMs(1, 1), 2000);
  assert.equal(retryDelayMs(3, 0), 4000);
  assert.equal(retryDelayMs(10, 1), WATCH_TIMING.maxMs);
  assert.equal(retryDelayMs(1000, 0), WATCH_TIMING.maxMs / 2);
});

test("before the server: nothing to do, the state says so", () => {
  const p = plan();
  assert.deepEqual(p.next(0), {action: "", wakeInMs: 0});
  assert.equal(p.describe(0).state, "server");
  p.serverState("connecting", 0);
  assert.equal(p.describe(0).text, "Connecting to the server…");
});

test("the broadcaster offline: waiting, never calling", () => {
  const p = connected(false);
  assert.equal(p.describe(0).state, "waiting");
  assert.equal(p.describe(0).text, "Waiting for show to go live…");
  for (const t of [0, 1000, 60_000]) assert.equal(p.next(t).action, "");
});

test("the broadcaster online: called at once (within the join spread)", () => {
  const p = connected(true, 1, 5000);
  assert.deepEqual(p.next(5000), {action: "", wakeInMs: WATCH_TIMING.joinSpreadMs});
  assert.equal(p.next(5000 + WATCH_TIMING.joinSpreadMs).action, "call");
  assert.equal(connected(true, 0, 5000).next(5000).action, "call");
});

test("a call that connects is live; when it ends the page says why and calls again", () => {
  const p = connected(true);
  assert.equal(p.next(0).action, "call");
  p.callStarted(0);
  assert.equal(p.describe(0).state, "connecting");
  assert.equal(p.describe(0).text, "Connecting to show…");
  p.callLive();
  assert.deepEqual(p.describe(10), {state: "live", text: "Live: show"});
  p.interrupted = true;  // ICE "disconnected"
  assert.deepEqual(p.describe(10), {state: "live", text: "Live: show (connection interrupted…)"});
  p.interrupted = false;
  // A user list while live changes nothing (the call is peer to peer).
  p.userList(false, 20);
  p.userList(true, 30);
  assert.equal(p.state, "live");
  p.callEnded("show hung up: its pipeline stopped.", 100_000);
  const ended = p.describe(100_000);
  assert.equal(ended.state, "ended");
  assert.match(ended.text, /^The broadcast ended: show hung up: its pipeline stopped\. Calling show again in 1 s…$/);
  // The first retry after a call that connected: 0.5 to 1 s.
  assert.equal(p.next(100_499).action, "");
  assert.equal(p.next(100_500).action, "call");
});

test("the broadcaster leaves: waiting (the last outcome kept), no calls; back: called at once", () => {
  const p = connected(true);
  p.callStarted(0);
  p.callLive();
  p.callEnded("show went offline (disconnected from the server).", 1000);
  p.userList(false, 1100);
  assert.equal(p.state, "waiting");
  assert.equal(p.describe(1100).text, "Waiting for show to go live… The last broadcast ended: " +
               "show went offline (disconnected from the server).");
  assert.equal(p.next(60_000).action, "");
  p.userList(true, 60_000);
  assert.equal(p.next(60_000).action, "call");
});

test("failed calls back off: 1, 2, 4 ... 15 s, reset when the broadcaster comes back", () => {
  const p = connected(true, 1);
  let now = WATCH_TIMING.joinSpreadMs;
  const delays = [];
  for (let i = 0; i < 6; i++) {
    assert.equal(p.next(now).action, "call");
    p.callStarted(now);
    p.callEnded("show is busy in another call.", now);
    const {wakeInMs} = p.next(now);
    delays.push(wakeInMs);
    now += wakeInMs;
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 15_000, 15_000]);
  // Gone and back: the next call is at once again.
  p.userList(false, now);
  p.userList(true, now);
  assert.deepEqual(p.next(now), {action: "", wakeInMs: WATCH_TIMING.joinSpreadMs});
});

test("a call that does not connect in time is abandoned", () => {
  const p = connected(true);
  p.callStarted(1000);
  assert.deepEqual(p.next(1000), {action: "", wakeInMs: WATCH_TIMING.connectTimeoutMs});
  assert.equal(p.next(1000 + WATCH_TIMING.connectTimeoutMs).action, "abandon");
  p.callEnded("show did not connect in time.", 1000 + WATCH_TIMING.connectTimeoutMs);
  assert.equal(p.state, "ended");
  assert.equal(p.next(1000 + WATCH_TIMING.connectTimeoutMs).action, "");
});

test("the server lost: a live call goes on; an idle page waits for the server, not the broadcaster", () => {
  const live = connected(true);
  live.callStarted(0);
  live.callLive();
  live.serverState("reconnecting", 10, {reason: "The connection to the server was lost (code 1006)."});
  assert.equal(live.state, "live");
  live.serverState("connecting", 20);
  live.serverState("connected", 30);
  live.userList(true, 30);
  assert.equal(live.state, "live");
  assert.equal(live.next(30).action, "");

  const idle = connected(true);
  idle.callStarted(0);
  idle.callEnded("show hung up.", 0);
  idle.serverState("reconnecting", 10, {reason: "The connection to the server was lost (code 1006)."});
  assert.equal(idle.describe(10).state, "server");
  assert.match(idle.describe(10).text, /^Server lost: reconnecting…/);
  assert.equal(idle.next(60_000).action, "");  // no calls without a server
  idle.serverState("connecting", 60_000);
  idle.serverState("connected", 60_000);
  assert.equal(idle.state, "waiting");  // until the list names show
  idle.userList(true, 60_000);
  assert.equal(idle.next(60_000).action, "call");
});

test("a server that could not be reached is tried again, with backoff", () => {
  const p = plan(1);
  p.serverState("connecting", 0);
  p.serverState("disconnected", 0, {reason: "Cannot reach the signaling server at ws://x/ws."});
  assert.deepEqual(p.next(0), {action: "", wakeInMs: 1000});
  assert.match(p.describe(0).text, /^Cannot reach the signaling server at ws:\/\/x\/ws\. Trying again in 1 s…$/);
  assert.equal(p.next(1000).action, "reconnect");
  assert.equal(p.next(1000).action, "");  // once
  p.serverState("connecting", 1000);
  p.serverState("disconnected", 1000, {reason: "again"});
  assert.deepEqual(p.next(1000), {action: "", wakeInMs: 2000});
  p.serverState("connecting", 3000);
  p.serverState("connected", 3000);
  p.serverState("reconnecting", 4000);
  p.serverState("disconnected", 4000);
  assert.deepEqual(p.next(4000), {action: "", wakeInMs: 1000});  // reset by the registration
});

test("viewer names: &name= as given (trimmed), else viewer-<6 random characters>", () => {
  assert.equal(viewerName("  ann "), "ann");
  assert.equal(viewerName("x".repeat(80)).length, 64);
  assert.equal(viewerName(null, () => 0), "viewer-aaaaaa");
  assert.equal(viewerName("", () => 0.999999), "viewer-999999");
  assert.match(viewerName(undefined), /^viewer-[a-z0-9]{6}$/);
  assert.notEqual(viewerName(""), viewerName(""));
});

test("glare: the smaller name in UTF-8 keeps its offer", () => {
  assert.equal(utf8Less("show", "viewer-abc"), true);
  assert.equal(utf8Less("viewer-abc", "show"), false);
  assert.equal(utf8Less("é", "z"), false);  // 0xc3 > 'z'
  assert.equal(utf8Less("ab", "abc"), true);
});

test("a busy broadcaster is full; other reasons read as on the call page", () => {
  assert.equal(hangUpWhy("show", "busy", "show is busy in another call."),
               "show takes no more viewers for now (busy).");
  assert.equal(hangUpWhy("show", "stopped", "show hung up: its pipeline stopped."),
               "show hung up: its pipeline stopped.");
  assert.equal(hangUpWhy("show", undefined, "show hung up."), "show hung up.");
});
