// A viewer presses "start" for the organization's notebook server: the page says why it
// cannot start and what to do instead, not JupyterHub's "contact admin".
"use strict";

const { HUB, INPUT, go, journey, login, text } = require("../lib");

journey("5-refused-start", async ({ page, shot, check }) => {
  await login(page, INPUT.user, INPUT.password);
  await page.goto(`${HUB}/hub/home`);
  const row = page.locator(`tr.datapilot-org[data-server-name="${INPUT.org}"]`);
  check((await text(row, ".org-home")) === "Acme Corp", "the organization's name, not its slug");
  check((await text(row, ".server-state")) === "not running", "a stopped server says so");
  await shot("hub-home");
  await Promise.all([page.waitForNavigation(), row.locator(".start-server").click()]);
  const message = await text(page, "#error-message");
  check(message.includes("does not include notebook servers"), `the reason: ${message}`);
  check(!/contact admin/i.test(message), "not the generic message");
  check((await page.locator("#error-message a").count()) === 1, "a link to what they can do");
  await shot("refused");
  return { message };
});
