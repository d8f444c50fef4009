// A person signing in to an app through sipreg's authorization endpoint in a real
// browser: Debian's chromium, driven by playwright-core. Called by tests/oauth_code.rs
// with the authorize URL and the credentials; signs in, approves, and waits for the
// app's redirect URI (served by the test). Prints one JSON line with what the pages
// showed, and saves a screenshot of the sign-in and consent pages when SHOTS is set.
import { chromium } from 'playwright-core';

const [url, username, password] = process.argv.slice(2);
const shots = process.env.SHOTS || '';
const result = { steps: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 560, height: 640 } });
  const shot = async (name) => {
    if (shots) await page.screenshot({ path: `${shots}/${name}.png` });
  };
  await page.goto(url);
  result.steps.push(await page.title());
  result.signing_in_to = await page.textContent('#client');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await shot('code-1-sign-in');
  await Promise.all([page.waitForNavigation(), page.click('#sign_in')]);
  result.steps.push(await page.title());
  result.client = await page.textContent('#client');
  result.scopes = await page.$$eval('#scopes li', (li) => li.map((x) => x.textContent));
  await shot('code-2-consent');
  await Promise.all([page.waitForURL((u) => u.pathname === '/callback'), page.click('#approve')]);
  await page.waitForLoadState();
  result.steps.push(await page.title());
  result.landed = page.url().split('?')[0];
} catch (e) {
  result.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
