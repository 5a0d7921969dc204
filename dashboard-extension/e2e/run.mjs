// End-to-end run of the Dashboard extension in real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core: no browser download). A parent page plays the Saleor Dashboard: it embeds
// the App page in an iframe from another origin and speaks AppBridge's postMessage protocol
// (handshake with the token, theme, answers to the App's actions). tests/dashboard/ starts the
// server, seeds the data, runs this with E2E_CONFIG (JSON) and checks the database afterwards.
//
// Config: {appUrl, token, reportFlowId, contactId, customerId, orderId, outDir,
// screenshotsDir, only?: [step names], reportRange?: "?since=…&until=…", shotPrefix?}
// Prints one JSON line with what it saw; exits non-zero on the first failed step.
import { chromium } from "playwright-core";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";

const config = JSON.parse(process.env.E2E_CONFIG);
const seen = {};
mkdirSync(config.screenshotsDir, { recursive: true });

const parentPage = `<!doctype html><html><head><meta charset="utf-8"><title>Saleor Dashboard (test double)</title>
<style>body{margin:0;font-family:sans-serif} header{height:40px;background:#222;color:#fff;padding:8px 16px;box-sizing:border-box}
iframe{border:0;width:100%;height:calc(100vh - 40px);display:block}</style></head>
<body><header>Saleor Dashboard · Apps · Flows</header><iframe id="app"></iframe>
<script>
  const TOKEN = ${JSON.stringify(config.token)};
  const frame = document.getElementById("app");
  window.bridgeLog = [];
  window.setTheme = (theme) => frame.contentWindow.postMessage({ type: "theme", payload: { theme } }, "*");
  window.openApp = (hash, extra = "") => {
    const url = new URL(${JSON.stringify(config.appUrl)});
    url.search = "?id=QXBwOjEy&saleorApiUrl=" + encodeURIComponent(url.origin + "/graphql/") + "&domain=" + url.host + "&theme=light&locale=en" + extra;
    url.hash = hash;
    frame.src = url.toString();
  };
  function handshake() {
    frame.contentWindow.postMessage({ type: "handshake", payload: { token: TOKEN, version: 1, saleorVersion: "3.24.0", dashboardVersion: "3.24.0" } }, "*");
    frame.contentWindow.postMessage({ type: "theme", payload: { theme: "light" } }, "*");
  }
  window.addEventListener("message", (event) => {
    if (event.source !== frame.contentWindow) return;
    const { type, payload } = event.data || {};
    window.bridgeLog.push(type);
    if (payload && payload.actionId) frame.contentWindow.postMessage({ type: "response", payload: { actionId: payload.actionId, ok: true } }, "*");
    if (type === "notifyReady") handshake();
  });
</script></body></html>`;

// The "Dashboard" is served from its own origin on loopback (the App is on another: the live server),
// as a real Dashboard and the plugin's API are.
const dashboardServer = createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end(parentPage);
});
await new Promise((resolve) => dashboardServer.listen(0, "127.0.0.1", resolve));
const DASHBOARD = `http://127.0.0.1:${dashboardServer.address().port}`;
if (new URL(config.appUrl).origin === DASHBOARD) throw new Error("the App must be on another origin than the Dashboard");

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox", "--disable-dev-shm-usage"] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
const page = await context.newPage();
const consoleErrors = [];
// Sample product images in the previews point at the shop's CDN, which this machine cannot reach.
page.on("console", (m) => { if (m.type() === "error" && !m.text().includes("ERR_NAME_NOT_RESOLVED")) consoleErrors.push(m.text()); });
// Saleor's own API (saleorApiUrl): the pages need nothing from it; a request there is noted and refused.
const saleorGraphql = new URL("/graphql/", config.appUrl).toString();
await page.route(saleorGraphql, async (route) => {
  seen.saleorApiRequests = (seen.saleorApiRequests ?? 0) + 1;
  await route.fulfill({ status: 500, contentType: "application/json", body: "{}" });
});
await page.goto(`${DASHBOARD}/apps/flows`);
const app = page.frameLocator("#app");

async function open(hash, extra = "") {
  await page.evaluate(([h, e]) => window.openApp(h, e), [hash, extra]);
}
async function shot(name) {
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${config.screenshotsDir}/${config.shotPrefix ?? ""}${name}.png` });
}
async function step(name, fn) {
  if (config.only && !config.only.includes(name)) return;
  const started = Date.now();
  try {
    await fn();
    seen[name] = { ...(seen[name] || {}), ok: true, ms: Date.now() - started };
  } catch (error) {
    await page.screenshot({ path: `${config.outDir}/failed-${name}.png` }).catch(() => {});
    console.log(JSON.stringify({ failed: name, error: String(error), seen, consoleErrors }));
    await browser.close();
    dashboardServer.close();
    process.exit(1);
  }
}
/** Inside the iframe: the page never scrolls sideways (no layout break). */
async function noHorizontalOverflow() {
  const frame = page.frames().find((f) => f.parentFrame());
  return frame.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
}

await step("home", async () => {
  await open("#/");
  await app.getByRole("heading", { name: "Flows", exact: true }).waitFor();
  await app.getByText("Cart rescue (seeded)").first().waitFor();
  await app.locator("[data-testid=sparkline] svg").first().waitFor();
  seen.home = { bridge: await page.evaluate(() => window.bridgeLog), wide: await noHorizontalOverflow() };
  await shot("home-1280");
});

await step("gallery", async () => {
  await open("#/gallery");
  await app.getByTestId("template-abandoned_checkout").waitFor();
  await shot("gallery-1280");
  await app.getByTestId("template-abandoned_checkout").getByRole("link").click();
  const frameEl = app.locator("iframe.preview-frame");
  await frameEl.waitFor();
  const english = await app.getByTestId("preview-subject").innerText();
  const languages = await app.locator("#preview-language option").allInnerTexts();
  await app.frameLocator("iframe.preview-frame").locator("body").waitFor();
  await shot("gallery-preview-1280");
  let german = null;
  if (languages.includes("DE")) {
    await app.locator("#preview-language").selectOption("de");
    await app.getByTestId("preview-subject").filter({ hasNotText: english }).waitFor();
    german = await app.getByTestId("preview-subject").innerText();
  }
  const checks = await app.getByTestId("checks").innerText();
  seen.gallery = { english, german, languages, checks, sandbox: await frameEl.getAttribute("sandbox") };
  await app.getByTestId("turn-on").click();
  await app.getByRole("heading", { name: "Flows", exact: true }).waitFor();
  await app.getByText("Abandoned").first().waitFor();
  await shot("home-after-turn-on-1280");
});

await step("customize", async () => {
  // "Customize first": the journey becomes a draft and opens in the builder.
  await open("#/gallery/welcome");
  await app.getByRole("button", { name: "Customize first" }).click();
  await app.getByTestId("canvas").waitFor();
  await app.getByTestId("flow-node").first().waitFor();
  seen.customize = { nodes: await app.getByTestId("flow-node").count() };
});

await step("builder", async () => {
  await open("#/");
  await app.getByRole("button", { name: "New flow" }).click();
  await app.getByTestId("canvas").waitFor();
  const add = async (type) => {
    await app.locator("#add-type").selectOption(type);
    await app.getByTestId("add-step").click();
  };
  await add("split");       // the start
  await add("wait");        // on the split's "yes"
  await add("send_email");  // after the delay
  // An email without a subject: publishing is refused and the problem shows on that step.
  await app.locator("#f-subject").fill("");
  await app.getByTestId("publish").click();
  await app.getByTestId("publish-confirm").click();
  await app.locator(".flow-node.invalid").first().waitFor();
  seen.builder = { invalidStep: await app.locator(".flow-node.invalid").first().textContent(), stepErrors: await app.getByTestId("step-errors").innerText() };
  await shot("builder-step-error-1280");
  await app.locator("#f-subject").fill("Thanks for being a regular");
  // The variables help offers the product-recommendations loop, ready to paste.
  await app.getByText("Variables you can use").click();
  seen.builder.recommendations = await app.getByTestId("recommendations-snippet").innerText();
  await app.getByRole("button", { name: "Flow settings" }).click();
  await app.locator("#flow-name").fill("Regulars (drawn in e2e)");
  await app.getByTestId("flow-node").nth(2).waitFor();
  seen.builder.nodes = await app.getByTestId("flow-node").count();
  await shot("builder-1280");
  await app.getByTestId("publish").click();
  await app.getByTestId("publish-confirm").click();
  await app.getByTestId("builder-notice").filter({ hasText: "Published version 1" }).waitFor({ timeout: 15000 });
  seen.builder.notice = await app.getByTestId("builder-notice").innerText();
  // Try before publishing: replay the stored events through the draft, with a progress bar.
  await app.getByRole("button", { name: "Simulate" }).click();
  await app.getByRole("button", { name: "Run simulation" }).click();
  await app.getByTestId("simulation").getByText(/entries by/).waitFor({ timeout: 20000 });
  seen.builder.simulation = await app.getByTestId("simulation").innerText();
  seen.builder.flowUrl = await page.frames().find((f) => f.parentFrame()).evaluate(() => location.hash);
});

await step("settings", async () => {
  await open("#/settings");
  await app.locator("[data-field='quietHours.email']").fill("after dinner");
  await app.getByRole("button", { name: "Save" }).click();
  const error = app.locator("#err-quietHours\\.email");
  await error.waitFor();
  seen.settings = { error: await error.innerText(), describedBy: await app.locator("[data-field='quietHours.email']").getAttribute("aria-describedby") };
  await shot("settings-error-1280");
  await app.locator("[data-field='quietHours.email']").fill("21:00-08:00");
  await app.getByRole("button", { name: "Save" }).click();
  await app.getByText(/^Saved/).waitFor();
});

await step("report", async () => {
  await open(`#/flows/${config.reportFlowId}/report${config.reportRange ?? ""}`);
  await app.getByTestId("report-totals").waitFor();
  await app.locator("[data-testid=chart-days] .recharts-line").first().waitFor();
  await app.locator("[data-testid=chart-funnel] .recharts-bar-rectangle").first().waitFor();
  seen.report = {
    totals: await app.getByTestId("report-totals").innerText(),
    lines: await app.locator("[data-testid=chart-days] .recharts-line").count(),
    funnelBars: await app.locator("[data-testid=chart-funnel] .recharts-bar-rectangle").count(),
    basis: await app.getByTestId("sent-by-basis").innerText(),
    wide: await noHorizontalOverflow(),
  };
  await shot("report-1280");
});

await step("contact", async () => {
  await open(`#/contacts/${config.contactId}`);
  await app.getByTestId("why-trail").locator("li").first().waitFor();
  seen.contact = { trail: await app.getByTestId("why-trail").innerText() };
  await shot("contact-1280");
});

await step("widget", async () => {
  await open("#/widgets/customer", `&customerId=${encodeURIComponent(config.customerId)}`);
  await app.getByTestId("why-trail").waitFor();
  await shot("widget-customer");
  seen.widget = { text: (await app.getByTestId("why-trail").innerText()).slice(0, 200), bridge: await page.evaluate(() => window.bridgeLog) };
});

await step("orderWidget", async () => {
  await open("#/widgets/order", `&orderId=${encodeURIComponent(config.orderId)}`);
  await app.getByText(/Credited to/).waitFor();
  seen.orderWidget = { text: await app.locator("body").innerText() };
  await shot("widget-order");
});

if (config.exitEmail) await step("exit", async () => {
  // Contacts: search, open one, exit them from the flow they are in.
  await open("#/contacts");
  await app.getByLabel("Search contacts").fill(config.exitEmail);
  await app.getByRole("link", { name: config.exitEmail }).click();
  await app.getByRole("button", { name: /^Exit / }).click();
  await app.getByText(/^Exited/).first().waitFor();
  seen.exit = { journeys: await app.locator("section", { hasText: "Journeys" }).first().innerText() };
  await shot("contact-exited-1280");
});

await step("narrow", async () => {
  await page.setViewportSize({ width: 768, height: 1000 });
  await open("#/");
  await app.getByText("Cart rescue (seeded)").first().waitFor();
  await app.locator("[data-testid=sparkline] svg").first().waitFor();
  const homeWide = await noHorizontalOverflow();
  await shot("home-768");
  await open(`#/flows/${config.reportFlowId}/report`);
  await app.locator("[data-testid=chart-days] .recharts-line").first().waitFor();
  seen.narrow = { home: homeWide, report: await noHorizontalOverflow() };
  await shot("report-768");
});

await step("dark", async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await open("#/");
  await app.getByText("Cart rescue (seeded)").first().waitFor();
  await page.evaluate(() => window.setTheme("dark"));
  await page.waitForTimeout(300);
  const frame = page.frames().find((f) => f.parentFrame());
  seen.dark = { theme: await frame.evaluate(() => document.documentElement.dataset.theme) };
  await shot("home-dark-1280");
});

await step("keyboard", async () => {
  // Tab from the top of the App reaches the navigation links first.
  const frame = page.frames().find((f) => f.parentFrame());
  await frame.focus("body").catch(() => {});
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  seen.keyboard = { focused: await frame.evaluate(() => document.activeElement?.textContent?.trim() ?? "") };
});

seen.consoleErrors = consoleErrors;
await browser.close();
dashboardServer.close();
writeFileSync(`${config.outDir}/result.json`, JSON.stringify(seen, null, 2));
console.log(JSON.stringify(seen));
