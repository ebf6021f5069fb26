// A hub admin logs in, creates an organization from the home page, lands on its members
// page and makes two invitation links: an analyst's and a viewer's.
"use strict";

const { HUB, INPUT, go, journey, login, text } = require("../lib");

journey("1-admin", async ({ page, shot, check }) => {
  await page.goto(`${HUB}/`);
  await shot("login-page");
  await login(page, INPUT.admin, INPUT.password);
  // an admin without organizations lands on the organizations page, with the form's link
  check(page.url().includes("/services/datapilot/"), `after login: ${page.url()}`);
  check(await page.isVisible("#no-organizations"), "the admin is told there is no organization");
  await shot("landing");
  await page.goto(`${HUB}/hub/home`);
  check(await page.isVisible("#new-org"), "the hub home offers to create an organization");
  await shot("hub-home");
  await go(page, "#new-org");
  await page.fill("#org-name-input", "Acme Corp");
  // a bad short name is a form error, with the name kept
  await page.fill("#org-slug-input", "Acme Corp!");
  await go(page, "#new-org-form button[type=submit]");
  check(await page.isVisible("#error"), "a bad short name is refused on the form");
  check(await page.isVisible("#org-slug-input.is-invalid"), "the short name's field is marked");
  check((await page.inputValue("#org-name-input")) === "Acme Corp", "the name is kept");
  await shot("new-org-error");
  await page.fill("#org-slug-input", INPUT.org);
  await go(page, "#new-org-form button[type=submit]");
  await page.waitForURL(`**/orgs/${INPUT.org}/members`);
  check((await text(page, "#org-name")) === "Acme Corp", "the members page shows the name");
  check((await text(page, "#flash")).includes("Acme Corp is ready"), "the creation is confirmed");
  await shot("members");
  const links = {};
  for (const role of ["analyst", "viewer"]) {
    await go(page, "#team-tabs >> text=Invitations");
    await page.selectOption("#inv-role", role);
    await page.fill("#inv-email", `${role}@example.org`);
    await go(page, "#create-invitation button[type=submit]");
    links[role] = await page.inputValue("#invitation-link");
    check(links[role].includes("/services/datapilot/invitations/"), `a link: ${links[role]}`);
    await shot(`invitation-${role}`);
  }
  return links;
});
