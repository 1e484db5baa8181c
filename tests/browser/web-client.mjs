// Driving the web client (examples/web) by its data-testid attributes; shared by the browser
// tests. Every wait polls with a timeout and says what it saw when it fails. The helpers take
// a Chromium page (Playwright) or a Firefox page (puppeteer-core, firefox.mjs) alike.
import {chromium} from "playwright-core";

export const STEP_TIMEOUT_MS = 20_000;

// Debian's Chromium (never a downloaded one), with a fake camera and microphone that pages
// may use without asking, and without the background traffic this closed network refuses.
// extraArgs: more switches, e.g. --use-file-for-fake-video-capture=FILE.y4m.
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      ...extraArgs,
    ],
  });
}

// Playwright's page, or else puppeteer's: their APIs differ in waitForFunction, init scripts,
// contexts and text filters; click(), fill() and evaluate(fn, arg) are the same.
const isPlaywright = (page) => typeof page.context === "function";

// page.waitForFunction(fn, arg) of either library.
export function waitForPage(page, fn, arg, {timeout = STEP_TIMEOUT_MS, polling = 50} = {}) {
  return isPlaywright(page) ? page.waitForFunction(fn, arg, {timeout, polling})
                            : page.waitForFunction(fn, {timeout, polling}, arg);
}

export const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);
// The user list's entry of `name` (a locator: click() it to call).
export const userEntry = (page, name) => isPlaywright(page)
    ? byTestId(page, "user-entry").filter({hasText: name})
    : page.locator(`[data-testid="user-entry"]::-p-text(${JSON.stringify(name)})`);

// Waits until the user list shows `name`.
export async function waitForUser(page, name, timeoutMs = STEP_TIMEOUT_MS) {
  await waitForPage(page, (want) => [...document.querySelectorAll('[data-testid="user-entry"]')]
      .some((e) => e.textContent.includes(want)), name, {timeout: timeoutMs}).catch(async () => {
    const users = await page.evaluate(() => [...document.querySelectorAll('[data-testid="user-entry"]')]
        .map((e) => e.textContent)).catch(() => "?");
    throw new Error(`${name} should be in the user list, it holds ${JSON.stringify(users)}`);
  });
}

export async function waitForState(page, testid, state, timeoutMs = STEP_TIMEOUT_MS) {
  await waitForPage(page,
      ([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.dataset.state === want,
      [testid, state], {timeout: timeoutMs}).catch(async (err) => {
    const now = await page.evaluate(
        (id) => document.querySelector(`[data-testid="${id}"]`)?.dataset.state, testid)
        .catch(() => "?");
    throw new Error(`${testid} should become "${state}", it is "${now}" (${err.message.split("\n")[0]})`);
  });
}

export async function login(page, name) {
  await byTestId(page, "login-name").fill(name);
  await byTestId(page, "login-button").click();
  await waitForState(page, "connection-state", "connected");
}

export async function bannerText(page) {
  return page.evaluate(() => {
    const banner = document.querySelector('[data-testid="error-banner"]');
    return banner.hidden ? "" : banner.querySelector('[data-testid="error-message"]').textContent;
  });
}

// Waits until the page named `name` shows `words` in its error banner; returns the text.
export async function expectBanner(page, name, words, timeoutMs = STEP_TIMEOUT_MS) {
  await waitForPage(page, ([w]) => {
    const banner = document.querySelector('[data-testid="error-banner"]');
    return !banner.hidden && banner.textContent.includes(w);
  }, [words], {timeout: timeoutMs}).catch(async () => {
    throw new Error(`${name} should be told "${words}", the banner says "${await bannerText(page)}"`);
  });
  return bannerText(page);
}

// ---- pages of either browser, with probes -----------------------------------------------------

// Runs in every page before its own scripts (an init script): keeps each RTCPeerConnection
// the page makes (window.__testPeerConnections, for getStats), the time of the last click
// (window.__testClickAt), and counts the frames the remote video presents
// (window.__testRemoteFrames, with requestVideoFrameCallback: in Firefox
// getVideoPlaybackQuality().totalVideoFrames stays 0 for WebRTC video). Times are
// milliseconds since the epoch, on the page's clock (performance.timeOrigin + its timestamps).
function pageProbes() {
  const Native = window.RTCPeerConnection;
  window.__testPeerConnections = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__testPeerConnections.push(this);
    }
  };
  window.__testClickAt = 0;
  addEventListener("click", (e) => (window.__testClickAt = performance.timeOrigin + e.timeStamp),
                   true);
  // count: every frame presented so far; streamFrames and streamFirstAt: those of the stream
  // now shown (the web client gives the video a new stream for every call).
  const frames = {count: 0, lastAt: 0, stream: null, streamFrames: 0, streamFirstAt: 0,
                  width: 0, height: 0, supported: true};
  window.__testRemoteFrames = frames;
  addEventListener("DOMContentLoaded", () => {
    const video = document.querySelector('[data-testid="remote-video"]');
    if (!video?.requestVideoFrameCallback) {
      frames.supported = false;
      return;
    }
    const onFrame = (now, meta) => {
      const at = performance.timeOrigin + (meta.presentationTime || now);
      if (video.srcObject !== frames.stream) {
        frames.stream = video.srcObject;
        frames.streamFrames = 0;
        frames.streamFirstAt = at;
      }
      frames.count++;
      frames.streamFrames++;
      frames.lastAt = at;
      frames.width = meta.width;
      frames.height = meta.height;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  });
}

// A new page in a browser context of its own (its own profile, like another person), of a
// Chromium (Playwright) or Firefox (puppeteer-core) browser, with pageProbes installed.
// consoleLines and pageErrors (arrays) collect what the page logs and throws.
export async function newPage(browser, {consoleLines = [], pageErrors = [], label = ""} = {}) {
  let page;
  if (typeof browser.newContext === "function") {
    const context = await browser.newContext();
    await context.addInitScript(pageProbes);
    page = await context.newPage();
  } else {
    const context = await browser.createBrowserContext();
    page = await context.newPage();
    await page.evaluateOnNewDocument(pageProbes);
  }
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => pageErrors.push(`${label}: ${err.message}`));
  return page;
}

// Closes a page of newPage() with its context.
export async function closePage(page) {
  await (isPlaywright(page) ? page.context() : page.browserContext()).close();
}

// What the remote video presented (pageProbes): {count, streamFrames, streamFirstAt, lastAt,
// width, height, supported}.
export function remoteFrames(page) {
  return page.evaluate(() => {
    const {stream, ...rest} = window.__testRemoteFrames;
    // A new call's stream that has shown no frame yet.
    const video = document.querySelector('[data-testid="remote-video"]');
    if (video.srcObject !== stream) Object.assign(rest, {streamFrames: 0, streamFirstAt: 0});
    return rest;
  });
}

// The video the page receives, from getStats of its open peer connections: one entry per
// inbound video stream, {framesDecoded, codec ("video/VP8"), width, height}.
export function inboundVideo(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const pc of window.__testPeerConnections) {
      if (pc.signalingState === "closed") continue;
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type !== "inbound-rtp" || (s.kind ?? s.mediaType) !== "video") return;
        out.push({framesDecoded: s.framesDecoded ?? 0, codec: stats.get(s.codecId)?.mimeType ?? "",
                  width: s.frameWidth ?? 0, height: s.frameHeight ?? 0});
      });
    }
    return out;
  });
}
