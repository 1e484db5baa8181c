// The signaling connection: one WebSocket speaking the username protocol of MDN's
// "Signaling and video calling" sample (docs/protocol.md). It registers our name when the
// server sends our id, keeps the name the server actually gave us, and hands every message
// to the application as a "message" event. It knows nothing about calls.
//
// Once registered, a lost connection is opened again by itself, after a capped, jittered,
// exponential delay (1 s, 2 s, 4 s ... up to 30 s, each drawn from its upper half), so a
// restarted server is not hit by every client at the same instant; the same name is asked
// for again. A connection that never registered is not retried: the user picks again.
//
// Events:
//   "state"   detail {state, reason, retryInMs}: "connecting" (socket opening, name not yet
//             accepted), "connected" (registered: the first user list arrived),
//             "reconnecting" (lost after registering; the next attempt is in retryInMs) or
//             "disconnected" (reason: why, for the user; empty after close()).
//   "message" detail: the parsed message object (every type, including id and userlist).

export class Signaling extends EventTarget {
  /** The name we are registered under (the server may change the one we asked for). */
  name = "";
  /** The id the server gave this connection, echoed in `username` and `message`. */
  id = null;
  state = "disconnected";
  /** When the next reconnection attempt is due (Date.now() time), while "reconnecting". */
  retryAt = 0;

  #url;
  #ws = null;
  #registered = false;   // this connection, or the one it replaces, got as far as the user list
  #attempts = 0;         // failed attempts since the last registration
  #retryTimer = 0;

  /** The reconnection delays in ms: the n-th (from 0) is in [d/2, d], d = min(initial * 2^n, max). */
  static backoff = {initialMs: 1000, maxMs: 30_000};
  static nextDelayMs(attempt, random = Math.random()) {
    const {initialMs, maxMs} = Signaling.backoff;
    const d = Math.min(initialMs * 2 ** Math.min(attempt, 30), maxMs);
    return Math.round(d / 2 + random * (d / 2));
  }

  constructor(url) {
    super();
    this.#url = url;
  }

  get url() {
    return this.#url;
  }

  /** Opens a new connection and registers as `name`. Drops any current connection. */
  connect(name) {
    this.close();
    this.#attempts = 0;
    this.#open(name);
  }

  /** While "reconnecting": tries at once instead of waiting for the next attempt. */
  reconnectNow() {
    if (this.state !== "reconnecting") return;
    clearTimeout(this.#retryTimer);
    this.#open(this.name);
  }

  #open(name) {
    this.name = name;
    this.id = null;
    let ws;
    try {
      // The sample's client asks for the "json" subprotocol; servers written for it expect that.
      ws = new WebSocket(this.#url, "json");
    } catch (err) {
      this.#setState("disconnected", `Cannot connect to ${this.#url}: ${err.message}`);
      return;
    }
    this.#ws = ws;
    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
    });
    ws.addEventListener("message", (event) => {
      if (ws === this.#ws) this.#receive(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.#ws) return;  // a connection we dropped ourselves
      this.#ws = null;
      if (this.#registered) {
        this.#scheduleReconnect(opened ? `The connection to the server was lost (code ${event.code}).`
                                       : `Cannot reach the signaling server at ${this.#url}.`);
        return;
      }
      let reason;
      if (!opened) {
        reason = `Cannot reach the signaling server at ${this.#url}.`;
      } else if (this.state === "connecting") {
        reason = "The server closed the connection before accepting the name" +
                 (event.reason ? `: ${event.reason}` : ".");
      } else {
        reason = `The connection to the server was lost (code ${event.code}` +
                 (event.reason ? `: ${event.reason}` : "") + ").";
      }
      this.#setState("disconnected", reason);
    });
    this.#setState("connecting", "");
  }

  /** Closes the connection on purpose (no error for the user), and stops reconnecting. */
  close() {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = 0;
    this.#registered = false;
    const ws = this.#ws;
    this.#ws = null;
    if (ws) ws.close(1000);
    if (ws || this.state === "reconnecting") this.#setState("disconnected", "");
  }

  #scheduleReconnect(reason) {
    const delay = Signaling.nextDelayMs(this.#attempts++);
    this.retryAt = Date.now() + delay;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#open(this.name), delay);
    this.#setState("reconnecting", reason, delay);
  }

  /** Sends one message. Returns false when there is no open connection. */
  send(message) {
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(message));
    return true;
  }

  #receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      console.warn("signaling: ignoring a message that is not JSON", text);
      return;
    }
    if (msg === null || typeof msg !== "object" || typeof msg.type !== "string") {
      console.warn("signaling: ignoring a message without a type", msg);
      return;
    }
    switch (msg.type) {
      case "id":
        this.id = msg.id;
        this.send({type: "username", name: this.name, id: msg.id, date: Date.now()});
        break;
      case "rejectusername":
        // The name was taken: the server gave us another one.
        if (typeof msg.name === "string") this.name = msg.name;
        break;
      case "userlist":
        if (this.state === "connecting") {
          this.#registered = true;
          this.#attempts = 0;
          this.#setState("connected", "");
        }
        break;
      case "error":
        // An error before the first user list means the server refused to register us
        // (bad name, missing token...): give up this connection, the user picks again.
        if (this.state === "connecting") {
          const ws = this.#ws;
          this.#ws = null;
          this.#registered = false;
          ws?.close(1000);
          this.#setState("disconnected",
                         `The server refused the name "${this.name}": ` +
                         `${msg.message ?? msg.code ?? "no reason given"}`);
          return;
        }
        break;
    }
    this.dispatchEvent(new CustomEvent("message", {detail: msg}));
  }

  #setState(state, reason, retryInMs = 0) {
    if (state === this.state && !reason) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", {detail: {state, reason, retryInMs}}));
  }
}
