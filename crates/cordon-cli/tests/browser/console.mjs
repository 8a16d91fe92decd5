// The console in a real browser (Playwright driving the system's
// Chromium), against `cordon serve` on the demo's store. Run by
// tests/console.rs; exits non-zero with the reason on the first failure.
//   node console.mjs URL ADMIN_TOKEN RESPONDER_TOKEN VIEWER_TOKEN POLICY_FILE [SCREENSHOT]
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const [base, admin, responder, viewer, policyFile, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const fail = (m) => { throw new Error(m); };
const check = (cond, m) => { if (!cond) fail(m); };
const thirdParty = [];

async function login(token) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  // Any request leaving the server is a failure: the console fetches nothing from elsewhere.
  page.on('request', (r) => { if (!r.url().startsWith(base)) thirdParty.push(r.url()); });
  await page.goto(base + '/');
  check(page.url().endsWith('/login'), `not sent to the login form: ${page.url()}`);
  await page.fill('#token', token);
  await page.keyboard.press('Enter');
  await page.waitForURL(base + '/');
  return { context, page };
}

try {
  // A wrong token is refused.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(base + '/login');
    await page.fill('#token', 'not-a-token-at-all-000');
    await page.click('button[type=submit]');
    check((await page.textContent('body')).includes('not valid'), 'a wrong token was not refused');
    await context.close();
  }

  const { context, page } = await login(admin);
  // Overview: the demo's incident.
  const incident = page.locator('tr.incident a').first();
  const id = (await incident.textContent()).trim();
  check(id.startsWith('INC-'), `no incident on the overview: ${id}`);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

  // Topology: the demo's groups, and the exfiltration edge denied.
  await page.goto(base + '/topology');
  for (const g of ['web', 'api', 'notifier', 'user-db', 'email-vendor', 'cloud-storage']) {
    check(await page.locator(`g.node[data-name="${g}"]`).count() === 1, `topology: no node ${g}`);
  }
  check(await page.locator('g.edge[data-src="notifier"][data-dst="cloud-storage"][data-verdict="deny"]').count() === 1,
    'topology: no denied edge notifier → cloud-storage');

  // Flow explorer: the filter's count is the API's.
  await page.goto(base + '/flows');
  await page.fill('#q', 'group:notifier port:443');
  await page.keyboard.press('Enter');
  await page.waitForURL(/q=group/);
  // On a slow machine counting may stop early: then count them all.
  if (await page.getAttribute('#flow-count', 'data-count') === null) {
    await page.click('#count-all');
    await page.waitForURL(/count=all/);
  }
  const shown = Number(await page.getAttribute('#flow-count', 'data-count'));
  const api = await page.request.get(base + '/api/v1/flows?q=' + encodeURIComponent('group:notifier port:443') + '&group_by=verdict',
    { headers: { Authorization: 'Bearer ' + admin } });
  check(api.ok(), `API flows: ${api.status()}`);
  const total = (await api.json()).groups.reduce((n, g) => n + g.flows, 0);
  check(shown === total && total > 0, `flow count ${shown} in the console, ${total} from the API`);
  // Autocompletion suggests groups as the word is typed.
  await page.fill('#q', 'group:noti');
  await page.dispatchEvent('#q', 'input');
  check(await page.locator('#suggest button', { hasText: 'group:notifier' }).count() === 1, 'no suggestion for group:noti');

  // Incident page: the HTML report downloads.
  await page.goto(base + '/incidents/' + id);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#report-html')]);
  const html = readFileSync(await download.path(), 'utf8');
  check(html.startsWith('<!DOCTYPE html>') && html.includes(id) && html.includes('T1199'), 'the report download is not the HTML report');
  // Acknowledge it (a form with the CSRF token).
  await page.click('form[action$="/ack"] button');
  await page.waitForURL(base + '/incidents/' + id);
  check((await page.textContent('#status')).trim() === 'acknowledged', 'the incident was not acknowledged');

  // What-if: the example policy without the cloud-storage deny. Under its
  // default deny those flows stay denied, now by the default; with
  // default allow as well they are no longer denied.
  const policy = readFileSync(policyFile, 'utf8');
  const cut = policy.indexOf('    - name: no-cloud-storage-from-app-tier');
  check(cut > 0, 'the example policy changed: no cloud-storage deny');
  const without = policy.slice(0, cut);
  await page.goto(base + '/policy');
  await page.fill('#policy', without);
  await page.click('form[action="/policy"] button[type=submit]');
  const moved = page.locator('tr.change[data-from="notifier"][data-to="cloud-storage"][data-before="deny"][data-after="deny"]');
  check(await moved.count() >= 1, 'what-if: the cloud-storage flows are not shown as decided by another rule');
  await page.fill('#policy', without.replace('default: deny', 'default: allow'));
  await page.click('form[action="/policy"] button[type=submit]');
  const freed = page.locator('tr.change[data-from="notifier"][data-to="cloud-storage"][data-before="deny"][data-after="allow"]');
  check(await freed.count() >= 1, 'what-if: the exfiltration flow is not shown as no longer denied');
  await context.close();

  // A viewer: no approve control, and the API says 403.
  {
    const { context, page } = await login(viewer);
    await page.goto(base + '/responses');
    check(await page.locator('#approve').count() === 0, 'a viewer sees the approve control');
    const r = await page.request.post(base + '/api/v1/responses/r1/approve', { headers: { Authorization: 'Bearer ' + viewer } });
    check(r.status() === 403, `viewer approve: ${r.status()}`);
    // Nor can a viewer acknowledge from the incident page.
    await page.goto(base + '/incidents/' + id);
    check(await page.locator('form[action$="/ack"]').count() === 0, 'a viewer sees the acknowledge form');
    await context.close();
  }
  // A responder sees the control.
  {
    const { context, page } = await login(responder);
    await page.goto(base + '/responses');
    check(await page.locator('#approve').count() === 1, 'a responder does not see the approve control');
    check(await page.locator('tr[data-status="proposed"]').count() === 1, 'the proposal is not listed');
    await page.click('#approve');
    await page.waitForURL(base + '/responses');
    check(await page.locator('tr[data-status="active"]').count() === 1, 'approving did not put the response in force');
    check(await page.locator('#approve').count() === 0, 'an approved response still offers approval');
    await context.close();
  }
  check(thirdParty.length === 0, `requests to other sites: ${thirdParty.join(', ')}`);
  console.log('console: all checks passed');
} catch (e) {
  console.error('console: ' + e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
