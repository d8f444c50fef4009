// A person approving (or denying) a device in a real browser: Debian's chromium,
// driven by playwright-core. Called by tests/pages.rs with the verification URI, the
// code the device shows, the credentials, and "approve" or "deny"; prints one JSON line
// with what the pages showed, and saves a screenshot of each page when SHOTS is set.
import { chromium } from 'playwright-core';

const [url, code, username, password, action] = process.argv.slice(2);
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
  await shot('device-1-code');
  await page.fill('#user_code', code.toLowerCase());
  await Promise.all([page.waitForNavigation(), page.click('#continue')]);
  result.steps.push(await page.title());
  result.client = await page.textContent('#client');
  result.scopes = await page.$$eval('#scopes li', (li) => li.map((x) => x.textContent));
  await shot('device-2-approve');
  if (action === 'approve') {
    // A wrong password first: the page says so and keeps the request.
    await page.fill('#username', username);
    await page.fill('#password', password + 'x');
    await Promise.all([page.waitForNavigation(), page.click('#approve')]);
    result.wrong_password = await page.textContent('#error');
    await page.fill('#username', username);
    await page.fill('#password', password);
    await Promise.all([page.waitForNavigation(), page.click('#approve')]);
  } else {
    await Promise.all([page.waitForNavigation(), page.click('#deny')]);
  }
  result.steps.push(await page.title());
  result.done = await page.textContent('#done');
  await shot(`device-3-${action}`);
} catch (e) {
  result.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
