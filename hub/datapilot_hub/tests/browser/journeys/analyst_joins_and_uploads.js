// A new person opens an analyst's invitation link, creates an account (no approval),
// joins, lands on the organization's home, uploads a file from the browser, watches its
// progress and reads the import report and the preview.
"use strict";

const { INPUT, go, journey, text } = require("../lib");

journey("2-analyst", async ({ page, shot, check }) => {
  await page.goto(INPUT.link);
  check((await text(page, "h1")).includes("Join Acme Corp"), "the invitation says what it is for");
  await shot("invitation");
  await go(page, "#invitation-signup");
  check(await page.isVisible("#signup-invitation"), "the sign-up page mentions the invitation");
  await page.fill("#username_input", INPUT.user);
  await page.fill("#password_input", INPUT.password);
  await page.fill("#password_confirmation_input", INPUT.password);
  await shot("signup");
  await go(page, "#signup_submit");
  // straight back to the invitation, logged in
  await page.waitForSelector("#accept");
  await shot("join");
  await go(page, "#accept");
  await page.waitForURL(`**/orgs/${INPUT.org}/`);
  check((await text(page, "#flash")).includes("Welcome to Acme Corp"), "welcomed");
  check(await page.isVisible("#no-datasets"), "an empty organization says how to start");
  check(await page.isVisible("#open-server"), "an analyst gets a link to their notebook server");
  await shot("org-home-empty");
  await go(page, "#upload-link");
  await page.setInputFiles("#upload-file", INPUT.file);
  check((await page.inputValue("#upload-name")) === INPUT.dataset, "named after the file");
  await shot("upload-form");
  await page.click("#upload-submit");
  await page.waitForURL(`**/orgs/${INPUT.org}/datasets/${INPUT.dataset}#report`, { timeout: 60000 });
  check((await text(page, "#dataset-name")) === INPUT.dataset, "the dataset's page opens");
  const types = {};
  for (const row of await page.locator("tr.column").all()) {
    types[await row.getAttribute("data-column")] = await text(row, ".column-type");
  }
  const badCells = await page.locator("#bad-cells tbody tr").count();
  const previewRows = await page.locator("#preview tbody tr").count();
  await shot("dataset-report");
  return { types, badCells, previewRows };
});
