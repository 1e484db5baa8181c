// The demo (README command 1) as a newcomer runs it: examples/demo.sh starts the server and
// the pipeline user "gstreamer" (examples/pipelines/demo-user.py); headless Chromium opens
// the URL the script prints, logs in, sees gstreamer, calls it:
//   - the page decodes moving video (frames counted, the picture changes: the ball moves);
//   - the pipeline got the page's video: the page's fake camera (a red picture, a Y4M file
//     made here) is in the top left corner of the picture the page gets back;
//   - hang up, call again: the second call gets its inset too (gst-launch-1.0 would link the
//     first call's pads only);
//   - two pages at once: both get the picture with both their cameras, one per corner;
//   - SIGINT to demo.sh: it exits 0 within a few seconds, and every process it started (the
//     server, the pipeline) is gone, the port free.
// Run by run.sh (in its network namespace; the server run.sh starts is not used).
//   node demo.test.mjs IGNORED-URL    (WCC_SERVER_BIN: build/signaling/webrtc-call-server)
import {execFileSync, spawn} from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import {createInterface} from "node:readline";
import {fileURLToPath} from "node:url";
import {waitUntil} from "./pipeline.mjs";
import * as web from "./web-client.mjs";

const {STEP_TIMEOUT_MS, byTestId, userEntry, waitForState, login} = web;

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const serverBin = process.env.WCC_SERVER_BIN;
if (!serverBin) {
  console.error("demo.test.mjs: WCC_SERVER_BIN is not set (run it through run.sh)");
  process.exit(2);
}
// build/signaling/webrtc-call-server -> build
const buildDir = path.dirname(path.dirname(path.resolve(serverBin)));

const TOTAL_TIMEOUT_MS = 150_000;
const STOP_WITHIN_MS = 5000;  // "Ctrl-C stops all of it" within a few seconds

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (text) => console.log(`[${elapsed()}] ${text}`);

// ---- the fake camera: a red picture --------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wcc-demo-test-"));
const camera = path.join(tmp, "red.y4m");
{
  // 320x240 I420, full range: Y 76, Cb 85, Cr 255 is pure red. Chromium loops the file.
  const w = 320, h = 240, frames = 30;
  const frame = Buffer.concat([
    Buffer.from("FRAME\n"), Buffer.alloc(w * h, 76), Buffer.alloc(w * h / 4, 85),
    Buffer.alloc(w * h / 4, 255),
  ]);
  fs.writeFileSync(camera, Buffer.concat([
    Buffer.from(`YUV4MPEG2 W${w} H${h} F30:1 Ip A1:1 C420jpeg\n`),
    ...Array(frames).fill(frame),
  ]));
}

// ---- the demo script -----------------------------------------------------------------------

// examples/demo.sh --no-build --port 0 ARGS..., its output parsed as it streams.
function startDemo(args = []) {
  const d = {lines: [], exited: null};
  d.child = spawn("bash", [path.join(root, "examples/demo.sh"), "--no-build", "--port", "0", ...args], {
    cwd: tmp,  // the script finds its own directory; relative file names are from here
    stdio: ["ignore", "pipe", "pipe"],
    env: {...process.env, BUILDDIR: buildDir},
  });
  d.pid = d.child.pid;
  d.exit = new Promise((resolve) => d.child.on("exit", (code, signal) => resolve({code, signal})));
  d.exit.then((e) => (d.exited = e));
  for (const stream of [d.child.stdout, d.child.stderr]) {
    createInterface({input: stream}).on("line", (line) => {
      d.lines.push(line);
      if (/^demo(-user)?:/.test(line.trim())) log(`demo | ${line.trim()}`);
    });
  }
  d.said = (re) => d.lines.find((l) => re.test(l));
  return d;
}
let demo = startDemo();

// Every process under `pid` (from /proc: this namespace shares the machine's pid space).
function descendants(pid) {
  const children = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  const out = [];
  const todo = [pid];
  while (todo.length) {
    for (const c of children.get(todo.pop()) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

function processInfo(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    if (state === "Z") return null;  // exited, not reaped yet
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    return null;
  }
}

function killQuietly(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

function portAccepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect({host: "127.0.0.1", port});
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

// ---- pictures ------------------------------------------------------------------------------

const REMOTE_VIDEO = '[data-testid="remote-video"]';

// The remote video's current picture, 64x48, as RGB bytes; and the mean colour of the middle
// of the top left inset (demo-user.py: 192x144 at 12,12 of 640x480), and of the top right one
// (at 436,12: the second call's).
function grab(page) {
  return page.$eval(REMOTE_VIDEO, (v) => {
    const c = document.createElement("canvas");
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const g = c.getContext("2d");
    g.drawImage(v, 0, 0);
    const sx = c.width / 640, sy = c.height / 480;
    const meanOf = (x) => {
      const inset = g.getImageData(Math.round(x * sx), Math.round(40 * sy),
                                   Math.round(136 * sx), Math.round(88 * sy)).data;
      const mean = [0, 0, 0];
      for (let i = 0; i < inset.length; i += 4) for (let k = 0; k < 3; k++) mean[k] += inset[i + k];
      return mean.map((m) => Math.round(m / (inset.length / 4)));
    };
    const small = document.createElement("canvas");
    small.width = 64;
    small.height = 48;
    small.getContext("2d").drawImage(v, 0, 0, 64, 48);
    const px = small.getContext("2d").getImageData(0, 0, 64, 48).data;
    const rgb = [];
    for (let i = 0; i < px.length; i += 4) rgb.push(px[i], px[i + 1], px[i + 2]);
    return {
      width: v.videoWidth, height: v.videoHeight, frames: v.getVideoPlaybackQuality().totalVideoFrames,
      inset: meanOf(40), inset2: meanOf(464), rgb,
    };
  });
}

const isRed = ([r, g, b]) => r > 150 && g < 90 && b < 90;

async function expectMovingVideoWithInset(page, label) {
  await page.waitForFunction((sel) => {
    const v = document.querySelector(sel);
    return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0;
  }, REMOTE_VIDEO, {timeout: STEP_TIMEOUT_MS, polling: 50}).catch(() => {
    throw new Error(`${label}: no remote video frame decoded`);
  });
  // The inset appears once the pipeline decodes the page's first frames.
  let shot;
  await waitUntil(`${label}: the page's red camera shows in the top left corner of the picture`,
                  async () => isRed((shot = await grab(page)).inset), STEP_TIMEOUT_MS).catch((err) => {
    throw new Error(`${err.message}: its mean colour there is rgb(${shot?.inset})`);
  });
  const a = shot;
  // Pixels (of 64x48) that changed a lot since `a`: the ball moving over the black background.
  // The noise of two VP8 encodings changes a static picture by a few levels, never by 64.
  const changedSince = (x) => {
    let n = 0;
    for (let i = 0; i < a.rgb.length; i += 3) {
      const d = Math.max(...[0, 1, 2].map((k) => Math.abs(a.rgb[i + k] - x.rgb[i + k])));
      if (d > 64) n++;
    }
    return n;
  };
  // Pictures 0.35 s apart, for 0.7 s at least and until the ball has moved (5 s at most: the
  // picture of a caller who just joined may pause for a moment).
  let b, changed = 0;
  const since = Date.now();
  do {
    await new Promise((resolve) => setTimeout(resolve, 350));  // not an assertion: the gap
    b = await grab(page);
    changed = Math.max(changed, changedSince(b));
  } while (Date.now() - since < 5000 && (Date.now() - since < 700 || changed < 4));
  const took = ((Date.now() - since) / 1000).toFixed(2);
  if (b.frames < a.frames + 10) {
    throw new Error(`${label}: ${b.frames - a.frames} frames decoded in ${took} s (${a.frames} -> ${b.frames})`);
  }
  if (changed < 4) throw new Error(`${label}: the picture did not move in ${took} s (${changed} of 3072 pixels changed)`);
  if (!isRed(b.inset)) throw new Error(`${label}: the inset went from red to rgb(${b.inset})`);
  log(`${label}: ${b.width}x${b.height}, frames ${a.frames} -> ${b.frames} in ${took} s, picture ` +
      `changed (${changed} of 3072 pixels), inset rgb(${b.inset})`);
}

// SIGINT to demo.sh: it exits 0 within STOP_WITHIN_MS, every process it started is gone and
// its port is free.
async function stopDemo(url) {
  const pids = descendants(demo.pid);
  const names = pids.map((p) => `${p} ${processInfo(p)}`);
  if (!names.some((n) => /webrtc-call-server/.test(n)) || !names.some((n) => /demo-user\.py/.test(n))) {
    throw new Error(`demo.sh's processes are not the server and the pipeline: ${names.join("; ")}`);
  }
  const port = Number(new URL(url).port);
  if (!(await portAccepts(port))) throw new Error(`port ${port} accepts no connection before SIGINT`);
  const sentAt = Date.now();
  process.kill(demo.pid, "SIGINT");
  const exit = await Promise.race([
    demo.exit, new Promise((resolve) => setTimeout(() => resolve(null), STOP_WITHIN_MS)),
  ]);
  if (!exit) throw new Error(`demo.sh still runs ${STOP_WITHIN_MS} ms after SIGINT`);
  if (exit.code !== 0) throw new Error(`demo.sh exited ${JSON.stringify(exit)} after SIGINT`);
  await waitUntil("every process demo.sh started is gone", () => pids.every((p) => !processInfo(p)),
                  Math.max(0, STOP_WITHIN_MS - (Date.now() - sentAt))).catch(() => {
    throw new Error(`left running after demo.sh exited: ${
        pids.filter((p) => processInfo(p)).map((p) => `${p} ${processInfo(p)}`).join("; ")}`);
  });
  if (await portAccepts(port)) throw new Error(`port ${port} still accepts connections`);
  log(`demo.sh stopped ${Date.now() - sentAt} ms after SIGINT; ${pids.length} processes gone: ${names.join("; ")}`);
}

// ---- the scenario --------------------------------------------------------------------------

const watchdog = setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${TOTAL_TIMEOUT_MS / 1000} s`);
  console.error(demo.lines.slice(-60).join("\n"));
  for (const p of [...descendants(demo.pid), demo.pid]) killQuietly(p, "SIGKILL");
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

let browser;
let failed = false;
let stepCount = 0;
async function step(title, fn) {
  stepCount++;
  log(`${title}...`);
  await fn();
}
try {
  let url, page;
  await step("examples/demo.sh --no-build --port 0 prints the URL to open", async () => {
    const line = await waitUntil("demo.sh prints \"Open http://localhost:PORT/\"", () => {
      if (demo.exited) throw new Error(`demo.sh exited: ${JSON.stringify(demo.exited)}`);
      return demo.said(/Open http:\/\/localhost:\d+\//);
    });
    url = line.match(/http:\/\/localhost:(\d+)\//)[0].replace("localhost", "127.0.0.1");
    if (!demo.said(/--tls-cert cert\.pem --tls-key key\.pem/)) throw new Error("demo.sh does not say how to use TLS");
    log(`demo URL ${url}`);
  });

  await step("a page logs in and sees gstreamer online", async () => {
    browser = await web.launchChromium([`--use-file-for-fake-video-capture=${camera}`]);
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", (err) => log(`page error: ${err.message}`));
    await page.goto(url);
    await login(page, "visitor");
    await userEntry(page, "gstreamer").waitFor();
  });

  for (const n of [1, 2]) {
    await step(`call ${n}: the page calls gstreamer, gets moving video with itself inset, hangs up`, async () => {
      await userEntry(page, "gstreamer").click();
      await waitForState(page, "call-state", "in-call");
      await expectMovingVideoWithInset(page, `call ${n}`);
      const endedBefore = demo.lines.filter((l) => /call-ended: peer=visitor/.test(l)).length;
      await byTestId(page, "hangup-button").click();
      await waitForState(page, "call-state", "idle");
      await waitUntil("demo-user posts call-ended for visitor",
                      () => demo.lines.filter((l) => /call-ended: peer=visitor/.test(l)).length > endedBefore);
    });
  }

  await step("two pages call gstreamer at once: both get the pattern with both insets " +
             "(one compositor for every call)", async () => {
    const page2 = await (await browser.newContext()).newPage();
    page2.setDefaultTimeout(STEP_TIMEOUT_MS);
    await page2.goto(url);
    await login(page2, "visitor2");
    await userEntry(page, "gstreamer").click();
    await waitForState(page, "call-state", "in-call");
    await expectMovingVideoWithInset(page, "visitor");
    const alone = await grab(page);
    if (isRed(alone.inset2)) throw new Error(`the second corner is red with one caller: rgb(${alone.inset2})`);
    await userEntry(page2, "gstreamer").click();
    await waitForState(page2, "call-state", "in-call");
    await expectMovingVideoWithInset(page2, "visitor2");
    for (const [p, name] of [[page, "visitor"], [page2, "visitor2"]]) {
      let shot;
      await waitUntil(`${name} sees the second caller's inset in the top right corner`,
                      async () => isRed((shot = await grab(p)).inset2)).catch((err) => {
        throw new Error(`${err.message}: rgb(${shot?.inset2})`);
      });
    }
    log("both pages show both callers' cameras");
    for (const p of [page, page2]) {
      await byTestId(p, "hangup-button").click();
      await waitForState(p, "call-state", "idle");
    }
  });

  await step("SIGINT to demo.sh: it exits 0, the server and the pipeline are gone, the port is free",
             () => stopDemo(url));

  await step("demo.sh --tls-cert --tls-key with the certificate it prints the command for: " +
             "the page calls gstreamer over https, the pipeline user is on wss", async () => {
    // The command demo.sh prints, run where the test starts the script (its cwd).
    const command = demo.lines.filter((l) => /^\s*(openssl req|-subj|-keyout)/.test(l))
        .map((l) => l.trim().replace(/\\$/, "")).join(" ");
    if (!/^openssl req .* -keyout key\.pem -out cert\.pem$/.test(command)) {
      throw new Error(`demo.sh prints no openssl command: "${command}"`);
    }
    execFileSync("bash", ["-c", command], {cwd: tmp, stdio: "ignore"});
    demo = startDemo(["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    const line = await waitUntil("demo.sh prints \"Open https://localhost:PORT/\"", () => {
      if (demo.exited) throw new Error(`demo.sh exited: ${JSON.stringify(demo.exited)}`);
      return demo.said(/Open https:\/\/localhost:\d+\//);
    });
    url = line.match(/https:\/\/localhost:\d+\//)[0];
    await waitUntil("the pipeline user registers over wss", () => {
      if (demo.exited) throw new Error(`demo.sh exited: ${JSON.stringify(demo.exited)}`);
      return demo.said(/demo-user: registered/);
    });
    if (!demo.said(/wss:\/\/localhost:\d+\/ws/)) throw new Error("the pipeline user is not on wss://localhost");
    // A browser on another machine would be told once that the certificate is self-signed.
    const context = await browser.newContext({ignoreHTTPSErrors: true});
    const tlsPage = await context.newPage();
    tlsPage.setDefaultTimeout(STEP_TIMEOUT_MS);
    await tlsPage.goto(url);
    await login(tlsPage, "visitor");
    await userEntry(tlsPage, "gstreamer").click();
    await waitForState(tlsPage, "call-state", "in-call");
    await expectMovingVideoWithInset(tlsPage, "over https");
    await byTestId(tlsPage, "hangup-button").click();
    await waitForState(tlsPage, "call-state", "idle");
  });

  await step("SIGINT to the TLS demo: everything gone again", () => stopDemo(url));
} catch (err) {
  failed = true;
  console.error(`FAIL after ${elapsed()} in step ${stepCount}: ${err.message}`);
  console.error("---- demo.sh output (last lines) ----\n" + demo.lines.slice(-80).join("\n"));
} finally {
  if (!demo.exited) {
    const left = descendants(demo.pid);
    killQuietly(demo.pid, "SIGTERM");
    await Promise.race([demo.exit, new Promise((resolve) => setTimeout(resolve, 5000))]);
    for (const p of [...left, demo.pid]) killQuietly(p, "SIGKILL");
  }
  await browser?.close().catch(() => {});
  fs.rmSync(tmp, {recursive: true, force: true});
  clearTimeout(watchdog);
}
if (failed) process.exit(1);
console.log(`[${elapsed()}] browser-demo: ${stepCount} steps passed`);
