// A viewer's hub home offers no "start" for the organization's notebook server, only the
// way to its dashboards; the start address typed or bookmarked says why it cannot start
// and what to do instead, not JupyterHub's "contact admin".
"use strict";

const { HUB, INPUT, journey, login, text } = require("../lib");

journey("5-refused-start", async ({ page, shot, check }) => {
  await login(page, INPUT.user, INPUT.password);
  await page.goto(`${HUB}/hub/home`);
  const row = page.locator(`tr.datapilot-org[data-server-name="${INPUT.org}"]`);
  check((await text(row, ".org-home")) === "Acme Corp", "the organization's name, not its slug");
  check((await row.locator(".start-server").count()) === 0, "no start button for a viewer");
  check((await row.locator(`#no-server-${INPUT.org} a`).count()) === 1, "a link to its page");
  check((await page.locator("#nav-servers").count()) === 0, "no Notebook servers menu");
  await shot("hub-home");
  await page.goto(`${HUB}/hub/spawn/${INPUT.user}/${INPUT.org}`);
  const message = await text(page, "#error-message");
  check(message.includes("does not include notebook servers"), `the reason: ${message}`);
  check(!/contact admin/i.test(message), "not the generic message");
  check((await page.locator("#error-message a").count()) === 1, "a link to what they can do");
  await shot("refused");
  return { message };
});
