// Driving the web client (examples/web) by its data-testid attributes; shared by the browser
// tests. Every wait polls with a timeout and says what it saw when it fails.
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

export const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);
export const userEntry = (page, name) => byTestId(page, "user-entry").filter({hasText: name});

export async function waitForState(page, testid, state, timeoutMs = STEP_TIMEOUT_MS) {
  await page.waitForFunction(
      ([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.dataset.state === want,
      [testid, state], {timeout: timeoutMs, polling: 50}).catch(async (err) => {
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
  await page.waitForFunction(([w]) => {
    const banner = document.querySelector('[data-testid="error-banner"]');
    return !banner.hidden && banner.textContent.includes(w);
  }, [words], {timeout: timeoutMs, polling: 50}).catch(async () => {
    throw new Error(`${name} should be told "${words}", the banner says "${await bannerText(page)}"`);
  });
  return bannerText(page);
}
