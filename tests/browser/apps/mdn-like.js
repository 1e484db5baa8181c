// A page that behaves as MDN's webrtc-from-chat client does (written from its behaviour, not
// its code):
//  - calling: camera and microphone first, their tracks added before the offer; the offer
//    is made in `negotiationneeded` and sent with `target`;
//  - called: setRemoteDescription first, then getUserMedia and addTransceiver() for each
//    track (so after SRD: new transceivers, not the offered m-lines), then the answer. The
//    new transceivers fire `negotiationneeded` once the state is stable again, and the page
//    sends a NEW video-offer in the same call (renegotiation);
//  - an offer in any signaling state is set with setRemoteDescription (Chromium's implicit
//    rollback of a local offer), then answered;
//  - hang-up, or ICE failed/disconnected/closed, ends the call.
// ?name=NAME (registers), ?call=NAME (calls that user as soon as it is online), ?server=URL.
import {addRemoteCandidate, offerFromStable, openAppSignaling, params, probe, stateSetter} from "./probe.js";

const myName = params.get("name") ?? "mdn";
let target = null;
let pc = null;
let camera = null;
let remoteStream = null;
const remoteVideo = document.getElementById("remote");
const localVideo = document.getElementById("local");
probe.watchVideo(remoteVideo);

const app = (window.app = {
  state: "connecting", users: [], offersSent: 0, offersReceived: 0, answersSent: 0,
  answersReceived: 0, candidatesSent: 0, candidatesReceived: 0, candidateErrors: 0,
  remoteTracks: [], calls: 0,
  call: (name) => invite(name),
  hangUp: () => hangUp(true),
  stats: () => probe.stats(pc),
  get signalingState() { return pc?.signalingState ?? "none"; },
  get connectionState() { return pc?.connectionState ?? "none"; },
});

const setState = stateSetter(app);

const {send} = openAppSignaling(myName, app, setState, async (msg) => {
  switch (msg.type) {
    case "rejectusername":
      probe.log(`my name is ${msg.name}`);
      break;
    case "userlist":
      if (params.get("call") && app.users.includes(params.get("call")) && !pc && app.calls === 0) {
        await invite(params.get("call"));
      }
      break;
    case "video-offer":
      await onOffer(msg);
      break;
    case "video-answer":
      app.answersReceived++;
      probe.sdp.push({remoteAnswer: msg.sdp?.sdp, localOffer: pc?.localDescription?.sdp});
      await pc?.setRemoteDescription(msg.sdp);
      break;
    case "new-ice-candidate":
      app.candidatesReceived++;
      await addRemoteCandidate(app, pc, msg);
      break;
    case "hang-up":
      probe.log(`hang-up from ${msg.name} (${msg.reason ?? "no reason"})`);
      hangUp(false);
      break;
  }
});

function newPeerConnection() {
  pc = new RTCPeerConnection({iceServers: []});
  remoteStream = new MediaStream();
  remoteVideo.srcObject = remoteStream;
  pc.onicecandidate = ({candidate}) => {
    app.candidatesSent++;
    send({type: "new-ice-candidate", target, candidate});
  };
  pc.ontrack = ({track, streams}) => {
    app.remoteTracks.push({kind: track.kind, id: track.id, streams: streams.map((s) => s.id)});
    probe.log(`remote ${track.kind} track ${track.id}`);
    remoteStream.addTrack(track);
  };
  offerFromStable(pc, (sdp) => {
    app.offersSent++;
    probe.log(`sending offer #${app.offersSent} to ${target}`);
    send({type: "video-offer", name: myName, target, sdp});
  });
  pc.onsignalingstatechange = () => probe.signalingStates.push(pc.signalingState);
  pc.oniceconnectionstatechange = () => {
    probe.log(`ice ${pc.iceConnectionState}`);
    if (["failed", "disconnected", "closed"].includes(pc.iceConnectionState)) hangUp(true);
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected") setState("in-call");
  };
}

async function getCamera() {
  if (!camera) {
    camera = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
    localVideo.srcObject = camera;
  }
  return camera;
}

async function invite(name) {
  if (pc) return;
  target = name;
  app.calls++;
  setState("calling");
  newPeerConnection();
  const stream = await getCamera();
  for (const track of stream.getTracks()) pc.addTrack(track, stream);  // negotiationneeded
}

async function onOffer(msg) {
  app.offersReceived++;
  target = msg.name;
  if (!pc) {
    app.calls++;
    setState("answering");
    newPeerConnection();
  }
  // Any state: a local offer is rolled back implicitly (Chromium).
  await pc.setRemoteDescription(msg.sdp);
  if (!camera) {
    const stream = await getCamera();
    for (const track of stream.getTracks()) pc.addTransceiver(track, {streams: [stream]});
  }
  await pc.setLocalDescription(await pc.createAnswer());
  probe.sdp.push({remote: msg.sdp.sdp, local: pc.localDescription.sdp});
  app.answersSent++;
  send({type: "video-answer", name: myName, target, sdp: pc.localDescription});
}

function hangUp(tell) {
  if (!pc) return;
  if (tell) send({type: "hang-up", name: myName, target});
  pc.onicecandidate = pc.ontrack = pc.onnegotiationneeded = null;
  pc.oniceconnectionstatechange = pc.onconnectionstatechange = null;
  pc.close();
  pc = null;
  camera?.getTracks().forEach((t) => t.stop());
  camera = null;
  remoteVideo.srcObject = null;
  localVideo.srcObject = null;
  setState("idle");
}
