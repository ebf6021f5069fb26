// An analyst in JupyterLab: opens the Datapilot sidebar, uploads a CSV from it and watches
// the progress fed by the job's WebSocket, reads the import report, inserts the code that
// loads it into a notebook and runs it; then imports a workspace file from the file
// browser's context menu, and looks at the panel in the dark theme.
"use strict";

const path = require("node:path");
const { HUB, INPUT, journey, login, text } = require("../lib");

const SHOTS = process.env.SCREENSHOTS;

journey("lab", async ({ page, shot, check }) => {
  const panelShot = async (label) =>
    page.locator("#datapilot-sidebar").screenshot({ path: path.join(SHOTS, `lab-panel-${label}.png`) });
  const lab = `${HUB}/user/${INPUT.user}/${INPUT.org}/lab`;
  await login(page, INPUT.user, INPUT.password);
  await page.goto(`${lab}/tree/${INPUT.notebook}`);
  await page.locator(".jp-DirListing-item", { hasText: INPUT.notebook }).first().waitFor({ timeout: 90000 });

  // the sidebar's tab; after a layout restore the left area may start collapsed
  const tab = page.locator('.jp-SideBar li.lm-TabBar-tab[data-id="datapilot-sidebar"]');
  await tab.waitFor();
  check((await tab.getAttribute("title")) === "Datapilot", "the tab is labelled");
  if (!(await page.locator("#datapilot-sidebar").isVisible())) await tab.click();
  const panel = page.locator("#datapilot-sidebar");
  await panel.locator(".dp-Org").waitFor();
  const org = await text(panel, ".dp-Org");
  check(org.includes(INPUT.orgName) && org.includes("analyst"), `organization and role: ${org}`);
  await panel.locator(".dp-DatasetItem", { hasText: INPUT.seeded }).waitFor();
  await shot("sidebar");
  await panelShot("list-start");

  // search
  await panel.getByLabel("Search datasets").fill("zzz");
  await panel.getByText("No dataset matches").waitFor();
  await panel.getByLabel("Search datasets").fill("");

  // upload from the panel: the options dialog, then live progress
  await panel.locator(".dp-FileInput").setInputFiles(INPUT.file);
  const dialog = page.locator(".jp-Dialog");
  await dialog.waitFor();
  // (the dialog focuses the name once it is shown: type elsewhere only after that)
  await page.waitForFunction(() => document.activeElement && document.activeElement.name === "dp-name");
  const name = dialog.locator('input[name="dp-name"]');
  check((await name.inputValue()) === INPUT.dataset, `named after the file: ${await name.inputValue()}`);
  await dialog.locator('textarea[name="dp-types"]').fill("code: string");
  await shot("import-options");
  // every value the progress bar takes, recorded in the page as it changes
  await page.evaluate(() => {
    window.__dpProgress = [];
    new MutationObserver(() => {
      const bar = document.querySelector('#datapilot-sidebar .dp-Job [role="progressbar"]');
      const now = bar && bar.getAttribute("aria-valuenow");
      const seen = window.__dpProgress;
      if (now !== null && seen[seen.length - 1] !== now) seen.push(now);
    }).observe(document.querySelector("#datapilot-sidebar"), {
      subtree: true, childList: true, attributes: true, attributeFilter: ["aria-valuenow"],
    });
  });
  const started = Date.now();
  await dialog.locator(".jp-mod-accept").click();
  await panel.locator('.dp-Job [role="progressbar"]').first().waitFor({ timeout: 60000 });
  // (the picture for the README: the bar on its way)
  await page
    .waitForFunction(
      () => {
        const bar = document.querySelector('#datapilot-sidebar .dp-Job [role="progressbar"]');
        return bar && Number(bar.getAttribute("aria-valuenow")) >= 20;
      },
      null,
      { timeout: 20000, polling: 50 }
    )
    .catch(() => undefined);
  await panelShot("upload");
  await shot("upload-progress");
  // the job ends: the list has it (the bar is gone)
  await panel.locator(".dp-DatasetItem", { hasText: INPUT.dataset }).waitFor({ timeout: 120000 });
  const seen = await page.evaluate(() => window.__dpProgress);
  const uploadSeconds = (Date.now() - started) / 1000;

  // the detail: schema with the reasons, the report's bad cells, the preview, the chart
  await panel.locator(".dp-DatasetItem", { hasText: INPUT.dataset }).click();
  await panel.locator(".dp-BadCells").waitFor();
  const badCells = await text(panel, ".dp-BadCells .dp-BadCount");
  const badRows = await text(panel, ".dp-BadCells tbody td:nth-of-type(2)");
  const types = {};
  for (const row of await panel.locator(".dp-Schema tbody tr:first-child").all()) {
    types[await text(row, "th")] = await text(row, ".dp-Type");
  }
  const reasons = await panel.locator(".dp-Schema .dp-Reason").allTextContents();
  check(reasons.every((r) => r.trim().length > 0), "every type says why it was chosen");
  const previewRows = await panel.locator(".dp-Grid tbody tr").count();
  await panel.locator("img.dp-Chart").waitFor({ timeout: 60000 });
  await page.waitForFunction(() => {
    const img = document.querySelector("#datapilot-sidebar img.dp-Chart");
    return img && img.complete && img.naturalWidth > 0;
  });
  await shot("detail");
  await panelShot("detail");
  await panel.locator(".dp-Section", { hasText: "Versions" }).scrollIntoViewIfNeeded();
  await panelShot("chart-versions");

  // "Insert code" into the notebook (open since the start: lab/tree/<notebook>), then
  // run the cell: the DataFrame
  const notebook = page.locator(".jp-NotebookPanel:visible");
  await notebook.locator(".jp-Cell .jp-InputArea-editor").first().click();
  const insert = panel.getByRole("button", { name: "Insert code" });
  await page.waitForFunction(
    () => !document.querySelector("#datapilot-sidebar .dp-DetailBar .dp-Button-primary").disabled
  );
  await insert.click();
  const source = await text(notebook, ".jp-Cell .cm-content");
  check(source.includes(`df = dp.load("${INPUT.dataset}")`), `inserted: ${source}`);
  await notebook.locator(".jp-Cell .jp-InputArea-editor").first().click();
  await page.keyboard.press("Shift+Enter");
  const frame = notebook.locator(".jp-OutputArea-output table.dataframe").first();
  await frame.waitFor({ timeout: 90000 });
  const shape = await text(notebook, ".jp-OutputArea-output");
  await shot("dataframe");

  // publish the notebook from the Dashboards tab; the organization's list has it
  await panel.getByRole("tab", { name: "Dashboards" }).click();
  await panel.getByText("No dashboard published yet.").waitFor();
  await panel.getByRole("button", { name: "Publish this notebook…" }).click();
  await dialog.waitFor();
  await page.waitForFunction(() => document.activeElement && document.activeElement.name === "dp-title");
  await dialog.locator('input[name="dp-title"]').fill(INPUT.dashboard);
  await shot("publish");
  await dialog.locator(".jp-mod-accept").click();
  const published = panel.locator(".dp-Dashboard", { hasText: INPUT.dashboard });
  await published.waitFor({ timeout: 60000 });
  const dashboardUrl = await published.locator("a").getAttribute("href");
  await panelShot("dashboards");
  await panel.getByRole("tab", { name: "Datasets" }).click();

  // the file browser's context menu: import a workspace file
  await page.locator('.jp-SideBar li.lm-TabBar-tab[data-id="filebrowser"]').click();
  await page.locator(".jp-DirListing-item", { hasText: INPUT.workspaceFile }).first().click({ button: "right" });
  const item = page.locator(".lm-Menu-item", { hasText: "Import into Datapilot" });
  await item.waitFor();
  await shot("context-menu");
  await item.click();
  await dialog.waitFor();
  await dialog.locator(".jp-mod-accept").click();
  const workspaceDataset = INPUT.workspaceFile.replace(/\.csv$/, "");
  await panel.locator(".dp-DatasetItem", { hasText: workspaceDataset }).waitFor({ timeout: 60000 });
  await shot("imported-from-workspace");
  await panelShot("list");

  // a refusal: appending a file whose columns differ, dragged from the file browser onto
  // the panel (moved to the right sidebar, so that both show); the panel shows the
  // service's message and what to do
  await tab.click({ button: "right" });
  await page.getByRole("menuitem", { name: /Switch Sidebar Side/ }).click();
  await page.locator('.jp-SideBar li.lm-TabBar-tab[data-id="filebrowser"]').click();
  await panel.locator(".dp-Drop").waitFor();
  const from = await page.locator(".jp-DirListing-item", { hasText: INPUT.workspaceFile }).first().boundingBox();
  const target = await panel.locator(".dp-Drop").boundingBox();
  await page.mouse.move(from.x + 30, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(from.x + 60, from.y + from.height / 2, { steps: 5 });
  await page.mouse.move(target.x + target.width / 2, target.y + target.height / 2, { steps: 15 });
  await shot("drag-from-file-browser");
  await page.mouse.up();
  await dialog.waitFor();
  await page.waitForFunction(() => document.activeElement && document.activeElement.name === "dp-name");
  await dialog.locator('input[name="dp-name"]').fill(INPUT.seeded);
  await dialog.locator('select[name="dp-mode"]').selectOption("append");
  await dialog.locator(".jp-mod-accept").click();
  const failed = panel.locator(".dp-Job-failed").first();
  await failed.waitFor({ timeout: 60000 });
  const failure = await text(failed, ".dp-ProblemMessage");
  const advice = await text(failed, ".dp-ProblemAdvice");
  await panelShot("failed");
  await failed.getByRole("button", { name: "Dismiss" }).click();
  await failed.waitFor({ state: "detached" });
  // back to the left
  await tab.click({ button: "right" });
  await page.getByRole("menuitem", { name: /Switch Sidebar Side/ }).click();
  if (!(await panel.isVisible())) await tab.click();

  // versions: roll the seeded dataset (replaced once) back to its first version
  await panel.locator(".dp-DatasetItem", { hasText: INPUT.seeded }).click();
  await panel.getByRole("button", { name: "Roll back to version 1" }).click();
  await panel.locator(".dp-Version", { hasText: "v1" }).locator(".dp-Current").waitFor();
  const rolledBack = await text(panel, ".dp-DetailMeta");
  await panel.getByRole("button", { name: "Back to datasets" }).click();

  // the organization's jobs, the import from the panel among the ended ones
  // (by keyboard: the tabs move with the arrow keys)
  await panel.getByRole("tab", { name: "Datasets" }).focus();
  await page.keyboard.press("ArrowRight");
  const jobsTab = panel.getByRole("tab", { name: "Jobs" });
  check((await jobsTab.getAttribute("aria-selected")) === "true", "ArrowRight selects the Jobs tab");
  check(await jobsTab.evaluate((el) => el === document.activeElement), "and moves the focus to it");
  const ended = panel.getByRole("list", { name: "Recent jobs" });
  await ended.locator(".dp-Job-succeeded", { hasText: INPUT.dataset }).first().waitFor();
  const jobs = await ended.locator(".dp-JobLabel").allTextContents();
  await panelShot("jobs");
  await panel.getByRole("tab", { name: "Datasets" }).click();

  // the dark theme: the panel keeps its contrast (theme variables only)
  await page.locator(".lm-MenuBar-item", { hasText: "Settings" }).click();
  await page.locator(".lm-Menu-item", { hasText: "Theme" }).first().hover();
  await page.getByRole("menuitem", { name: "JupyterLab Dark", exact: true }).click();
  await page.waitForFunction(() => document.body.dataset.jpThemeLight === "false");
  await panel.locator(".dp-DatasetItem", { hasText: INPUT.dataset }).click();
  await panel.locator("img.dp-Chart").waitFor({ timeout: 60000 });
  await page.waitForTimeout(1000);
  await panelShot("dark");
  // back to the light theme, for the next run's layout
  await page.locator(".lm-MenuBar-item", { hasText: "Settings" }).click();
  await page.locator(".lm-Menu-item", { hasText: "Theme" }).first().hover();
  await page.getByRole("menuitem", { name: "JupyterLab Light", exact: true }).click();

  // the commands are in the palette
  await page.keyboard.press("Control+Shift+C");
  await page.locator(".lm-CommandPalette-input").fill("Datapilot: Show Jobs");
  await page.keyboard.press("Enter");
  await panel.getByRole("tab", { name: "Jobs", selected: true }).waitFor();

  return {
    org, badCells, badRows, types, previewRows, source, shape, progress: seen, uploadSeconds, dashboardUrl, rolledBack, jobs,
    failure, advice,
  };
});
