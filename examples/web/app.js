// The web client: log in with a name, see who is online, call, answer or decline, hang up,
// chat with everyone. The page wires the user interface to signaling.js (the WebSocket and
// the protocol) and call.js (the RTCPeerConnection).
//
// Query parameters, all optional:
//   ?server=ws://host:port/   the signaling server. Default: this page's server,
//                             ws://HOST/ws (wss:// when the page is https).
//   ?ice=LIST                 ICE servers, comma-separated, for calls that cross NATs:
//                               stun:host:port
//                               turn:user:password@host:port   (also turns:, and a
//                               ?transport=tcp suffix, URL-encoded inside the page URL)
//                             The user name and password must not contain "@" or ",".
//                             Default: none. Peers on one network need no server, and the
//                             page never contacts a public STUN server on its own.
//   ?name=alice               prefill the login name.
//   ?watch=NAME               the watch page instead (watch.js, which this module loads):
//                             a receive-only call to NAME, no login, no camera.

import {Call, MediaAccessError} from "./call.js";
import {parseIceServers as parseIceServers_} from "./ice.js";
import {failureReason, hangUpNotice} from "./outcome.js";
import {Signaling} from "./signaling.js";

const params = new URLSearchParams(location.search);

function defaultServerUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws`;
}

function parseIceServers(list) {
  return parseIceServers_(list, (text) => showBanner(text, "error"));
}

// The UI elements, by their data-testid (the same names the browser test uses).
const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const ui = {
  connection: $("connection-state"),
  reconnect: $("reconnect-button"),
  banner: $("error-banner"),
  bannerText: $("error-message"),
  bannerClose: $("error-dismiss"),
  loginSection: document.getElementById("login"),
  loginForm: document.getElementById("login-form"),
  loginName: $("login-name"),
  loginButton: $("login-button"),
  app: document.getElementById("app"),
  myName: $("my-name"),
  users: $("user-list"),
  noUsers: document.getElementById("no-users"),
  callState: $("call-state"),
  accept: $("accept-button"),
  decline: $("decline-button"),
  hangUp: $("hangup-button"),
  localVideo: $("local-video"),
  remoteVideo: $("remote-video"),
  videoNotice: $("video-notice"),
  chatForm: document.getElementById("chat-form"),
  chatInput: $("chat-input"),
  chatLog: $("chat-log"),
};

const signaling = new Signaling(params.get("server") || defaultServerUrl());
const iceServers = parseIceServers(params.get("ice"));

let users = [];          // everyone online but us, from the last `userlist`
let call = null;         // the Call in progress (calling, incoming or in call), if any
let callState = "idle";  // "idle" | "calling" | "incoming" | "in-call"
let mediaState = "";     // the ICE state of the call in progress, for the user
let registeredOnce = false;
// User lists since we (re)registered say who left: a call's peer missing from one has gone.
// After a reconnection the peer may register after us, so the list is trusted again only once
// it names the peer (or a new call starts).
let listTrusted = true;
let reconnectBanner = false;  // the banner shows the reconnection notice
let retryTimer = 0;      // updates the "Reconnecting in N s" countdown
let ringTimer = 0;       // ends an unanswered call
let videoTimer = 0;      // checks that the peer's video arrives once the call is connected

// Servers that drop offers to absent users silently (the sample's) would leave us calling
// forever; a person gives up after about a minute too.
const RING_TIMEOUT_MS = 60_000;
// A connected call whose remote video shows no picture this long gets a notice (not an
// error: the peer may send audio only, e.g. a pipeline without video input).
const NO_VIDEO_NOTICE_MS = 4000;

// ---- banner -------------------------------------------------------------------------------

function showBanner(text, kind = "error") {
  reconnectBanner = false;
  ui.bannerText.textContent = text;
  ui.banner.dataset.kind = kind;
  ui.banner.hidden = false;
}

function hideBanner() {
  ui.banner.hidden = true;
  ui.bannerText.textContent = "";
}

// ---- rendering ----------------------------------------------------------------------------

function renderConnection() {
  const {state} = signaling;
  ui.connection.dataset.state = state;
  clearTimeout(retryTimer);
  if (state === "reconnecting") {
    // The calls in progress are peer to peer and go on; new ones wait for the server.
    const seconds = Math.max(0, Math.ceil((signaling.retryAt - Date.now()) / 1000));
    ui.connection.textContent = `Server lost: reconnecting in ${seconds} s…`;
    retryTimer = setTimeout(renderConnection, 250);
  } else {
    ui.connection.textContent = {
      connecting: registeredOnce ? "Reconnecting…" : "Connecting…",
      connected: `Connected as ${signaling.name}`,
      disconnected: registeredOnce ? "Disconnected" : "Not connected",
    }[state];
  }
  ui.reconnect.hidden = !((state === "disconnected" || state === "reconnecting") && registeredOnce);
  ui.reconnect.textContent = state === "reconnecting" ? "Reconnect now" : "Reconnect";
  ui.loginSection.hidden = registeredOnce;
  ui.loginButton.disabled = state === "connecting";
  ui.app.hidden = !registeredOnce;
  ui.myName.textContent = signaling.name;
  ui.chatInput.disabled = state !== "connected";
  renderUsers();
}

function renderUsers() {
  const canCall = signaling.state === "connected" && callState === "idle";
  const items = users.map((name) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "user";
    button.dataset.testid = "user-entry";
    button.dataset.name = name;
    button.textContent = name;
    button.title = `Call ${name}`;
    button.setAttribute("aria-label", `Call ${name}`);
    button.disabled = !canCall;
    button.addEventListener("click", () => startCall(name));
    li.append(button);
    return li;
  });
  ui.users.replaceChildren(...items);
  ui.noUsers.hidden = users.length > 0;
}

function renderCall() {
  const peer = call?.peer ?? "";
  ui.callState.dataset.state = callState;
  ui.callState.dataset.peer = peer;
  ui.callState.textContent = {
    "idle": "No call",
    "calling": `Calling ${peer}…`,
    "incoming": `Incoming call from ${peer}`,
    "in-call": `In call with ${peer}` + (mediaState ? ` (${mediaState})` : ""),
  }[callState];
  ui.accept.hidden = ui.decline.hidden = callState !== "incoming";
  ui.hangUp.hidden = callState !== "calling" && callState !== "in-call";
  document.body.dataset.call = callState;
  renderUsers();
}

function setCallState(state) {
  callState = state;
  clearTimeout(ringTimer);
  if (state === "calling") {
    const c = call;
    ringTimer = setTimeout(() => {
      if (c === call && callState === "calling") {
        endCall(`${c.peer} did not answer.`, "info", {notifyPeer: true});
      }
    }, RING_TIMEOUT_MS);
  }
  renderCall();
}

function appendChat(msg) {
  const li = document.createElement("li");
  li.dataset.testid = "chat-message";
  const date = typeof msg.date === "number" ? new Date(msg.date) : new Date();
  const time = document.createElement("time");
  time.dateTime = date.toISOString();
  time.textContent = date.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  const name = document.createElement("span");
  name.className = "chat-name";
  name.textContent = String(msg.name ?? "?");
  const text = document.createElement("span");
  text.className = "chat-text";
  text.textContent = String(msg.text ?? "");  // text only: never parsed as markup
  if (msg.name === signaling.name) li.classList.add("mine");
  li.append(time, " ", name, " ", text);
  const atBottom =
      ui.chatLog.scrollTop + ui.chatLog.clientHeight >= ui.chatLog.scrollHeight - 4;
  ui.chatLog.append(li);
  while (ui.chatLog.childElementCount > 500) ui.chatLog.firstElementChild.remove();
  if (atBottom) ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

// ---- calls --------------------------------------------------------------------------------

// Every message to the peer carries our name, as the sample's client does.
function sendToPeer(message) {
  return signaling.send({...message, name: signaling.name});
}

function newCall(peer) {
  listTrusted = true;  // we call, or are called by, someone online now
  const c = new Call({peer, iceServers, send: sendToPeer});
  c.addEventListener("localstream", () => {
    if (c !== call) return;
    ui.localVideo.srcObject = c.localStream;
    ui.localVideo.hidden = false;
  });
  c.addEventListener("remotetrack", () => {
    if (c !== call) return;
    if (ui.remoteVideo.srcObject !== c.remoteStream) ui.remoteVideo.srcObject = c.remoteStream;
    // Autoplay may need the gesture that started or accepted the call; it usually has it.
    ui.remoteVideo.play().catch(() => {});
  });
  c.addEventListener("icestate", (event) => {
    if (c !== call) return;
    const state = event.detail;
    if (state === "failed") {
      iceFailed(c);
      return;
    }
    if (state === "connected" || state === "completed") {
      c.iceConnected = true;
      watchVideo(c);
    }
    mediaState = {checking: "connecting…", disconnected: "connection interrupted"}[state] ?? "";
    renderCall();
  });
  c.addEventListener("connectionstate", (event) => {
    if (c !== call || event.detail !== "failed") return;
    // Chromium may say the connection failed before it says ICE did.
    if (!c.iceConnected || c.iceState === "failed") {
      iceFailed(c);
      return;
    }
    endCall(`The connection to ${c.peer} failed (DTLS, after ICE connected).`, "error",
            {notifyPeer: true, reason: failureReason("connection failed (DTLS)")});
  });
  return c;
}

function iceFailed(c) {
  endCall(`ICE failed: no network path between you and ${c.peer}.`, "error",
          {notifyPeer: true, reason: "ice-failed"});
}

// Once connected: says so when the peer's video shows no picture within NO_VIDEO_NOTICE_MS
// (no video track, or no frame), and hides the notice when a picture arrives.
function watchVideo(c) {
  if (videoTimer) return;
  const since = Date.now();
  const check = () => {
    if (c !== call) return;
    const hasPicture = ui.remoteVideo.videoWidth > 0;
    if (hasPicture) {
      ui.videoNotice.hidden = true;
    } else if (Date.now() - since >= NO_VIDEO_NOTICE_MS) {
      const tracks = c.remoteStream.getVideoTracks().length;
      ui.videoNotice.textContent = tracks === 0
          ? `${c.peer} sends no video (audio only).`
          : `${c.peer} sends no video: no picture has arrived.`;
      ui.videoNotice.hidden = false;
    }
  };
  videoTimer = setInterval(check, 250);
}

// Ends the call in progress here. notifyPeer: tell the peer with a `hang-up` (with `reason`).
function endCall(notice = "", kind = "info", {notifyPeer = false, reason} = {}) {
  if (!call) return;
  const c = call;
  call = null;
  mediaState = "";
  clearInterval(videoTimer);
  videoTimer = 0;
  ui.videoNotice.hidden = true;
  if (notifyPeer) sendToPeer({type: "hang-up", target: c.peer, ...(reason ? {reason} : {})});
  c.close();
  ui.remoteVideo.srcObject = null;
  ui.localVideo.srcObject = null;
  ui.localVideo.hidden = true;
  setCallState("idle");
  if (notice) showBanner(notice, kind);
}

// A step of call `c` failed: tell the user, end the call if it is still the current one.
function callFailed(c, err) {
  if (c !== call) return;  // a call that already ended: its late failures do not matter
  console.error("call failed", err);
  const text = err instanceof MediaAccessError ? err.message : `The call failed: ${err.message}`;
  endCall(text, "error", {notifyPeer: true, reason: failureReason(err.message)});
}

async function startCall(peer) {
  if (call || signaling.state !== "connected") return;
  hideBanner();
  const c = newCall(peer);
  call = c;
  setCallState("calling");
  try {
    await c.offer();
  } catch (err) {
    callFailed(c, err);
  }
}

async function acceptCall() {
  const c = call;
  if (!c || callState !== "incoming") return;
  hideBanner();
  setCallState("in-call");
  try {
    await c.answer(c.pendingOffer);
  } catch (err) {
    callFailed(c, err);
  }
}

function declineCall() {
  if (callState === "incoming") endCall("", "info", {notifyPeer: true, reason: "declined"});
}

function hangUp() {
  endCall("", "info", {notifyPeer: true});
}

// Glare is settled by comparing names byte by byte (UTF-8), like the GStreamer element does.
function utf8Less(a, b) {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i];
  }
  return x.length < y.length;
}

function onOffer(msg) {
  const from = msg.name;
  if (typeof from !== "string" || !msg.sdp) return;
  if (call && call.peer === from) {
    if (callState === "calling") {
      // We called each other at the same time. The smaller name keeps the offerer role and
      // ignores this offer (the other side answers ours); the larger one answers this one.
      if (utf8Less(signaling.name, from)) return;
      const c = call;
      setCallState("in-call");
      c.answer(msg.sdp).catch((err) => callFailed(c, err));
    } else if (callState === "in-call") {
      // The peer renegotiates (e.g. adds a track): answer on the same connection.
      const c = call;
      c.answer(msg.sdp).catch((err) => callFailed(c, err));
    } else {
      call.pendingOffer = msg.sdp;  // the caller offered again before we answered
    }
    return;
  }
  if (call) {
    sendToPeer({type: "hang-up", target: from, reason: "busy"});
    return;
  }
  hideBanner();
  call = newCall(from);
  call.pendingOffer = msg.sdp;
  setCallState("incoming");
}

function onAnswer(msg) {
  const c = call;
  if (!c || (msg.name ?? c.peer) !== c.peer || callState !== "calling" || !msg.sdp) return;
  setCallState("in-call");
  c.acceptAnswer(msg.sdp).catch((err) => callFailed(c, err));
}

function onCandidate(msg) {
  const c = call;
  // The sample's server relays candidates without a `name`: they come from our peer.
  if (!c || (msg.name ?? c.peer) !== c.peer || !msg.candidate) return;
  c.addRemoteCandidate(msg.candidate).catch((err) => callFailed(c, err));
}

function onHangUp(msg) {
  if (!call || (msg.name ?? call.peer) !== call.peer) return;
  const {text, kind} = hangUpNotice(call.peer, msg.reason, callState === "in-call");
  endCall(text, kind);
}

function onUserList(msg) {
  const list = Array.isArray(msg.users) ? msg.users.filter((u) => typeof u === "string") : [];
  users = list.filter((name) => name !== signaling.name);
  renderUsers();
  // Servers that send no hang-up when a user leaves (the sample's) still update the list. After
  // a reconnection the peer may register again after us: only a peer seen and then gone left.
  if (call && users.includes(call.peer)) {
    listTrusted = true;
  } else if (call && listTrusted) {
    endCall(`${call.peer} went offline.`);
  }
}

function onMessage(event) {
  const msg = event.detail;
  switch (msg.type) {
    case "userlist":
      onUserList(msg);
      break;
    case "rejectusername":
      showBanner(`That name was taken: your name is now ${signaling.name}.`, "info");
      renderConnection();
      break;
    case "message":
      appendChat(msg);
      break;
    case "video-offer":
      onOffer(msg);
      break;
    case "video-answer":
      onAnswer(msg);
      break;
    case "new-ice-candidate":
      onCandidate(msg);
      break;
    case "hang-up":
      onHangUp(msg);
      break;
    case "error":
      if (msg.code === "user-unavailable" || msg.code === "no-target") {
        // Candidates still in flight to a peer who just hung up or left: the hang-up (or
        // the user list) has already told the user what happened.
        console.info("server:", msg.message ?? msg.code);
        break;
      }
      showBanner(`The server refused a request: ${msg.message ?? msg.code ?? "no reason given"}`,
                 "error");
      break;
    // Other types relayed to us by target are for other apps: ignored.
  }
}

function onConnectionState(event) {
  const {state, reason} = event.detail;
  if (state === "connected") {
    registeredOnce = true;
    const url = new URL(location.href);
    url.searchParams.set("name", signaling.name);
    history.replaceState(null, "", url);
    if (reconnectBanner) hideBanner();
    reconnectBanner = false;
  } else if (state === "reconnecting") {
    // Who is online is unknown until the server is back; the call itself needs no server.
    users = [];
    listTrusted = false;
    showBanner(`${reason} Reconnecting…`, "info");
    reconnectBanner = true;
  } else if (state === "disconnected") {
    // Without the server no call can be signaled; the server hangs up for us on its side.
    endCall();
    users = [];
    if (reason) showBanner(reason, "error");
  }
  renderConnection();
}

// ---- wiring -------------------------------------------------------------------------------

// The call page's wiring, run when the module loads (below), so that its handlers are in place
// before the page's load event: a login typed at once is never lost.
function start() {
  signaling.addEventListener("state", onConnectionState);
  signaling.addEventListener("message", onMessage);

  ui.loginForm.addEventListener("submit", (event) => {
    event.preventDefault();
    // The server trims and normalizes names too; doing it here keeps our own name recognizable
    // in the user list.
    const name = ui.loginName.value.trim().normalize("NFC");
    if (!name) {
      showBanner("Enter a name to log in.", "error");
      return;
    }
    hideBanner();
    signaling.connect(name);
  });
  ui.reconnect.addEventListener("click", () => {
    hideBanner();
    if (signaling.state === "reconnecting") {
      signaling.reconnectNow();
    } else {
      signaling.connect(signaling.name);
    }
  });
  ui.bannerClose.addEventListener("click", hideBanner);
  ui.accept.addEventListener("click", acceptCall);
  ui.decline.addEventListener("click", declineCall);
  ui.hangUp.addEventListener("click", hangUp);
  ui.chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.chatInput.value;
    if (!text.trim()) return;
    if (signaling.send({type: "message", text, id: signaling.id, date: Date.now()})) {
      ui.chatInput.value = "";
    } else {
      showBanner("Not connected: the message was not sent.", "error");
    }
  });
  // Leaving the page ends the call for the peer too (not every server does that for us).
  window.addEventListener("pagehide", () => endCall("", "info", {notifyPeer: true}));

  ui.loginName.value = params.get("name") ?? "";
  renderConnection();
  renderCall();
}

// index.html?watch=NAME is the watch page (watch.js: a receive-only call to NAME) instead.
if (params.has("watch")) {
  import("./watch.js");
} else {
  start();
}
