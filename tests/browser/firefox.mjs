// Debian's Firefox ESR (/usr/bin/firefox-esr, never a downloaded one), headless, driven by
// puppeteer-core over WebDriver BiDi. Its pages work with the helpers of web-client.mjs like
// Chromium's (Playwright) pages do.
import {mkdtempSync, rmSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import puppeteer from "puppeteer-core";

export const FIREFOX = "/usr/bin/firefox-esr";

// A fake camera and microphone that pages may use without asking, and none of the background
// traffic this closed network refuses. Without the two permissions.default prefs Firefox gathers
// no ICE candidates in a namespace without a default route (measured: issue 9).
export const FIREFOX_PREFS = {
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  "permissions.default.camera": 1,
  "permissions.default.microphone": 1,
  // The remote video has sound: let it play without a click on the page.
  "media.autoplay.default": 0,
  "media.autoplay.blocking_policy": 0,
  // Telemetry, health report, studies.
  "toolkit.telemetry.enabled": false,
  "toolkit.telemetry.unified": false,
  "toolkit.telemetry.archive.enabled": false,
  "toolkit.telemetry.server": "",
  "datareporting.policy.dataSubmissionEnabled": false,
  "datareporting.healthreport.uploadEnabled": false,
  "app.shield.optoutstudies.enabled": false,
  "app.normandy.enabled": false,
  // Updates, of the browser and of its add-ons.
  "app.update.enabled": false,
  "app.update.auto": false,
  "app.update.checkInstallTime": false,
  "app.update.disabledForTesting": true,
  "app.update.url": "",
  "extensions.update.enabled": false,
  "media.gmp-manager.updateEnabled": false,
  // Safe browsing lists.
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "browser.safebrowsing.downloads.enabled": false,
  "browser.safebrowsing.downloads.remote.enabled": false,
  "browser.safebrowsing.blockedURIs.enabled": false,
  "browser.safebrowsing.provider.mozilla.updateURL": "",
  "browser.safebrowsing.provider.google4.updateURL": "",
  // Captive portal and connectivity checks.
  "network.captive-portal-service.enabled": false,
  "captivedetect.canonicalURL": "",
  "network.connectivity-service.enabled": false,
  // Remote settings (blocklists and the like; MOZ_REMOTE_SETTINGS_DEVTOOLS=1 lets the server
  // be changed) and the other start-up fetches.
  "services.settings.server": "data:,#remote-settings-off",
  "browser.region.update.enabled": false,
  "browser.region.network.url": "",
  "network.dns.disablePrefetch": true,
  "network.prefetch-next": false,
  "browser.newtabpage.enabled": false,
  "browser.startup.page": 0,
};

// Launches headless Firefox ESR with a fresh profile of its own, removed when the browser is
// closed (browser.close()) or, failing that, when this process exits. Its pages are tabs of one
// window: only the last one opened is in the foreground, and a tab in the background presents
// no video frames (requestVideoFrameCallback never fires). Two Firefox pages in one call need
// two launches.
export async function launchFirefox() {
  const profile = mkdtempSync(join(tmpdir(), "wcc-firefox-"));
  const removeProfile = () => rmSync(profile, {recursive: true, force: true});
  process.on("exit", removeProfile);
  let browser;
  try {
    browser = await puppeteer.launch({
      browser: "firefox",
      executablePath: FIREFOX,
      headless: true,
      protocol: "webDriverBiDi",
      userDataDir: profile,
      extraPrefsFirefox: FIREFOX_PREFS,
      env: {...process.env, MOZ_REMOTE_SETTINGS_DEVTOOLS: "1"},
      timeout: 30_000,
    });
  } catch (err) {
    removeProfile();
    throw err;
  }
  const close = browser.close.bind(browser);
  browser.close = async () => {
    try {
      await close();
    } finally {
      removeProfile();
    }
  };
  return browser;
}
