// Test instrumentation shared by the foreign-app pages (not part of any app's behaviour): what
// a test asks a page, kept on window.probe.
//   probe.log(text)            a line of the page's own log (returned by probe.dump())
//   probe.sent / probe.received  the signaling messages, {type, name, target, targetUsername,
//                                reason, code}, in order
//   probe.watchVideo(video)    counts the frames the <video> presents (requestVideoFrameCallback:
//                              Firefox's getVideoPlaybackQuality() stays 0 for WebRTC) and the
//                              longest gap between two of them
//   probe.stats(pc)            getStats() summed by kind: frames decoded, packets and bytes
//                              received and sent
// and the plumbing the pages have in common (each keeps its own behaviour on the wire):
// params, openSignaling() and openAppSignaling() (registering, the user list, errors while
// handling a message), stateSetter(), addRemoteCandidate(), offerFromStable().
export const probe = {
  lines: [],
  sent: [],
  received: [],
  errors: [],
  signalingStates: [],
  sdp: [],  // descriptions a page chose to keep, for failure reports
  frames: 0,
  firstFrameAt: 0,
  lastFrameAt: 0,
  maxGapMs: 0,
  log(text) {
    const line = `${(performance.now() / 1000).toFixed(2)} ${text}`;
    this.lines.push(line);
    if (this.lines.length > 400) this.lines.shift();
    console.log(line);
  },
  note(list, msg) {
    list.push({
      type: msg.type, name: msg.name, target: msg.target, targetUsername: msg.targetUsername,
      reason: msg.reason, code: msg.code, at: performance.now(),
    });
  },
  watchVideo(video) {
    const onFrame = () => {
      const now = performance.now();
      if (this.frames > 0) this.maxGapMs = Math.max(this.maxGapMs, now - this.lastFrameAt);
      else this.firstFrameAt = now;
      this.frames++;
      this.lastFrameAt = now;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  },
  async stats(pc) {
    const out = {
      video: {framesDecoded: 0, packetsReceived: 0, bytesReceived: 0, packetsSent: 0, bytesSent: 0},
      audio: {packetsReceived: 0, bytesReceived: 0, packetsSent: 0, bytesSent: 0},
    };
    if (!pc || pc.signalingState === "closed") return out;
    const report = await pc.getStats();
    report.forEach((s) => {
      const kind = s.kind ?? s.mediaType;
      if (!out[kind]) return;
      if (s.type === "inbound-rtp") {
        out[kind].packetsReceived += s.packetsReceived ?? 0;
        out[kind].bytesReceived += s.bytesReceived ?? 0;
        if (kind === "video") out.video.framesDecoded += s.framesDecoded ?? 0;
      } else if (s.type === "outbound-rtp") {
        out[kind].packetsSent += s.packetsSent ?? 0;
        out[kind].bytesSent += s.bytesSent ?? 0;
      }
    });
    return out;
  },
  dump() {
    return {lines: this.lines, sent: this.sent, received: this.received, errors: this.errors,
            signalingStates: this.signalingStates, frames: this.frames, maxGapMs: this.maxGapMs,
            sdp: this.sdp};
  },
};
window.probe = probe;

// The page's parameters: ?name=alice&server=ws://host:port/&...
export const params = new URLSearchParams(location.search);

// The signaling WebSocket, as the sample apps open it (subprotocol "json"), logged.
export function openSignaling(onMessage) {
  const url = params.get("server") ?? `ws://${location.host}/`;
  const ws = new WebSocket(url, "json");
  const send = (msg) => {
    probe.note(probe.sent, msg);
    ws.send(JSON.stringify(msg));
  };
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data);
    probe.note(probe.received, msg);
    if (msg.type === "error") {
      probe.errors.push(`${msg.code}: ${msg.message}`);
      probe.log(`server error ${msg.code}: ${msg.message}`);
    }
    onMessage(msg);
  });
  ws.addEventListener("close", () => probe.log("signaling closed"));
  return {ws, send};
}

// `setState(state)` for `app`: app.state, the page's #state element, and a log line.
export function stateSetter(app) {
  return (state) => {
    app.state = state;
    document.getElementById("state").textContent = state;
    probe.log(`state ${state}`);
  };
}

// openSignaling() with what every page does the same: it registers as `name` when the server
// sends its id, keeps the user list in app.users (and is idle once the first came), and an
// error thrown while handling a message goes to probe.errors. `onMessage(msg)` (async) then
// does the page's own part, for every message (also id and userlist).
export function openAppSignaling(name, app, setState, onMessage) {
  const signaling = openSignaling(async (msg) => {
    try {
      if (msg.type === "id") {
        signaling.send({type: "username", name, id: msg.id, date: Date.now()});
      } else if (msg.type === "userlist") {
        app.users = msg.users;
        if (app.state === "connecting") setState("idle");
      }
      await onMessage(msg);
    } catch (err) {
      probe.errors.push(`${msg.type}: ${err.message}`);
      probe.log(`handling ${msg.type}: ${err.message}`);
    }
  });
  return signaling;
}

// A new-ice-candidate message's candidate to `pc` (dropped when there is no call); a failure
// is counted in app.candidateErrors and logged.
export async function addRemoteCandidate(app, pc, msg) {
  if (!pc) return;
  try {
    await pc.addIceCandidate(msg.candidate ?? undefined);
  } catch (err) {
    app.candidateErrors++;
    probe.log(`addIceCandidate: ${err.message}`);
  }
}

// Offers in `negotiationneeded`, from the stable state only (as the sample apps do): the offer
// is set, then `sendOffer(description)` sends it; a failure goes to probe.errors.
export function offerFromStable(pc, sendOffer) {
  pc.onnegotiationneeded = async () => {
    try {
      const offer = await pc.createOffer();
      if (pc.signalingState !== "stable") return;
      await pc.setLocalDescription(offer);
      sendOffer(pc.localDescription);
    } catch (err) {
      probe.errors.push(`negotiationneeded: ${err.message}`);
    }
  };
}
