// Why a call ended, in words for the user. A `hang-up` may carry a `reason` (docs/protocol.md):
// the words below are this client's, the GStreamer element's and the server's; anything else
// is shown as the peer sent it.
//
//   (none), hang-up     the peer hung up
//   declined            the peer declined the call
//   busy                the peer is in another call (or refuses calls for now)
//   user-unavailable    the server: the peer is not online
//   disconnected        the server: the peer lost its connection to the server
//   timeout             the call did not connect, or its media stopped, within the peer's time limit
//   invalid-sdp         the peer refused our session description
//   no-common-codec     the peer can decode nothing we send, or we nothing it sends
//   ice-failed          ICE found no network path between the two
//   failed[: why]       the call failed on the peer's side (why: its own words)
//   stopped             the peer's pipeline stopped

// At most this much of a reason the peer sent is shown (a reason is the peer's text).
const MAX_SHOWN = 200;

function shown(text) {
  const s = String(text).replace(/[\u0000-\u001f\u007f]/g, " ").trim();
  return s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN)}…` : s;
}

/**
 * The notice for a hang-up from `peer` with `reason`: {text, kind} (kind "info" or "error").
 * inCall: the call was established (a plain hang-up then reads "hung up").
 */
export function hangUpNotice(peer, reason, inCall) {
  const r = typeof reason === "string" ? reason.trim() : "";
  switch (r) {
    case "":
    case "hang-up":
      return {text: inCall ? `${peer} hung up.` : `${peer} ended the call.`, kind: "info"};
    case "declined":
      return {text: `${peer} declined the call.`, kind: "info"};
    case "busy":
      return {text: `${peer} is busy in another call.`, kind: "info"};
    case "user-unavailable":
      return {text: `${peer} is not online.`, kind: "error"};
    case "disconnected":
      return {text: `${peer} went offline (disconnected from the server).`, kind: "info"};
    case "timeout":
      return {text: `${peer} ended the call: timeout (the call did not connect, or no media ` +
                    `arrived, in time).`, kind: "error"};
    case "invalid-sdp":
      return {text: `${peer} refused the call: invalid-sdp (it cannot use this browser's ` +
                    `session description).`, kind: "error"};
    case "no-common-codec":
      return {text: `No common codec with ${peer}: the call cannot carry media.`, kind: "error"};
    case "ice-failed":
      return {text: `ICE failed: ${peer} found no network path to you.`, kind: "error"};
    case "stopped":
      return {text: `${peer} hung up: its pipeline stopped.`, kind: "info"};
    case "failed":
      return {text: `The call failed on ${peer}'s side.`, kind: "error"};
  }
  const failed = /^failed:\s*(.*)$/s.exec(r);
  if (failed) {
    return {text: `The call failed on ${peer}'s side: ${shown(failed[1])}`, kind: "error"};
  }
  return {text: `${peer} ended the call: ${shown(r)}`, kind: "error"};
}

/** The `reason` we send when the call fails here (the peer shows "failed: <why>"). */
export function failureReason(why) {
  return `failed: ${shown(why)}`;
}
