// gst-launch-1.0 pipelines with the webrtccall element, for the browser tests and benches:
// a process whose `-m -v` output is parsed as it streams. The element's bus messages
// (webrtccall-*) become `messages`, the fakesinks' last-message lines count buffers, and the
// caps lines name the encoders inside the element (`encoders`: what a user sees with
// gst-launch-1.0 -v). WCC_PIPELINE_LOG_DIR=DIR keeps each pipeline's whole output in
// DIR/LABEL.log.
import {spawn} from "node:child_process";
import {createWriteStream} from "node:fs";
import {join} from "node:path";
import {createInterface} from "node:readline";

export const STEP_TIMEOUT_MS = 20_000;

// Every pipeline started, for reports; never leave one running behind the program, whatever
// ends it.
export const pipelines = [];
process.on("exit", () => pipelines.forEach((p) => p.kill("SIGKILL")));

export const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;

// Polls `predicate` (sync or async) every 20 ms until it returns something truthy; returns it.
export async function waitUntil(what, predicate, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds(timeoutMs)} waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// `promise`, or null after `ms`.
export function within(ms, promise) {
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Parses the fields of a serialized GstStructure: `name, a=(string)x, b=(string)"x\ y";`.
export function parseStructure(text) {
  const fields = {};
  const re = /([\w-]+)=\([\w]+\)("(?:[^"\\]|\\.)*"|<[^>]*>|[^,;]*)/g;
  for (let m; (m = re.exec(text));) {
    let value = m[2];
    if (value.startsWith('"')) value = value.slice(1, -1);
    fields[m[1]] = value.replace(/\\(.)/g, "$1");
  }
  return fields;
}

// The video encoders: GObject type names, as gst-launch-1.0 -v prints them, and factories.
const ENCODER_TYPES = {
  GstVP8Enc: "vp8enc",
  GstVP9Enc: "vp9enc",
  GstOpenh264Enc: "openh264enc",
  GstX264Enc: "x264enc",
};

export class Pipeline {
  messages = [];  // {name, fields, text (the fields unescaped, as printed), at}
  sinks = {};     // fakesink name -> {buffers, caps, firstAt, eos}
  encoders = {};  // encoder type (GstVP8Enc, GstOpenh264Enc, ...) -> Set of element names
  errors = [];
  exit = null;    // {code, signal} once exited
  #lines = [];    // the output, without the per-buffer lines (for failure reports)
  #stderr = [];
  #log;
  #waitingForEos = false;
  #gotEos = false;

  // label: for messages; args: gst-launch-1.0's arguments; log(text): where bus messages go.
  constructor(label, args, {log = () => {}} = {}) {
    this.label = label;
    this.args = args;
    this.#log = log;
    // Its lines arrive as they are printed, also through a pipe (measured: 60 buffers of a
    // 30/s source came in 54 separate reads), so the time a line is read is when it happened.
    // WCC_PIPELINE_EXEC: a command that runs gst-launch-1.0 elsewhere, e.g. "nsenter
    // --net=/proc/PID/ns/net" (run.sh, for tests whose node runs in another namespace).
    const exec = (process.env.WCC_PIPELINE_EXEC ?? "").split(" ").filter(Boolean);
    this.child = spawn(exec[0] ?? "gst-launch-1.0", [...exec.slice(1), ...(exec.length ? ["gst-launch-1.0"] : []), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {GST_DEBUG: "webrtccall:4", GST_DEBUG_NO_COLOR: "1", ...process.env},
    });
    this.startedAt = Date.now();
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        this.exit = {code, signal};
        resolve(this.exit);
      });
    });
    this.child.on("error", (err) => this.errors.push(`cannot run gst-launch-1.0: ${err.message}`));
    if (process.env.WCC_PIPELINE_LOG_DIR) {
      const file = createWriteStream(join(process.env.WCC_PIPELINE_LOG_DIR, `${label}.log`));
      this.child.stdout.pipe(file);
      this.child.stderr.pipe(file);
    }
    createInterface({input: this.child.stdout}).on("line", (line) => this.#onLine(line));
    createInterface({input: this.child.stderr}).on("line", (line) => {
      this.#stderr.push(line);
      if (this.#stderr.length > 300) this.#stderr.shift();
    });
    pipelines.push(this);
  }

  #onLine(line) {
    const now = Date.now();
    // /GstPipeline:pipeline0/GstFakeSink:vsink: last-message = chain   ******* (vsink:sink) ...
    let m = line.match(/^\/GstPipeline:[^/]+\/GstFakeSink:(\w+): last-message = chain\b/);
    if (m) {
      const sink = this.#sink(m[1]);
      if (sink.buffers++ === 0) sink.firstAt = now;
      return;
    }
    m = line.match(/^\/GstPipeline:[^/]+\/GstFakeSink:(\w+): last-message = event\b.*\(type: eos\b/);
    if (m) this.#sink(m[1]).eos = true;
    m = line.match(/^\/GstPipeline:[^/]+\/GstFakeSink:(\w+)\.GstPad:sink: caps = (.*)$/);
    if (m) this.#sink(m[1]).caps = m[2];
    // The caps event as the sink saw it: gst-launch-1.0 now and then prints no notification of
    // the pad's caps (seen under AddressSanitizer, 1 run in 3), while the sink's last-message
    // about the caps event was there.
    // ... last-message = event   ******* (vsink:sink) E (type: caps (12814), GstEventCaps, caps=(GstCaps)"video/x-raw\,\ ..."
    m = line.match(/^\/GstPipeline:[^/]+\/GstFakeSink:(\w+): last-message = event\b.*\(type: caps\b.*caps=\(GstCaps\)"((?:[^"\\]|\\.)*)"/);
    if (m && !this.#sink(m[1]).caps) this.#sink(m[1]).caps = m[2].replace(/\\(.)/g, "$1");
    // /GstPipeline:pipeline0/GstWebRTCCall:c/GstOpenh264Enc:openh264enc0.GstPad:src: caps = ...
    m = line.match(/^\/GstPipeline:[^/]+\/GstWebRTCCall:c\/(?:[^ ]*\/)?(\w+):([\w-]+)\.GstPad:\w+: caps = /);
    if (m && ENCODER_TYPES[m[1]]) (this.encoders[m[1]] ??= new Set()).add(m[2]);
    // Got message #132 from element "openh264enc0" (state-changed): ... (an encoder that has
    // not negotiated caps yet, named after its factory).
    m = line.match(/^Got message #\d+ from element "([\w-]+)" \(state-changed\)/);
    if (m) {
      const type = Object.keys(ENCODER_TYPES).find((t) => m[1].includes(ENCODER_TYPES[t]));
      if (type) (this.encoders[type] ??= new Set()).add(m[1]);
    }
    if (!/^(\/GstPipeline|Got message #\d+ from \w+ "[^"]*" \((property-notify|state-changed|stream-status|latency|async-done|new-clock|qos|stream-start|tag)\)|[A-Za-z0-9+/=]*$|-----(BEGIN|END) |Redistribute latency)/.test(line)) {
      this.#lines.push(line);
      if (this.#lines.length > 300) this.#lines.shift();
    }
    // Got message #166 from element "c" (element): webrtccall-registered, name=(string)gst, ...
    m = line.match(/^Got message #\d+ from element "c" \(element\): (webrtccall-[\w-]+)(.*)$/);
    if (m) {
      const message = {name: m[1], fields: parseStructure(m[2]), text: m[2].replace(/\\(.)/g, "$1"), at: now};
      this.messages.push(message);
      this.#log(`${this.label}: ${m[1]} ${JSON.stringify(message.fields)}`);
      return;
    }
    if (/^ERROR: /.test(line)) this.errors.push(line);
    if (line === "Waiting for EOS...") this.#waitingForEos = true;
    if (/^Got EOS from element/.test(line)) this.#gotEos = true;
  }

  #sink(name) {
    return (this.sinks[name] ??= {buffers: 0, caps: "", firstAt: null, eos: false});
  }

  buffers(sink) {
    return this.sinks[sink]?.buffers ?? 0;
  }

  // How many messages `name` it posted whose fields, as printed, contain `words`.
  count(name, words = "") {
    return this.messages.filter((m) => m.name === name && m.text.includes(words)).length;
  }

  // gst-launch-1.0 -e got SIGINT and waits for the pipeline's EOS.
  eosWaiting() {
    return this.#waitingForEos && !this.#gotEos;
  }

  // {GstVP8Enc: ["vp8enc0"], ...}: every encoder the element has had so far.
  encoderNames() {
    return Object.fromEntries(Object.entries(this.encoders).map(([t, names]) => [t, [...names]]));
  }

  alive() {
    return this.exit === null && this.child.exitCode === null;
  }

  // Fails at once when the pipeline died or posted an error.
  check() {
    if (this.errors.length) throw new Error(`${this.label}: ${this.errors.join("; ")}`);
    if (!this.alive()) throw new Error(`${this.label} exited (${JSON.stringify(this.exit)})`);
  }

  // The first message `name` from index `from` on that satisfies `match`.
  async waitMessage(name, {from = 0, match = () => true, timeoutMs = STEP_TIMEOUT_MS} = {}) {
    let found;
    await waitUntil(`${this.label} posts ${name}`, () => {
      found = this.messages.slice(from).find((msg) => msg.name === name && match(msg.fields));
      if (!found) this.check();
      return found;
    }, timeoutMs);
    return found;
  }

  // `more` buffers on the fakesink `sink` after those so far; returns the count.
  async expectBuffers(sink, more, what = "") {
    const before = this.buffers(sink);
    await waitUntil(`${this.label} receives ${more} more buffers on ${sink} ${what}(${before} so far)`,
                    () => {
                      this.check();
                      return this.buffers(sink) >= before + more;
                    });
    return this.buffers(sink);
  }

  report() {
    console.error(`---- ${this.label}: gst-launch-1.0 ${this.args.join(" ")}`);
    console.error(`exit: ${JSON.stringify(this.exit)}; buffers: ${JSON.stringify(this.sinks)}; ` +
                  `encoders: ${JSON.stringify(this.encoderNames())}`);
    console.error("stdout (last lines, without per-buffer lines):\n  " +
                  this.#lines.slice(-80).join("\n  "));
    console.error("stderr (last lines):\n  " + (this.#stderr.slice(-120).join("\n  ") || "(empty)"));
  }

  kill(signal = "SIGKILL") {
    if (this.alive()) this.child.kill(signal);
  }

  // SIGINT, then SIGKILL after 5 s.
  async stop() {
    this.kill("SIGINT");
    if (!(await within(5000, this.exited))) this.kill("SIGKILL");
    await this.exited;
  }
}

// A pipeline sending a test pattern (320x240, 30/s) and a tone through `webrtccall name=c`
// (signaling-server=wsUrl, then `properties`). The received video and audio of the element's
// first `receive` calls go to fakesinks: vsink and asink for the first (its pads video_src_0
// and audio_src_0), vsink1 and asink1 for the second, ... (gst-launch-1.0 links a pad by its
// name once it appears; the element numbers them in order over its life). `eos`:
// gst-launch-1.0 -e (SIGINT sends EOS through the pipeline).
export function startPipeline(label, wsUrl, properties, {log, receive = 1, eos = false} = {}) {
  const sinks = [];
  for (let i = 0; i < receive; i++) {
    const suffix = i === 0 ? "" : String(i);
    // async=false: a sink whose pad never comes (or comes late) holds nobody else in PAUSED.
    sinks.push(`c.video_src_${i}`, "!", "queue", "!", "fakesink", `name=vsink${suffix}`, "silent=false", "async=false",
               `c.audio_src_${i}`, "!", "queue", "!", "fakesink", `name=asink${suffix}`, "silent=false", "async=false");
  }
  return new Pipeline(label, [
    "-m", "-v", ...(eos ? ["-e"] : []),
    "webrtccall", "name=c", `signaling-server=${wsUrl}`, ...properties,
    "videotestsrc", "is-live=true", "!", "video/x-raw,width=320,height=240,framerate=30/1", "!",
    "c.video_0",
    "audiotestsrc", "is-live=true", "!", "c.audio_0",
    ...sinks,
  ], {log});
}
