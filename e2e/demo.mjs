// The real `haechi demo`, as a new user meets it: sign in with the email and password the demo
// printed, open one of the example scenarios, start a new run in the portal and watch it finish
// into a report. Started by crates/haechi/tests/e2e.rs against the demo process itself:
//   HAECHI_E2E_URL       the demo's base URL
//   HAECHI_E2E_EMAIL     the demo user's email, as printed
//   HAECHI_E2E_PASSWORD  the password, as printed
//   HAECHI_E2E_SHOTS     folder for the screenshots
//   HAECHI_CHROMIUM      the browser binary (default /usr/bin/chromium)
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.HAECHI_E2E_URL;
const email = process.env.HAECHI_E2E_EMAIL;
const password = process.env.HAECHI_E2E_PASSWORD;
const shots = process.env.HAECHI_E2E_SHOTS ?? "screenshots-demo";
const executablePath = process.env.HAECHI_CHROMIUM ?? "/usr/bin/chromium";
if (!base || !email || !password) throw new Error("HAECHI_E2E_URL, HAECHI_E2E_EMAIL and HAECHI_E2E_PASSWORD must be set");
mkdirSync(shots, { recursive: true });

function expect(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
  console.log(`ok - ${what}`);
}

let n = 0;
async function shot(page, name) {
  n += 1;
  await page.screenshot({ path: `${shots}/${String(n).padStart(2, "0")}-${name}.png`, fullPage: true });
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await (await browser.newContext({ locale: "ko-KR", viewport: { width: 1280, height: 800 } })).newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(m.text());
  });

  await page.goto(`${base}/login`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/`);
  expect(await page.isVisible("text=최근 실행"), "the printed password signs the demo user in");
  expect((await page.locator("main a[href^='/runs/']").count()) >= 3, "the dashboard lists the demo's example runs");
  await shot(page, "demo-dashboard");

  await page.click("header a[href='/scenarios']");
  expect((await page.locator("main a[href^='/scenarios/']:not([href='/scenarios/new'])").count()) >= 3, "the three example scenarios are listed");
  await page.click("main a[href^='/scenarios/']:not([href='/scenarios/new']) >> nth=0");
  await page.waitForURL(/\/scenarios\/\d+$/);
  await shot(page, "demo-scenario");

  // A new run, started after the demo is serving: the in-process worker must pick it up.
  await page.click("#run-scenario");
  await page.waitForURL(/\/runs\/\d+$/);
  const runId = Number(page.url().split("/").pop());
  await page.waitForSelector("svg.chart polyline.equity", { timeout: 120000 });
  expect(await page.isVisible("svg.chart polyline.equity"), `the new run ${runId} finished and its report shows the equity curve`);
  const state = await page.evaluate(async (id) => (await (await fetch(`/api/v1/runs/${id}`)).json()).state, runId);
  expect(state === "succeeded", `the API agrees the run succeeded (${state})`);
  await shot(page, "demo-report");

  // A parameter sweep of the moving-average example: started from its page, followed until
  // every point is done, shown as a heat map, and one point opened as a full report.
  await page.click("header a[href='/scenarios']");
  await page.click("main a:has-text('SMA')");
  await page.waitForURL(/\/scenarios\/\d+$/);
  expect(await page.isVisible("#sweep-grid"), "the scenario page offers a parameter sweep");
  await page.fill("#sweep-grid", "strategy.fast=10..30:10\nstrategy.slow=40..80:20");
  await page.click("#start-sweep");
  await page.waitForURL(/\/sweeps\/\d+$/);
  const sweepUrl = page.url();
  let finished = false;
  for (let i = 0; i < 120 && !finished; i += 1) {
    finished = (await page.locator("#dsr").count()) > 0;
    if (!finished) {
      await page.waitForTimeout(1000);
      await page.goto(sweepUrl);
    }
  }
  expect(finished, "the sweep's 9 points finished on the demo's workers");
  expect((await page.textContent("#sweep-progress")).trim() === "9/9", "every point is counted");
  expect((await page.locator("#sweep-heat tbody tr").count()) === 3, "the heat map has a row per slow average");
  expect((await page.locator("#sweep-points tbody tr").count()) === 9, "and the table a row per point");
  await shot(page, "demo-sweep");
  await page.click("#sweep-points tbody tr >> nth=0 >> button");
  await page.waitForURL(/\/runs\/\d+$/);
  await page.waitForSelector("svg.chart polyline.equity", { timeout: 120000 });
  expect(await page.isVisible("svg.chart polyline.equity"), "the best point opens as a full report");
  await shot(page, "demo-sweep-point-report");

  // Paper trading: the demo's mock account has fills from the replayed session's first prints,
  // an open order at the lower limit; a new order is placed from the ticket, a refused one is
  // worded in Korean, and the open order is cancelled.
  await page.click("header a[href='/accounts']");
  expect(await page.isVisible("#paper-accounts"), "the mock accounts page lists the demo account");
  await page.click("#paper-accounts a >> nth=0");
  await page.waitForURL(/\/accounts\/\d+$/);
  const accountUrl = page.url();
  let filled = false;
  for (let i = 0; i < 60 && !filled; i += 1) {
    filled = (await page.locator("#fills tbody tr").count()) > 0;
    if (!filled) {
      await page.waitForTimeout(1000);
      await page.goto(accountUrl);
    }
  }
  expect(filled, "fills from the replayed session arrive within a minute");
  expect((await page.locator("#positions tbody tr").count()) > 0, "and show as positions with their P&L");
  await shot(page, "demo-paper-account");
  const ticker = (await page.textContent("#positions tbody tr >> nth=0 >> td >> nth=0")).trim().split(" ")[0];
  await page.fill("#look-ticker", ticker);
  await page.click("#ticket form.inline-form button");
  expect(await page.isVisible("#ticket-facts"), `the ticket shows ${ticker}'s band and tick`);
  await page.fill("#o-ticker", ticker);
  await page.selectOption("#o-side", "sell");
  await page.selectOption("#o-type", "market");
  await page.fill("#o-qty", "999999");
  await page.click("#order-form button[type=submit]");
  expect((await page.textContent("#order-error")).includes("매도 가능 수량"), "selling more than held is refused, in Korean");
  await shot(page, "demo-paper-refused");
  await page.goto(accountUrl);
  const before = await page.locator("#open-orders tbody tr").count();
  expect(before >= 1, "the order at the lower limit is still open");
  await page.click("#open-orders tbody tr >> nth=0 >> button:has-text('취소')");
  await page.waitForURL(/done=cancelled/);
  expect((await page.locator("#open-orders tbody tr").count()) === before - 1, "cancelling removes it from the open orders");
  await shot(page, "demo-paper-cancelled");

  // The risk page, from the menu: the score with its four areas, and the rules and events
  // sections (a fresh demo account has no threat yet: score 0, no events).
  await page.click("nav >> text=위험 대응");
  await page.waitForURL(/\/risk$/);
  expect((await page.textContent("h1")).includes("위험 대응 현황"), "the risk page opens from the menu");
  expect(/^\d+$/.test((await page.textContent("#score-value")).trim()), "it shows a numeric risk score");
  expect((await page.locator("#risk-score tbody tr").count()) === 4, "with market, portfolio, news and security areas");
  await shot(page, "demo-risk");

  // A stress test of the demo's mock account: the 2022 bear market replayed name by name.
  await page.goto(accountUrl);
  await page.click("#paper-stress-link");
  await page.selectOption("#replay", "2022");
  await page.click("#stress-replay button");
  await page.waitForSelector("#stress-result");
  expect(/^[+-]\d+\.\d%$/.test((await page.textContent("#worst-loss")).trim()), "a replay shows the worst loss");
  await shot(page, "demo-stress");

  // Something that is not there: a page for people, in Korean, with the request id to quote.
  const missing = await page.goto(`${base}/runs/999999`);
  expect(missing.status() === 404, "an unknown run answers 404");
  expect((missing.headers()["content-type"] ?? "").startsWith("text/html"), "as an HTML page, not JSON");
  expect(await page.isVisible("#error-title"), "with a title saying what went wrong");
  expect((await page.textContent("main")).includes(missing.headers()["x-request-id"]), "and the request id");
  await shot(page, "demo-not-found");
  expect(problems.length === 0, `no script errors or CSP violations (${problems.join("; ")})`);
} finally {
  await browser.close();
}
