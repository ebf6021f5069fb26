// A viewer logs in and lands on the organization's home: the gallery of dashboards, each
// card with its picture, title, description, publisher and time, a search that finds one,
// and no action they cannot take (no upload, no publishing, no notebook servers). A
// dashboard's page says which version of each dataset it shows.
"use strict";

const { HUB, INPUT, check, go, journey, login, text } = require("../lib");

journey("7-gallery", async ({ page, shot, check: ok }) => {
  await login(page, INPUT.user, INPUT.password);
  const home = `${HUB}/services/datapilot/orgs/${INPUT.org}/`;
  ok(page.url() === home, `after login: ${page.url()}`);
  const cards = page.locator(".dashboard-card");
  ok((await cards.count()) === INPUT.dashboards.length, `cards: ${await cards.count()}`);
  for (const slug of INPUT.dashboards) {
    ok(await page.isVisible(`.dashboard-card[data-dashboard="${slug}"]`), `card ${slug}`);
  }
  // every thumbnail loaded (a chart the notebook drew, or a drawn card)
  const broken = await page.$$eval("img.dashboard-thumbnail", (imgs) =>
    imgs.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.src),
  );
  ok(broken.length === 0, `thumbnails that did not load: ${broken}`);
  const card = page.locator(`.dashboard-card[data-dashboard="${INPUT.pinned}"]`);
  ok((await text(card, ".dashboard-publisher")) === `by ${INPUT.publisher}`, "the publisher");
  const link = await card.locator("a.dashboard-title").getAttribute("href");
  ok(link === `/services/datapilot/dashboards/${INPUT.org}/${INPUT.pinned}`, `link: ${link}`);
  for (const absent of ["#upload-link", "#open-server", "#nav-servers"]) {
    ok(!(await page.isVisible(absent)), `a viewer sees no ${absent}`);
  }
  ok(!(await page.content()).includes("dp.publish"), "no publishing hint for a viewer");
  const shotFile = await shot("gallery");
  // search narrows the gallery
  await page.fill("#dataset-search input[name=q]", INPUT.search);
  await go(page, "#dataset-search button");
  ok((await cards.count()) === 1, `after searching: ${await cards.count()} cards`);
  await shot("gallery-search");
  // the dashboard's page: the versions of the data it shows, no actions
  await page.goto(`${home}dashboards/${INPUT.pinned}`);
  const shown = await page.locator("#dashboard-datasets .dataset-version").allTextContents();
  ok(shown.map((s) => s.trim()).join("|") === INPUT.shows, `versions shown: ${shown}`);
  ok(!(await page.isVisible("#unpublish-dashboard")), "no unpublish for a viewer");
  ok((await page.locator("#dashboard-versions form").count()) === 0, "no rollback for a viewer");
  await shot("dashboard-details");
  // the dataset page's chart
  await page.goto(`${home}datasets/${INPUT.dataset}`);
  ok(await page.isVisible("#dataset-chart img"), "the dataset's chart");
  await shot("dataset-chart");
  return { gallery: shotFile };
});
