// The watch page: index.html?watch=NAME (app.js loads this module instead of wiring itself). It
// registers as a viewer (&name=, or viewer-<random>), calls NAME receive-only (call.js with
// receiveOnly: no camera or microphone is ever asked for) and plays what NAME sends. When NAME
// is not online, hangs up, drops, or the server goes away, it says so and calls again once NAME
// is back (watch-state.js decides when), without a reload.
//
// Autoplay: the video has sound, so a browser may refuse to play it before the user has
// touched the page (Chromium's and Firefox's autoplay policies). Then the page plays it muted
// (which browsers allow) and shows a "Play with sound" button over it; a click turns the sound
// on. The picture is there at once, and nobody takes a muted picture for the whole broadcast:
// the button says the sound is off. (Chromium presents the frames of a blocked MediaStream
// video anyway, paused, without sound: a plain Play button over a moving picture would mislead.)
// Where even muted playback is refused, the same button starts it.
//
// Query parameters: watch=NAME (the broadcaster), name= (our name), server= and ice= as on the
// call page (app.js).

import {Call} from "./call.js";
import {parseIceServers} from "./ice.js";
import {failureReason, hangUpNotice} from "./outcome.js";
import {Signaling} from "./signaling.js";
import {hangUpWhy, utf8Less, viewerName, WatchPlan} from "./watch-state.js";

const params = new URLSearchParams(location.search);
const target = (params.get("watch") ?? "").trim().normalize("NFC");

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const ui = {
  connection: $("connection-state"),
  reconnect: $("reconnect-button"),
  banner: $("error-banner"),
  bannerText: $("error-message"),
  bannerClose: $("error-dismiss"),
  section: document.getElementById("watch"),
  stage: document.getElementById("watch-stage"),
  target: $("watch-target"),
  state: $("watch-state"),
  name: $("watch-name"),
  play: $("play-button"),
  video: $("remote-video"),
};

function showBanner(text, kind = "error") {
  ui.bannerText.textContent = text;
  ui.banner.dataset.kind = kind;
  ui.banner.hidden = false;
}

// The call page's parts stay in the document, hidden; its remote video moves to the stage.
document.body.dataset.mode = "watch";
document.getElementById("login").hidden = true;
document.getElementById("app").hidden = true;
ui.section.hidden = false;
ui.stage.prepend(ui.video);
ui.video.setAttribute("aria-label", `${target}'s broadcast`);
ui.target.textContent = target;
document.title = `Watching ${target}`;
ui.bannerClose.addEventListener("click", () => (ui.banner.hidden = true));

const scheme = location.protocol === "https:" ? "wss" : "ws";
const signaling = new Signaling(params.get("server") || `${scheme}://${location.host}/ws`);
const iceServers = parseIceServers(params.get("ice"), (text) => showBanner(text));
const plan = new WatchPlan(target);
let name = viewerName(params.get("name"));
let call = null;
let offering = false;  // our offer of `call` awaits its answer

function sendToPeer(message) {
  return signaling.send({...message, name: signaling.name});
}

// ---- the video and its Play button -------------------------------------------------------------

function tryPlay() {
  ui.video.muted = false;
  ui.video.play().then(() => (ui.play.hidden = true)).catch((err) => {
    // NotAllowedError: sound needs the user's gesture first. (AbortError: a newer stream
    // replaced this one; its own play() decides.)
    if (err.name !== "NotAllowedError" || !ui.video.srcObject) return;
    ui.play.hidden = false;
    ui.video.muted = true;
    ui.video.play().catch(() => {});  // refused even muted: the button starts it
  });
}
ui.play.addEventListener("click", () => {
  ui.video.muted = false;
  ui.video.play().then(() => (ui.play.hidden = true))
      .catch((err) => showBanner(`The browser does not play the video: ${err.message}`));
});

// ---- the call ----------------------------------------------------------------------------------

function newCall() {
  const c = new Call({peer: target, iceServers, send: sendToPeer, receiveOnly: true});
  call = c;
  offering = false;
  plan.callStarted(Date.now());
  c.addEventListener("remotetrack", () => {
    if (c !== call) return;
    if (ui.video.srcObject !== c.remoteStream) ui.video.srcObject = c.remoteStream;
    tryPlay();
  });
  c.addEventListener("icestate", (event) => {
    if (c !== call) return;
    const state = event.detail;
    if (state === "connected" || state === "completed") {
      c.iceConnected = true;
      if (plan.state !== "live") plan.callLive();
      plan.interrupted = false;
    } else if (state === "disconnected") {
      // ICE lost its path; it may find it again, else it fails (and the call ends).
      plan.interrupted = plan.state === "live";
    } else if (state === "failed") {
      endCall(`ICE failed: no network path to ${target}.`, {notifyPeer: true, reason: "ice-failed"});
    }
    update();
  });
  c.addEventListener("connectionstate", (event) => {
    if (c !== call || event.detail !== "failed") return;
    endCall(`the connection to ${target} failed.`,
            {notifyPeer: true, reason: c.iceConnected ? failureReason("connection failed (DTLS)")
                                                      : "ice-failed"});
  });
  return c;
}

function callFailed(c, err) {
  if (c !== call) return;
  console.error("watch: the call failed", err);
  endCall(`the call failed: ${err.message}`, {notifyPeer: true, reason: failureReason(err.message)});
}

// Ends the call here; `why` is told to the user, the next call is the plan's.
function endCall(why, {notifyPeer = false, reason} = {}) {
  if (!call) return;
  const c = call;
  call = null;
  offering = false;
  if (notifyPeer) sendToPeer({type: "hang-up", target, ...(reason ? {reason} : {})});
  c.close();
  ui.video.srcObject = null;
  ui.play.hidden = true;
  plan.callEnded(why, Date.now());
  update();
}

function startCall() {
  const c = newCall();
  offering = true;
  c.offer().catch((err) => callFailed(c, err));
}

function onOffer(msg) {
  if (!msg.sdp || typeof msg.name !== "string") return;
  if (msg.name !== target) {
    // A viewer takes no other calls.
    sendToPeer({type: "hang-up", target: msg.name, reason: "busy"});
    return;
  }
  // NAME calls us (the element's `peer` list), or calls back while we call it: the smaller
  // name keeps its offer, as on the call page.
  if (call && offering && utf8Less(signaling.name, target)) return;
  const c = call ?? newCall();
  offering = false;
  c.answer(msg.sdp).catch((err) => callFailed(c, err));
}

function onMessage(event) {
  const msg = event.detail;
  const fromTarget = (msg.name ?? target) === target;
  switch (msg.type) {
    case "userlist":
      plan.userList(Array.isArray(msg.users) && msg.users.includes(target), Date.now());
      break;
    case "rejectusername":
      name = signaling.name;  // the name was taken: the server gave us this one
      break;
    case "video-offer":
      onOffer(msg);
      break;
    case "video-answer":
      if (call && offering && fromTarget && msg.sdp) {
        offering = false;
        const c = call;
        c.acceptAnswer(msg.sdp).catch((err) => callFailed(c, err));
      }
      break;
    case "new-ice-candidate":
      if (call && fromTarget && msg.candidate) {
        const c = call;
        c.addRemoteCandidate(msg.candidate).catch((err) => callFailed(c, err));
      }
      break;
    case "hang-up":
      // (A late one, for a call already ended here, changes nothing: the user list says who
      // is online.)
      if (call && fromTarget) {
        const words = hangUpNotice(target, msg.reason, plan.state === "live").text;
        endCall(hangUpWhy(target, msg.reason, words));
      }
      break;
    case "error":
      console.info("watch: server:", msg.message ?? msg.code);
      break;
  }
  update();
}

function onServerState(event) {
  const {state, reason} = event.detail;
  if (state === "disconnected" && reason.startsWith("The server refused the name")) {
    // A bad &name=: go on under a made-up one.
    showBanner(`${reason} Watching as a generated name instead.`, "info");
    name = viewerName("");
  }
  if (state === "connected") {
    name = signaling.name;
    const url = new URL(location.href);
    url.searchParams.set("name", name);
    history.replaceState(null, "", url);
  }
  plan.serverState(state, Date.now(), {reason});
  update();
}

// ---- the plan's decisions and the state line ---------------------------------------------------

function update() {
  for (let i = 0; i < 3; i++) {
    const {action} = plan.next(Date.now());
    if (action === "call") {
      startCall();
    } else if (action === "abandon") {
      endCall(`${target} did not connect in time.`, {notifyPeer: true, reason: "timeout"});
    } else if (action === "reconnect") {
      signaling.connect(name);
    } else {
      break;
    }
  }
  const {state, text} = plan.describe(Date.now());
  ui.state.dataset.state = state;
  if (ui.state.textContent !== text) ui.state.textContent = text;
  ui.connection.dataset.state = signaling.state;
  ui.connection.textContent = {
    connecting: "Connecting…",
    connected: `Connected as ${signaling.name}`,
    reconnecting: "Server lost: reconnecting…",
    disconnected: "Not connected",
  }[signaling.state];
  ui.name.textContent = signaling.name || name;
}

if (!target) {
  showBanner("Nothing to watch: the link needs ?watch=NAME (the broadcaster's name).");
} else {
  signaling.addEventListener("state", onServerState);
  signaling.addEventListener("message", onMessage);
  window.addEventListener("pagehide", () => endCall("", {notifyPeer: true}));
  signaling.connect(name);
  setInterval(update, 250);  // the plan's timers and the countdowns
  update();
}
