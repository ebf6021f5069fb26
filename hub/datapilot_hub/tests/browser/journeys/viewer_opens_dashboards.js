// A viewer opens a Voilà and a Panel dashboard by their stable addresses: each comes up
// rendered by the organization's dashboard server (through the hub's login and proxy),
// with its chart drawn (a Bokeh canvas) and its widgets; the Voilà page shows no code,
// and a widget change redraws the chart (the widgets' channel works for what they need).
"use strict";

const { HUB, INPUT, journey, login } = require("../lib");

journey("9-dashboards", async ({ page, shot, check: ok }) => {
  const seen = [];
  page.on("console", (m) => seen.push(`console ${m.type()}: ${m.text()}`.slice(0, 300)));
  page.on("websocket", (ws) => {
    seen.push(`ws open ${ws.url()}`);
    ws.on("close", () => seen.push(`ws closed ${ws.url()}`));
    ws.on("framereceived", (f) => seen.push(`ws in ${String(f.payload).slice(0, 120)}`));
    ws.on("framesent", (f) => seen.push(`ws out ${String(f.payload).slice(0, 120)}`));
  });
  await login(page, INPUT.user, INPUT.password);
  const timings = {};
  // Voilà: ipywidgets and a HoloViews chart
  let started = Date.now();
  await page.goto(`${HUB}/services/datapilot/dashboards/${INPUT.org}/${INPUT.voila}`, {
    waitUntil: "commit",
    timeout: 180000,
  });
  // rendered at the dashboard server's own address of it (no redirect to Voila's)
  ok(page.url().endsWith(`/user/dashboards-acme/dashboards/d/${INPUT.voila}/`), page.url());
  await page
    .waitForSelector(".bk-Canvas, .bk-root canvas, canvas", { timeout: 120000 })
    .catch((e) => {
      throw new Error(`${e.message}\n${seen.slice(-40).join("\n")}`);
    });
  await page.waitForSelector(".widget-dropdown select, .jupyter-widgets select");
  timings.voila = Date.now() - started;
  const html = await page.content();
  ok(!html.includes("dp.load("), "the Voilà page shows no code");
  await page.waitForTimeout(1000);
  const voilaShot = await shot("voila");
  // a widget change reaches the kernel and comes back drawn
  const select = page.locator(".widget-dropdown select, .jupyter-widgets select").first();
  const options = await select.locator("option").allTextContents();
  await select.selectOption({ label: options[1] });
  // (the title is drawn on the canvas: the screenshot shows the redrawn chart)
  await page.waitForTimeout(4000);
  await shot("voila-region");
  // Panel: an app, its chart and indicator
  started = Date.now();
  await page.goto(`${HUB}/services/datapilot/dashboards/${INPUT.org}/${INPUT.panel}`, {
    waitUntil: "commit",
    timeout: 180000,
  });
  ok(page.url().endsWith(`/user/dashboards-acme/dashboards/p/${INPUT.panel}`), page.url());
  await page.waitForSelector("canvas", { timeout: 120000 });
  // (Panel draws in shadow roots, which locators search)
  await page.getByText("Total sales").first().waitFor({ timeout: 60000 });
  timings.panel = Date.now() - started;
  await page.waitForTimeout(1000);
  const panelShot = await shot("panel");
  return { voila: voilaShot, panel: panelShot, timings };
});
