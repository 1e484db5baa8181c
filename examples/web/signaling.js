// The signaling connection: one WebSocket speaking the username protocol of MDN's
// "Signaling and video calling" sample (docs/protocol.md). It registers our name when the
// server sends our id, keeps the name the server actually gave us, and hands every message
// to the application as a "message" event. It knows nothing about calls.
//
// Events:
//   "state"   detail {state, reason}: "connecting" (socket opening, name not yet accepted),
//             "connected" (registered: the first user list arrived) or "disconnected"
//             (reason: why, for the user; empty after close()).
//   "message" detail: the parsed message object (every type, including id and userlist).

export class Signaling extends EventTarget {
  /** The name we are registered under (the server may change the one we asked for). */
  name = "";
  /** The id the server gave this connection, echoed in `username` and `message`. */
  id = null;
  state = "disconnected";

  #url;
  #ws = null;

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

  /** Closes the connection on purpose (no error for the user). */
  close() {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    ws.close(1000);
    this.#setState("disconnected", "");
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
        if (this.state === "connecting") this.#setState("connected", "");
        break;
      case "error":
        // An error before the first user list means the server refused to register us
        // (bad name, missing token...): give up this connection, the user picks again.
        if (this.state === "connecting") {
          const ws = this.#ws;
          this.#ws = null;
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

  #setState(state, reason) {
    if (state === this.state && !reason) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", {detail: {state, reason}}));
  }
}
