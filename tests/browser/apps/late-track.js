// A page whose call starts with audio only: it calls (?call=NAME, offering to receive video
// too) or answers with its microphone alone; ?videoAfter=MS into the call (connected) it adds
// its camera's video track, which renegotiates (a new video-offer in the same call), and
// ?removeAfter=MS after that it removes it again (another offer). 0 or absent: never, the
// test may call app.addVideo() / app.removeVideo(). Offers are made in `negotiationneeded`
// from stable only; an offer received in any state is set and answered.
// ?name=NAME, ?server=URL.
import {addRemoteCandidate, offerFromStable, openAppSignaling, params, probe, stateSetter} from "./probe.js";

const myName = params.get("name") ?? "late";
const videoAfterMs = Number(params.get("videoAfter") ?? 0);
const removeAfterMs = Number(params.get("removeAfter") ?? 0);
let target = null;
let pc = null;
let mic = null;
let cameraTrack = null;
let videoSender = null;
let remoteStream = null;
const remoteVideo = document.getElementById("remote");
probe.watchVideo(remoteVideo);

const app = (window.app = {
  state: "connecting", users: [], offersSent: 0, offersReceived: 0, answersSent: 0,
  answersReceived: 0, candidateErrors: 0, remoteTracks: [], calls: 0,
  videoAddedAt: 0, videoRemovedAt: 0, renegotiated: [],  // offers/answers after the first
  addVideo: () => addVideo(),
  removeVideo: () => removeVideo(),
  hangUp: () => hangUp(true),
  stats: () => probe.stats(pc),
  get signalingState() { return pc?.signalingState ?? "none"; },
  get sendingVideo() { return !!videoSender?.track; },
});

const setState = stateSetter(app);

const {send} = openAppSignaling(myName, app, setState, async (msg) => {
  switch (msg.type) {
    case "userlist":
      if (params.get("call") && app.users.includes(params.get("call")) && !pc && app.calls === 0) {
        await call(params.get("call"));
      }
      break;
    case "video-offer":
      await onOffer(msg);
      break;
    case "video-answer":
      app.answersReceived++;
      await pc?.setRemoteDescription(msg.sdp);
      if (app.answersReceived + app.answersSent > 1) app.renegotiated.push("answer received");
      break;
    case "new-ice-candidate":
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
  pc.onicecandidate = ({candidate}) => send({type: "new-ice-candidate", target, candidate});
  pc.ontrack = ({track}) => {
    app.remoteTracks.push({kind: track.kind, id: track.id});
    probe.log(`remote ${track.kind} track ${track.id}`);
    remoteStream.addTrack(track);
  };
  offerFromStable(pc, (sdp) => {
    app.offersSent++;
    probe.log(`sending offer #${app.offersSent} to ${target}`);
    send({type: "video-offer", name: myName, target, sdp});
  });
  pc.onsignalingstatechange = () => probe.signalingStates.push(pc.signalingState);
  pc.onconnectionstatechange = () => {
    probe.log(`connection ${pc.connectionState}`);
    if (pc.connectionState === "connected" && app.state !== "in-call") {
      setState("in-call");
      if (videoAfterMs > 0) {
        setTimeout(async () => {
          await addVideo();
          if (removeAfterMs > 0) setTimeout(removeVideo, removeAfterMs);
        }, videoAfterMs);
      }
    }
    if (["failed", "closed"].includes(pc.connectionState)) hangUp(true);
  };
}

async function microphone() {
  mic ??= await navigator.mediaDevices.getUserMedia({audio: true});
  return mic;
}

async function call(name) {
  if (pc) return;
  target = name;
  app.calls++;
  setState("calling");
  newPeerConnection();
  const stream = await microphone();
  pc.addTrack(stream.getAudioTracks()[0], stream);
  pc.addTransceiver("video", {direction: "recvonly"});  // the remote's video, from the start
}

async function onOffer(msg) {
  app.offersReceived++;
  target = msg.name;
  const first = !pc;
  if (first) {
    app.calls++;
    setState("answering");
    newPeerConnection();
  }
  await pc.setRemoteDescription(msg.sdp);
  if (first) {
    const stream = await microphone();
    pc.addTrack(stream.getAudioTracks()[0], stream);  // takes the offered audio m-line
  }
  await pc.setLocalDescription(await pc.createAnswer());
  app.answersSent++;
  if (!first) app.renegotiated.push("answer sent");
  send({type: "video-answer", name: myName, target, sdp: pc.localDescription});
}

async function addVideo() {
  if (!pc || videoSender?.track) return;
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 320, height: 240}});
  cameraTrack = stream.getVideoTracks()[0];
  // Reuses the video transceiver that has only received so far (recvonly -> sendrecv).
  videoSender = pc.addTrack(cameraTrack, mic ?? stream);
  app.videoAddedAt = performance.now();
  probe.log("video track added");
}

function removeVideo() {
  if (!pc || !videoSender?.track) return;
  pc.removeTrack(videoSender);
  cameraTrack.stop();
  app.videoRemovedAt = performance.now();
  probe.log("video track removed");
}

function hangUp(tell) {
  if (!pc) return;
  if (tell) send({type: "hang-up", name: myName, target});
  pc.onicecandidate = pc.ontrack = pc.onnegotiationneeded = pc.onconnectionstatechange = null;
  pc.close();
  pc = null;
  mic?.getTracks().forEach((t) => t.stop());
  mic = null;
  cameraTrack?.stop();
  videoSender = null;
  remoteVideo.srcObject = null;
  setState("idle");
}
