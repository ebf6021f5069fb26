// The analyst opens their notebook server from the organization's home: JupyterLab with
// the example notebook in the file browser, and no question about Jupyter news.
"use strict";

const { HUB, INPUT, journey, login, text } = require("../lib");

journey("6-lab", async ({ page, shot, check }) => {
  await login(page, INPUT.user, INPUT.password);
  check(page.url() === `${HUB}/services/datapilot/orgs/${INPUT.org}/`, `landed on ${page.url()}`);
  await Promise.all([page.waitForNavigation(), page.click("#open-server")]);
  // the hub's spawn page, then JupyterLab
  await page.waitForURL(`**/user/${INPUT.user}/${INPUT.org}/lab**`, { timeout: 180000 });
  const notebook = page.locator(".jp-DirListing-item", { hasText: "getting-started.ipynb" });
  await notebook.first().waitFor({ timeout: 120000 });
  // the news question comes as a toast soon after Lab has loaded, when it comes at all
  await page.waitForTimeout(5000);
  const body = await text(page, "body");
  check(!/Jupyter news/i.test(body), "JupyterLab asks about Jupyter news");
  await shot("lab");
  return { files: await page.locator(".jp-DirListing-item").allTextContents() };
});
