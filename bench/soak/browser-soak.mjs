// The browser side of `call-soak --remote browser`: headless Debian Chromium runs the web client
// (examples/web, served by the server at URL), logs in as "browser" and calls TARGET (a
// webrtccall pipeline that answers by itself) CYCLES times. Even cycles wait until the remote
// video plays (15 frames decoded after the first), odd ones hang up 0-290 ms after the click.
// Prints "cycle N" once the page is idle again after cycle N; call-soak counts those lines.
// After every PAUSE-EVERY-th cycle it waits 2.5 s, while call-soak takes a sample.
// Run inside call-soak's network namespace (it starts this script):
//   node bench/soak/browser-soak.mjs http://127.0.0.1:PORT/ TARGET CYCLES [PAUSE-EVERY]
import * as web from "../../tests/browser/web-client.mjs";

const [url, target, cyclesArg, pauseArg] = process.argv.slice(2);
const cycles = Number(cyclesArg);
const pauseEvery = Number(pauseArg || 0);
if (!url || !target || !(cycles > 0)) {
  console.error("usage: node browser-soak.mjs SERVER-URL TARGET CYCLES");
  process.exit(2);
}
// A hard limit: 20 s a cycle at most, on top of start-up.
const limit = setTimeout(() => {
  console.error(`browser-soak: over the time limit (${cycles * 20 + 60} s)`);
  process.exit(3);
}, (cycles * 23 + 60) * 1000);

const REMOTE_VIDEO = '[data-testid="remote-video"]';
const browser = await web.launchChromium();
let status = 0;
try {
  const page = await browser.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  await page.goto(url);
  await web.login(page, "browser");
  await web.userEntry(page, target).waitFor({timeout: web.STEP_TIMEOUT_MS});
  for (let i = 0; i < cycles; i++) {
    await web.userEntry(page, target).click();
    if (i % 2 === 0) {
      await web.waitForState(page, "call-state", "in-call");
      await page.waitForFunction((sel) => {
        const v = document.querySelector(sel);
        return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames >= 15;
      }, REMOTE_VIDEO, {timeout: web.STEP_TIMEOUT_MS, polling: 20});
    } else {
      await page.waitForTimeout((i * 37 % 30) * 10);
    }
    await web.byTestId(page, "hangup-button").click({timeout: web.STEP_TIMEOUT_MS});
    await web.waitForState(page, "call-state", "idle");
    await page.waitForFunction((sel) => document.querySelector(sel).srcObject === null,
                               REMOTE_VIDEO, {timeout: web.STEP_TIMEOUT_MS, polling: 20});
    console.log(`cycle ${i + 1}`);
    if (pauseEvery > 0 && (i + 1) % pauseEvery === 0) await page.waitForTimeout(2500);
  }
} catch (err) {
  console.error(`browser-soak: ${err.message}`);
  status = 1;
} finally {
  await browser.close().catch(() => {});
  clearTimeout(limit);
}
process.exit(status);
