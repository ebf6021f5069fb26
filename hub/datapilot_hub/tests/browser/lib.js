// What every journey shares: Debian's chromium through playwright-core, screenshots,
// logging in, and checks that fail the journey with a message (its exit status).
"use strict";

const path = require("node:path");
const { chromium } = require("playwright-core");

// the hub under test, where screenshots go, and the journey's own inputs (pytest sets them)
const HUB = process.env.HUB_URL.replace(/\/$/, "");
const SHOTS = process.env.SCREENSHOTS;
const INPUT = JSON.parse(process.env.JOURNEY_INPUT || "{}");

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

class JourneyError extends Error {}

function check(condition, message) {
  if (!condition) throw new JourneyError(message);
}

async function journey(name, body) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ARGS,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const problems = [];
  // the pages' scripts must run under their CSP without errors
  page.on("pageerror", (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/.test(m.text())) problems.push(m.text());
  });
  let step = 0;
  const shot = async (label) => {
    step += 1;
    const file = path.join(SHOTS, `${name}-${String(step).padStart(2, "0")}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
  let output = {};
  try {
    output = (await body({ page, context, shot, check })) || {};
    check(problems.length === 0, problems.join("\n"));
  } catch (e) {
    try {
      await shot("failure");
    } catch (ignored) {
      // the page itself may be gone
    }
    console.error(`${name} failed at ${page.url()}: ${e.message}`);
    await browser.close();
    process.exit(1);
  }
  await browser.close();
  // the journey's results, for the next journey (pytest reads the last line)
  console.log(JSON.stringify(output));
}

async function login(page, user, password, next) {
  const query = next ? `?next=${encodeURIComponent(next)}` : "";
  await page.goto(`${HUB}/hub/login${query}`);
  await page.fill("#username_input", user);
  await page.fill("#password_input", password);
  await Promise.all([page.waitForLoadState("load"), page.click("#login_submit")]);
  await page.waitForURL((url) => !url.pathname.startsWith("/hub/login"));
}

// the text of the first element matching selector (within a page or a locator)
async function text(scope, selector) {
  return ((await scope.locator(selector).first().textContent()) || "").replace(/\s+/g, " ").trim();
}

// click what submits a form or follows a link, and wait for the page it leads to
async function go(page, selector) {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

module.exports = { HUB, INPUT, check, go, journey, login, text };
