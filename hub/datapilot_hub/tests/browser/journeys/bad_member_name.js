// An Admin adds a member with a name no account can have: a form error, nothing written.
"use strict";

const { HUB, INPUT, go, journey, login, text } = require("../lib");

journey("4-bad-member-name", async ({ page, shot, check }) => {
  await login(page, INPUT.admin, INPUT.password);
  await page.goto(`${HUB}/services/datapilot/orgs/${INPUT.org}/members`);
  const before = await page.locator("tr.member").count();
  await page.fill("#add-user", "Bad Name!");
  await go(page, "#add-member button[type=submit]");
  const error = await text(page, "#error");
  check(error.length > 0, "the refusal is shown");
  check(!/internal|traceback|500/i.test(error), `a sentence, not a crash: ${error}`);
  check(await page.isVisible("#add-user.is-invalid"), "the user name field is marked");
  check((await page.inputValue("#add-user")) === "Bad Name!", "the name is kept to correct");
  check((await page.locator("tr.member").count()) === before, "no member was added");
  await shot("form-error");
  return { error };
});
