// A page that behaves as the seed app (Swizec Teller's webrtc-sample, React) does on the wire,
// written from that behaviour: React defers its `targetUsername` state update, so nothing it
// sends names the other side the way the protocol says:
//  - its video-offer has no `target`;
//  - its video-answer names the caller in `targetUsername` (not `target`), or, with
//    ?answerKey=none, not at all;
//  - its candidates and hang-ups carry neither `target` nor `name`.
// It calls (app.call(), or ?call=1 as soon as anyone else is online) with camera and
// microphone, and answers an offer at once (?autoAnswer=0: only when the test calls
// app.answer()). An offer from its partner during a call is set and answered.
// ?name=NAME, ?server=URL.
import {addRemoteCandidate, offerFromStable, openAppSignaling, params, probe, stateSetter} from "./probe.js";

const myName = params.get("name") ?? "seed";
const answerKey = params.get("answerKey") ?? "targetUsername";
const autoAnswer = params.get("autoAnswer") !== "0";
let pc = null;
let partner = null;  // learned from the `name` the server stamps on what it relays
let pendingOffer = null;
let camera = null;
let remoteStream = null;
const remoteVideo = document.getElementById("remote");
probe.watchVideo(remoteVideo);

const app = (window.app = {
  state: "connecting", users: [], offersReceived: [], answersReceived: [], candidatesReceived: 0,
  candidateErrors: 0, hangUps: [], calls: 0,
  call: () => call(),
  answer: () => answer(),
  hangUp: () => hangUp(true),
  stats: () => probe.stats(pc),
  get partner() { return partner; },
});

const setState = stateSetter(app);

const {send} = openAppSignaling(myName, app, setState, async (msg) => {
  switch (msg.type) {
    case "userlist":
      if (params.get("call") === "1" && app.users.length > 1 && app.calls === 0) await call();
      break;
    case "video-offer":
      app.offersReceived.push(msg.name);
      if (pc && partner === msg.name) {
        await pc.setRemoteDescription(msg.sdp);  // renegotiation in the call
        await sendAnswer();
      } else if (!pc) {
        pendingOffer = msg;
        setState("ringing");
        if (autoAnswer) await answer();
      }
      break;
    case "video-answer":
      app.answersReceived.push(msg.name);
      partner = msg.name;
      await pc?.setRemoteDescription(msg.sdp);
      break;
    case "new-ice-candidate":
      app.candidatesReceived++;
      await addRemoteCandidate(app, pc, msg);
      break;
    case "hang-up":
      app.hangUps.push({name: msg.name, reason: msg.reason ?? ""});
      probe.log(`hang-up from ${msg.name} (${msg.reason ?? "no reason"})`);
      pendingOffer = null;
      hangUp(false);
      break;
  }
});

function newPeerConnection() {
  pc = new RTCPeerConnection({iceServers: []});
  remoteStream = new MediaStream();
  remoteVideo.srcObject = remoteStream;
  pc.onicecandidate = ({candidate}) => send({type: "new-ice-candidate", candidate});
  pc.ontrack = ({track}) => remoteStream.addTrack(track);
  offerFromStable(pc, (sdp) => send({type: "video-offer", name: myName, sdp}));
  pc.onsignalingstatechange = () => probe.signalingStates.push(pc.signalingState);
  pc.onconnectionstatechange = () => {
    probe.log(`connection ${pc.connectionState}`);
    if (pc.connectionState === "connected") setState("in-call");
    if (["failed", "closed"].includes(pc.connectionState)) hangUp(true);
  };
}

async function addCamera() {
  camera ??= await navigator.mediaDevices.getUserMedia({audio: true, video: true});
  for (const track of camera.getTracks()) pc.addTrack(track, camera);
}

async function call() {
  if (pc) return;
  app.calls++;
  setState("calling");
  newPeerConnection();
  await addCamera();  // negotiationneeded: the offer
}

async function answer() {
  const offer = pendingOffer;
  if (!offer || pc) return;
  pendingOffer = null;
  app.calls++;
  partner = offer.name;
  newPeerConnection();
  await pc.setRemoteDescription(offer.sdp);
  await addCamera();
  await sendAnswer();
}

async function sendAnswer() {
  await pc.setLocalDescription(await pc.createAnswer());
  const msg = {type: "video-answer", name: myName, sdp: pc.localDescription};
  if (answerKey === "targetUsername") msg.targetUsername = partner;
  send(msg);
}

function hangUp(tell) {
  if (!pc) return;
  if (tell) send({type: "hang-up"});
  pc.onicecandidate = pc.ontrack = pc.onnegotiationneeded = pc.onconnectionstatechange = null;
  pc.close();
  pc = null;
  partner = null;
  camera?.getTracks().forEach((t) => t.stop());
  camera = null;
  remoteVideo.srcObject = null;
  setState("idle");
}
