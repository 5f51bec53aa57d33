// Opens a page in Debian's Chromium through playwright-core (installed by
// scripts/install-chromium.sh) for the dashboard's browser tests: waits until the page shows
// the text given with --expect (at most 20 s of real time), then prints the page's HTML to
// standard output and every console message and page error to standard error, one per line
// as "CONSOLE <type>: <text>". With --screenshot PATH it also saves a PNG.
//   node scripts/browser.mjs URL [--expect TEXT] [--screenshot PATH]
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", ".browser", "package.json"));
const { chromium } = require("playwright-core");

const args = process.argv.slice(2);
const url = args[0];
const option = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const expect = option("--expect");
const screenshot = option("--screenshot");

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  page.on("console", (m) => console.error(`CONSOLE ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.error(`CONSOLE Uncaught: ${e.message}`));
  await page.goto(url, { waitUntil: "load", timeout: 20000 });
  if (expect) {
    try {
      await page.waitForFunction((t) => document.documentElement.outerHTML.includes(t), expect, { timeout: 20000 });
    } catch (e) {
      console.error(`did not see ${JSON.stringify(expect)} within 20 s`);
    }
  }
  if (screenshot) await page.screenshot({ path: screenshot });
  process.stdout.write(await page.content());
} finally {
  await browser.close();
}
