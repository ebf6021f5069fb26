// An Admin opens a dashboard whose page runs the publisher's script (an HTML output): the
// script calls the data service's API with the Admin's cookie, as a page of the same
// origin can. Reads may go through (they are the Admin's to see anyway, and no worse than
// what the dashboard shows); every change is refused for want of the XSRF token, which
// the script cannot get: the service's pages may not be framed (CSP frame-ancestors).
"use strict";

const { HUB, INPUT, journey, login } = require("../lib");

journey("9-dashboard-script", async ({ page, shot, check: ok }) => {
  await login(page, INPUT.user, INPUT.password);
  await page.goto(`${HUB}/services/datapilot/dashboards/${INPUT.org}/${INPUT.slug}`, {
    waitUntil: "commit",
    timeout: 180000,
  });
  await page.locator("#dp-script-result").first().waitFor({ timeout: 120000 });
  // the publisher's script in the output, if Voilà runs it
  const ran = await page
    .waitForFunction(
      () => (document.querySelector("#dp-script-result") || {}).dataset?.done === "1",
      null,
      { timeout: 20000 },
    )
    .then(() => true)
    .catch(() => false);
  const inPage = ran
    ? JSON.parse(await page.locator("#dp-script-result").first().getAttribute("data-result"))
    : null;
  // the same calls from a script of the dashboard's page, whatever Voilà does with outputs
  const evaluated = await page.evaluate(async () => {
    const api = "/services/datapilot/api/v1/orgs/acme";
    const send = async (method, path, body) =>
      (
        await fetch(api + path, {
          method,
          credentials: "include",
          headers: { "Content-Type": "application/json" },
          body: body ? JSON.stringify(body) : undefined,
        })
      ).status;
    return {
      get: await send("GET", "/members"),
      put: await send("PUT", "/members/mallory", { role: "admin" }),
      del: await send("DELETE", "/datasets/sample_sales"),
    };
  });
  await shot("script");
  for (const result of [inPage, evaluated].filter(Boolean)) {
    ok(result.put >= 400 && result.put !== 404, `the script's PUT: ${result.put}`);
    ok(result.del >= 400 && result.del !== 404, `the script's DELETE: ${result.del}`);
  }
  return { ran, inPage, evaluated };
});
