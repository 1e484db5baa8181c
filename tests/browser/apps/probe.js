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
