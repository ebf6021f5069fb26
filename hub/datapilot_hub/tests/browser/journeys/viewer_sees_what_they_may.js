// A viewer joins by invitation, sees the dataset the analyst uploaded with its report
// and preview, and nothing they may not do; logged in again they land on the
// organization's home.
"use strict";

const { HUB, INPUT, go, journey, login, text } = require("../lib");

journey("3-viewer", async ({ page, shot, check }) => {
  // this time the invitee opens the login page first and goes on to the sign-up from there
  await page.goto(INPUT.link);
  await go(page, "#invitation-login");
  check(await page.isVisible("#login-invitation"), "the login page mentions the invitation");
  await shot("login-with-invitation");
  await go(page, "#login-to-signup");
  await page.fill("#username_input", INPUT.user);
  await page.fill("#password_input", INPUT.password);
  await page.fill("#password_confirmation_input", INPUT.password);
  await go(page, "#signup_submit");
  await go(page, "#accept");
  await page.waitForURL(`**/orgs/${INPUT.org}/`);
  const home = `${HUB}/services/datapilot/orgs/${INPUT.org}/`;
  const row = page.locator(`tr.dataset[data-dataset="${INPUT.dataset}"]`);
  check((await row.count()) === 1, "the analyst's dataset is listed");
  check(!(await page.isVisible("#upload-link")), "no upload for a viewer");
  check(!(await page.isVisible("#open-server")), "no notebook server for a viewer");
  const tabs = await page.locator("#team-tabs a").allTextContents();
  check(!tabs.includes("Invitations") && !tabs.includes("Audit log"), `tabs: ${tabs}`);
  await shot("org-home");
  await Promise.all([page.waitForNavigation(), row.locator("a").click()]);
  check((await page.locator("#preview tbody tr").count()) > 0, "the preview shows rows");
  check(await page.isVisible("#report"), "the import report is shown");
  check(!(await page.isVisible("#delete-dataset")), "no delete for a viewer");
  check((await page.locator("#versions form").count()) === 0, "no rollback for a viewer");
  await shot("dataset");
  // what a viewer may not do is refused on a styled page that says why
  const refused = await page.goto(`${home}upload`);
  check(refused.status() === 403, `upload page: ${refused.status()}`);
  check((await text(page, "#error-message")).includes("does not allow data:import"), "says why");
  await shot("upload-refused");
  const missing = await page.goto(`${HUB}/services/datapilot/no-such-page`);
  check(missing.status() === 404 && (await page.isVisible("#error-page")), "a styled 404");
  await shot("service-404");
  const hubMissing = await page.goto(`${HUB}/hub/no-such-page`);
  check(hubMissing.status() === 404, `hub 404: ${hubMissing.status()}`);
  check((await text(page, "#error-heading")) === "Page not found", "the hub's 404 is ours");
  await shot("hub-404");
  // logged out and in again: straight to the organization's home
  await page.goto(`${HUB}/hub/logout`);
  await login(page, INPUT.user, INPUT.password);
  check(page.url() === home, `after login: ${page.url()}`);
  await shot("after-login");
  return {};
});
