// The watch page's decisions (examples/web/watch.js), pure: no DOM, no WebRTC, no timers, the
// time passed in. Unit-tested by Node (tests/unit/watch_state_test.mjs). It imports nothing, so
// the test can load it as a data: URL.
//
// States, for the user (data-state of the page's watch-state line):
//   server      not connected to the signaling server (yet, or lost): nothing to watch
//   waiting     connected, the broadcaster is not online (the user list does not name it)
//   connecting  a call to the broadcaster is on its way (offer sent, ICE not connected yet)
//   live        the call is connected (ICE); the video plays
//   ended       the last call ended (why: the reason); the next call is due at callAt
//
// Retries: while the broadcaster is online and no call is up, it is called again after a
// capped, jittered, exponential delay (1 s, 2 s, 4 s ... up to 15 s, each drawn from its upper
// half), reset by every call that connected. A broadcaster that (re)appears in the user list is
// called at once, within joinSpreadMs (so the viewers of a restarted broadcast do not all call
// in the same millisecond). A broadcaster the list does not name is not called: the page waits
// for the list. A call that has not connected within connectTimeoutMs is abandoned and retried.
// A server connection that failed before registering is opened again on the same schedule.

export const WATCH_TIMING = {
  initialMs: 1000,
  maxMs: 15_000,
  joinSpreadMs: 1000,
  connectTimeoutMs: 20_000,
};

/** The n-th (from 0) retry delay in ms: in [d/2, d], d = min(initialMs * 2^n, maxMs). */
export function retryDelayMs(attempt, random) {
  const {initialMs, maxMs} = WATCH_TIMING;
  const d = Math.min(initialMs * 2 ** Math.min(attempt, 30), maxMs);
  return Math.round(d / 2 + random * (d / 2));
}

/**
 * The viewer's name: the page's &name= (trimmed, NFC, at most 64 characters) or else
 * viewer-<6 random letters and digits>. A name the server finds taken gets a number appended
 * (`rejectusername`, signaling.js keeps the name given); one it refuses is replaced by a
 * generated one (see WatchPlan.serverState).
 */
export function viewerName(asked, random = Math.random) {
  const name = typeof asked === "string" ? asked.trim().normalize("NFC").slice(0, 64) : "";
  if (name) return name;
  const letters = "abcdefghijklmnopqrstuvwxyz0123456789";
  let suffix = "";
  for (let i = 0; i < 6; i++) suffix += letters[Math.floor(random() * letters.length) % letters.length];
  return `viewer-${suffix}`;
}

export class WatchPlan {
  /** The broadcaster's name. */
  target;
  state = "server";
  /** Why the last call ended (the words for the user), or why the server is out of reach. */
  why = "";
  /** The server's state (signaling.js): connecting, connected, reconnecting, disconnected. */
  server = "connecting";
  /** The last user list named the target. */
  online = false;
  /** Calls made since the last one that connected. */
  attempts = 0;
  /** When (ms) the next call is due; null: none scheduled. */
  callAt = null;
  /** When (ms) the call on its way is abandoned. */
  connectDeadline = null;
  /** When (ms) to open the server connection again after it failed; null: not scheduled. */
  serverRetryAt = null;
  #serverAttempts = 0;
  #random;

  constructor(target, {random = Math.random} = {}) {
    this.target = target;
    this.#random = random;
  }

  get inCall() {
    return this.state === "connecting" || this.state === "live";
  }

  /**
   * The server connection's state changed. reason: signaling.js's words (for "disconnected").
   * refused: the server refused our name (the page then asks for a generated one).
   */
  serverState(state, now, {reason = ""} = {}) {
    this.server = state;
    if (state === "connected") {
      this.#serverAttempts = 0;
      this.serverRetryAt = null;
      if (!this.inCall) this.#idle();
      return;
    }
    // Who is online is unknown until the server is back. A call in progress is peer to peer
    // and goes on.
    this.online = false;
    this.callAt = null;
    if (!this.inCall) {
      this.state = "server";
      this.why = reason;
    }
    if (state === "disconnected") {
      this.serverRetryAt = now + retryDelayMs(this.#serverAttempts++, this.#random());
    }
  }

  /** A user list arrived: `online` says whether it names the target. */
  userList(online, now) {
    const appeared = online && !this.online;
    this.online = online;
    if (this.inCall) return;
    if (!online) {
      this.callAt = null;
      this.#idle();
      return;
    }
    if (appeared) {
      // Back (or there for the first time): call at once, whatever failed before.
      this.attempts = 0;
      this.callAt = now + Math.round(this.#random() * WATCH_TIMING.joinSpreadMs);
    } else if (this.callAt === null) {
      this.callAt = now + retryDelayMs(this.attempts, this.#random());
    }
  }

  /** A call to the target starts now (ours, or the target's offer that we answer). */
  callStarted(now) {
    this.state = "connecting";
    this.interrupted = false;
    this.callAt = null;
    this.attempts++;
    this.connectDeadline = now + WATCH_TIMING.connectTimeoutMs;
  }

  /** ICE of the live call lost its path (true) or found it again (false). */
  interrupted = false;

  /** The call connected (ICE). */
  callLive() {
    this.state = "live";
    this.interrupted = false;
    this.why = "";
    this.attempts = 0;
    this.connectDeadline = null;
  }

  /**
   * The call ended (the target hung up with a reason, ICE failed, the connection timed out...).
   * why: the words for the user. The next call is scheduled while the target is online.
   */
  callEnded(why, now) {
    this.state = "ended";
    this.why = why;
    this.connectDeadline = null;
    this.callAt = this.online && this.server === "connected"
        ? now + retryDelayMs(Math.max(0, this.attempts - 1), this.#random())
        : null;
  }

  /**
   * What to do at `now`: {action, wakeInMs}. action: "call" (call the target; then
   * callStarted), "abandon" (the call on its way took too long: end it, then callEnded),
   * "reconnect" (open the server connection again), or "" (nothing). wakeInMs: when to ask
   * again at the latest (0: only after the next event).
   */
  next(now) {
    if (this.serverRetryAt !== null && this.server === "disconnected") {
      if (now >= this.serverRetryAt) {
        this.serverRetryAt = null;
        return {action: "reconnect", wakeInMs: 0};
      }
      return {action: "", wakeInMs: this.serverRetryAt - now};
    }
    if (this.state === "connecting" && this.connectDeadline !== null) {
      if (now >= this.connectDeadline) return {action: "abandon", wakeInMs: 0};
      return {action: "", wakeInMs: this.connectDeadline - now};
    }
    if (!this.inCall && this.callAt !== null && this.online && this.server === "connected") {
      if (now >= this.callAt) return {action: "call", wakeInMs: 0};
      return {action: "", wakeInMs: this.callAt - now};
    }
    return {action: "", wakeInMs: 0};
  }

  /** The state line for the user: {state, text}. */
  describe(now) {
    const t = this.target;
    const inS = (at) => `${Math.max(1, Math.ceil((at - now) / 1000))} s`;
    switch (this.state) {
      case "server":
        if (this.server === "reconnecting") {
          return {state: "server", text: `Server lost: reconnecting… ${this.why}`.trim()};
        }
        if (this.server === "disconnected" && this.serverRetryAt !== null) {
          return {state: "server",
                  text: `${this.why || "Not connected to the server."} Trying again in ` +
                        `${inS(this.serverRetryAt)}…`};
        }
        return {state: "server", text: "Connecting to the server…"};
      case "waiting":
        return {state: "waiting",
                text: `Waiting for ${t} to go live…` +
                      (this.why ? ` The last broadcast ended: ${this.why}` : "")};
      case "connecting":
        return {state: "connecting", text: `Connecting to ${t}…`};
      case "live":
        return {state: "live",
                text: `Live: ${t}` + (this.interrupted ? " (connection interrupted…)" : "")};
      case "ended":
        return {state: "ended",
                text: `The broadcast ended: ${this.why || "no reason given"}` +
                      (this.callAt !== null ? ` Calling ${t} again in ${inS(this.callAt)}…` : "")};
    }
    return {state: this.state, text: ""};
  }

  // Not in a call: "waiting" while the target is offline, else the last outcome stays shown.
  #idle() {
    if (!this.online) {
      this.state = this.server === "connected" ? "waiting" : "server";
    } else if (this.state !== "ended") {
      this.state = "waiting";
    }
  }
}

/** Glare: the smaller name, compared byte by byte in UTF-8 (as the element does), keeps its offer. */
export function utf8Less(a, b) {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i];
  }
  return x.length < y.length;
}

/**
 * Why a watched call ended, when the broadcaster hung up with `reason`: a broadcaster that
 * answers "busy" has all its calls taken (max-calls); other reasons read as on the call page
 * (`callPageText`, outcome.js's words).
 */
export function hangUpWhy(target, reason, callPageText) {
  if (typeof reason === "string" && reason.trim() === "busy") {
    return `${target} takes no more viewers for now (busy).`;
  }
  return callPageText;
}
