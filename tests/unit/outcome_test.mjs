// The web client's words for why a call ended (examples/web/outcome.js): pure, run by Node.
//   node tests/unit/outcome_test.mjs
import assert from "node:assert/strict";
import fs from "node:fs";
import {test} from "node:test";

// examples/web has no package.json saying its .js files are ES modules: load it as one.
const source = fs.readFileSync(new URL("../../examples/web/outcome.js", import.meta.url), "utf8");
const {hangUpNotice, failureReason} =
    await import(`data:text/javascript,${encodeURIComponent(source)}`);

test("a plain hang-up", () => {
  assert.deepEqual(hangUpNotice("bob", undefined, true), {text: "bob hung up.", kind: "info"});
  assert.deepEqual(hangUpNotice("bob", "", false), {text: "bob ended the call.", kind: "info"});
  assert.equal(hangUpNotice("bob", "hang-up", true).text, "bob hung up.");
});

test("the element's and the server's words", () => {
  const text = (reason) => hangUpNotice("gst", reason, true).text;
  assert.equal(text("declined"), "gst declined the call.");
  assert.equal(text("busy"), "gst is busy in another call.");
  assert.equal(text("user-unavailable"), "gst is not online.");
  assert.match(text("disconnected"), /^gst went offline/);
  assert.match(text("timeout"), /^gst ended the call: timeout/);
  assert.match(text("invalid-sdp"), /^gst refused the call: invalid-sdp/);
  assert.match(text("no-common-codec"), /^No common codec with gst/);
  assert.equal(text("ice-failed"), "ICE failed: gst found no network path to you.");
  assert.equal(text("stopped"), "gst hung up: its pipeline stopped.");
  assert.equal(text("failed"), "The call failed on gst's side.");
  assert.equal(text("failed: DTLS certificate of web does not match"),
               "The call failed on gst's side: DTLS certificate of web does not match");
});

test("failures are errors, hang-ups are not", () => {
  for (const r of ["timeout", "invalid-sdp", "ice-failed", "failed", "failed: x", "no-common-codec"]) {
    assert.equal(hangUpNotice("gst", r, true).kind, "error", r);
  }
  for (const r of ["", "declined", "busy", "stopped"]) assert.equal(hangUpNotice("gst", r, true).kind, "info", r);
});

test("an unknown reason verbatim, bounded, without control characters", () => {
  assert.equal(hangUpNotice("gst", "gone fishing", true).text, "gst ended the call: gone fishing");
  const long = hangUpNotice("gst", "x".repeat(5000) + "\n", true).text;
  assert.equal(long, `gst ended the call: ${"x".repeat(200)}…`);
  assert.equal(hangUpNotice("gst", "a\u0000b\nc", true).text, "gst ended the call: a b c");
  assert.equal(hangUpNotice("gst", 42, true).text, "gst hung up.");  // not a string: none
});

test("what the page sends when it fails", () => {
  assert.equal(failureReason("Failed to set remote answer sdp"), "failed: Failed to set remote answer sdp");
  assert.equal(failureReason("y".repeat(300)).length, "failed: ".length + 201);
  // Round trip: what this page sends, another page shows.
  assert.equal(hangUpNotice("web", failureReason("boom"), true).text, "The call failed on web's side: boom");
});
