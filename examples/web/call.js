// One call: an RTCPeerConnection with one peer, the local camera and microphone, and the ICE
// candidates that arrive before the remote description. Every step (offer, answer, remote
// candidate) runs on one promise chain in arrival order, so an answer and the candidates
// right behind it never race. The call sends its signaling messages through `send`.
//
// Events:
//   "localstream"  the camera and microphone are open (this.localStream)
//   "remotetrack"  a track of the peer arrived (this.remoteStream holds them all)
//   "icestate"     detail: RTCPeerConnection.iceConnectionState
//   "connectionstate"  detail: RTCPeerConnection.connectionState (ICE and DTLS)
//
// A receive-only call (receiveOnly: the watch page, watch.js) never opens the camera or the
// microphone: its offer has an audio and a video transceiver, both recvonly, and its answer
// sends nothing.

/** An error opening the camera or microphone, with a message for the user. */
export class MediaAccessError extends Error {}

function describeMediaError(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera and microphone access was refused. Allow it in the browser to make calls.";
    case "NotFoundError":
      return "No camera or microphone was found.";
    case "NotReadableError":
      return "The camera or microphone is in use by another program.";
    default:
      return `Cannot open the camera or microphone: ${err?.message ?? err}`;
  }
}

async function openCameraAndMicrophone() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new MediaAccessError(
        "This page cannot use the camera: open it over https (or on localhost).");
  }
  try {
    try {
      return await navigator.mediaDevices.getUserMedia({audio: true, video: true});
    } catch (err) {
      if (err.name !== "NotFoundError") throw err;
      // A machine with a camera but no microphone (or the reverse) can still call.
      try {
        return await navigator.mediaDevices.getUserMedia({video: true});
      } catch {
        return await navigator.mediaDevices.getUserMedia({audio: true});
      }
    }
  } catch (err) {
    throw new MediaAccessError(describeMediaError(err));
  }
}

export class Call extends EventTarget {
  /** The name of the other side. */
  peer;
  localStream = null;
  remoteStream = new MediaStream();
  /** The offer of an incoming call, until it is accepted. */
  pendingOffer = null;
  /** ICE has connected at least once (set by the application from "icestate"). */
  iceConnected = false;

  #pc;
  #send;
  #steps = Promise.resolve();
  #earlyCandidates = [];
  #closed = false;
  #receiveOnly;

  constructor({peer, iceServers, send, receiveOnly = false}) {
    super();
    this.peer = peer;
    this.#receiveOnly = receiveOnly;
    this.#send = send;
    const pc = new RTCPeerConnection({iceServers});
    this.#pc = pc;
    pc.addEventListener("icecandidate", (event) => {
      // A null candidate only says gathering is over: nothing to tell the peer.
      if (event.candidate && !this.#closed) {
        this.#send({type: "new-ice-candidate", target: this.peer, candidate: event.candidate});
      }
    });
    pc.addEventListener("track", (event) => {
      // The peer may send tracks without a stream id (not every sender does): collect the
      // tracks into one stream of our own instead of relying on event.streams.
      const track = event.track;
      if (!this.remoteStream.getTracks().includes(track)) {
        this.remoteStream.addTrack(track);
        track.addEventListener("ended", () => this.remoteStream.removeTrack(track));
      }
      this.dispatchEvent(new Event("remotetrack"));
    });
    pc.addEventListener("iceconnectionstatechange", () => {
      this.dispatchEvent(new CustomEvent("icestate", {detail: pc.iceConnectionState}));
    });
    pc.addEventListener("connectionstatechange", () => {
      this.dispatchEvent(new CustomEvent("connectionstate", {detail: pc.connectionState}));
    });
  }

  get iceState() {
    return this.#pc.iceConnectionState;
  }

  get closed() {
    return this.#closed;
  }

  /** Caller: open the camera, send our offer. */
  offer() {
    return this.#step(async () => {
      await this.#attachLocalMedia();
      const offer = await this.#pc.createOffer();
      this.#ensureOpen();
      await this.#pc.setLocalDescription(offer);
      this.#ensureOpen();
      this.#send({type: "video-offer", target: this.peer, sdp: this.#pc.localDescription});
    });
  }

  /**
   * Callee (or the side that yields in glare, or a renegotiation): apply the peer's offer,
   * open the camera if it is not open yet, send our answer.
   */
  answer(offer) {
    return this.#step(async () => {
      if (this.#pc.signalingState === "have-local-offer") {
        // Both sides called each other and we yield: drop our own offer, keep our tracks.
        await this.#pc.setLocalDescription({type: "rollback"});
        this.#ensureOpen();
      }
      await this.#pc.setRemoteDescription(offer);
      this.#ensureOpen();
      await this.#addEarlyCandidates();
      await this.#attachLocalMedia();
      const answer = await this.#pc.createAnswer();
      this.#ensureOpen();
      await this.#pc.setLocalDescription(answer);
      this.#ensureOpen();
      this.#send({type: "video-answer", target: this.peer, sdp: this.#pc.localDescription});
    });
  }

  /** Caller: the peer's answer to our offer. */
  acceptAnswer(answer) {
    return this.#step(async () => {
      if (this.#pc.signalingState !== "have-local-offer") {
        console.warn("call: ignoring an answer to no offer of ours");
        return;
      }
      await this.#pc.setRemoteDescription(answer);
      this.#ensureOpen();
      await this.#addEarlyCandidates();
    });
  }

  /** An ICE candidate of the peer; kept until the remote description is there. */
  addRemoteCandidate(candidate) {
    return this.#step(async () => {
      if (!this.#pc.remoteDescription) {
        this.#earlyCandidates.push(candidate);
        return;
      }
      await this.#addCandidate(candidate);
    });
  }

  /** Ends the call here: closes the connection, turns the camera off. Idempotent. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#pc.close();
    this.localStream?.getTracks().forEach((track) => track.stop());
    this.remoteStream.getTracks().forEach((track) => track.stop());
  }

  #step(fn) {
    const run = this.#steps.then(() => {
      this.#ensureOpen();
      return fn();
    });
    // The chain goes on after a failed step; the failure goes to whoever asked for the step.
    this.#steps = run.catch(() => {});
    return run;
  }

  #ensureOpen() {
    if (this.#closed) throw new Error("the call has ended");
  }

  async #attachLocalMedia() {
    if (this.#receiveOnly) {
      // Our offer asks for the peer's audio and video; an answer adds nothing of ours.
      if (this.#pc.getTransceivers().length === 0 && this.#pc.signalingState === "stable") {
        this.#pc.addTransceiver("audio", {direction: "recvonly"});
        this.#pc.addTransceiver("video", {direction: "recvonly"});
      }
      return;
    }
    if (!this.localStream) {
      const stream = await openCameraAndMicrophone();
      if (this.#closed) {
        // The call ended while the browser asked for permission: turn the camera off again.
        stream.getTracks().forEach((track) => track.stop());
        this.#ensureOpen();
      }
      this.localStream = stream;
      this.dispatchEvent(new Event("localstream"));
    }
    const sending = new Set(this.#pc.getSenders().map((sender) => sender.track));
    for (const track of this.localStream.getTracks()) {
      if (!sending.has(track)) this.#pc.addTrack(track, this.localStream);
    }
  }

  async #addEarlyCandidates() {
    const early = this.#earlyCandidates;
    this.#earlyCandidates = [];
    for (const candidate of early) await this.#addCandidate(candidate);
  }

  async #addCandidate(candidate) {
    try {
      await this.#pc.addIceCandidate(candidate);
    } catch (err) {
      // One bad or stale candidate (e.g. of an offer dropped in glare) must not end the call.
      console.warn("call: ignoring an ICE candidate the browser refused", candidate, err);
    }
  }
}
