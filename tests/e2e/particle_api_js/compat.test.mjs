// particle-api-js 11.x, a client simcap did not write, pointed at simcapd with baseUrl.
// Run by ctest (test.sh installs the package): SIMCAPD is the daemon binary, ICCIDS a list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import http from 'node:http';
import Particle from 'particle-api-js';

const dir = mkdtempSync(join(tmpdir(), 'simcap-pjs-'));
const iccids = readFileSync(process.env.ICCIDS, 'utf8').trim().split('\n').slice(0, 5);
const auth = 'pjs-admin';
const acmeToken = 'pjs-acme';
let daemon, particle, feedPort;

// Resolves once check() is true, checking at every turn of the event loop for up to 20 s.
async function waitFor(check, what) {
  const deadline = Date.now() + 20000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setImmediate(r));
  }
}

function waitForPorts(proc) {
  return new Promise((resolve, reject) => {
    let out = '';
    const ports = {};
    const timer = setTimeout(() => reject(new Error('simcapd did not start: ' + out)), 20000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      for (const m of out.matchAll(/(http|feed) listening on ([\d.]+):(\d+)/g)) ports[m[1]] = Number(m[3]);
      if (ports.http && ports.feed) { clearTimeout(timer); resolve(ports); }
    });
    proc.on('exit', (code) => reject(new Error('simcapd exited ' + code)));
  });
}

// Streams records over the feed protocol and resolves at the ack of the last one.
function stream(lines) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(feedPort, '127.0.0.1');
    let buf = '';
    sock.on('connect', () => sock.write('{"hello":{"feed":"carrier-a","token":"feed-secret"}}\n'));
    sock.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.welcome) {
          const base = msg.welcome.resume_after;
          sock.write(lines.map((l, i) => JSON.stringify({ seq: base + i + 1, ...l })).join('\n') + '\n');
          sock.target = base + lines.length;
        } else if (msg.ack !== undefined && msg.ack >= sock.target) {
          sock.end();
          resolve(msg.ack);
        } else if (msg.error) {
          reject(new Error(JSON.stringify(msg)));
        }
      }
    });
    sock.on('error', reject);
  });
}

async function startDaemon() {
  daemon = spawn(process.env.SIMCAPD, ['--config', join(dir, 'simcapd.toml'), '--data-dir', join(dir, 'data'),
    '--http', '127.0.0.1:0', '--feed', '127.0.0.1:0', '--shards', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await waitForPorts(daemon);
  feedPort = ports.feed;
  particle = new Particle({ baseUrl: `http://127.0.0.1:${ports.http}` });
}

before(async () => {
  writeFileSync(join(dir, 'simcapd.toml'), [
    '[[tokens]]', `token = "${auth}"`, 'scope = "admin"',
    '[[tokens]]', `token = "${acmeToken}"`, 'product = "acme"',
    '[[feeds]]', 'name = "carrier-a"', 'token = "feed-secret"',
    '[[products]]', 'id = "acme"', 'country = "US"', 'default_mb_limit = 5',
    '[billing]', 'rates_file = "rates.toml"',
  ].join('\n'));
  writeFileSync(join(dir, 'rates.toml'), [
    'currency = "USD"', 'included_mb = 1',
    '[[zones]]', 'id = "zone2"', 'base = "2.99"', 'per_mb = "0.99"', 'countries = ["US"]',
  ].join('\n'));
  await startDaemon();
});

after(() => {
  if (daemon) daemon.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('activateSIM imports SIMs into a product', async () => {
  const r = await particle.activateSIM({ iccids, country: 'US', product: 'acme', auth });
  assert.equal(r.statusCode, 200);
  assert.equal(r.body.ok, true);
  assert.equal(r.body.imported, iccids.length);
  assert.deepEqual(r.body.invalid, []);
});

test('listSIMs lists them with Particle fields', async () => {
  const r = await particle.listSIMs({ product: 'acme', auth, perPage: 3 });
  assert.equal(r.body.sims.length, 3);
  assert.equal(r.body.meta.total_pages, 2);
  const sim = r.body.sims[0];
  assert.equal(sim._id, iccids.slice().sort()[0]);
  assert.equal(sim.status, 'active');
  assert.equal(sim.mb_limit, 5);
  assert.equal(sim.base_country_code, 'US');
  const one = await particle.listSIMs({ product: 'acme', auth, iccid: iccids[1] });
  assert.equal(one.body.sims.length, 1);
  assert.equal(one.body.sims[0].iccid, iccids[1]);
});

test('getSIMDataUsage and getFleetDataUsage see streamed usage', async () => {
  const end = Math.floor(Date.now() / 1000);
  await stream([{ iccid: iccids[0], end, up: 1000000, down: 500000 }, { iccid: iccids[1], end, down: 250000 }]);
  const u = await particle.getSIMDataUsage({ iccid: iccids[0], product: 'acme', auth });
  assert.equal(u.body.iccid, iccids[0]);
  assert.ok(Array.isArray(u.body.usage_by_day));
  const today = u.body.usage_by_day[u.body.usage_by_day.length - 1];
  assert.equal(today.mbs_used, 1.5);
  assert.equal(today.mbs_used_cumulative, 1.5);
  // With a rate table: 2.99 a SIM, and 1.5 MB is one MB beyond the included one at 0.99.
  assert.equal(u.body.estimated_cost.micros, 2990000 + 990000);
  assert.equal(u.body.zone, 'zone2');
  const f = await particle.getFleetDataUsage({ product: 'acme', auth });
  assert.equal(f.body.total_mbs_used, 1.75);
  assert.equal(f.body.total_active_sim_cards, iccids.length);
  assert.equal(f.body.estimated_cost.currency, 'USD');
  assert.equal(f.body.estimated_cost.micros, iccids.length * 2990000 + 990000);
  assert.match(f.body.estimated_cost.amount, /^[0-9]+\.[0-9]{2}$/);
});

test('updateSIM, deactivateSIM, reactivateSIM and removeSIM change the SIM', async () => {
  const iccid = iccids[2];
  const up = await particle.updateSIM({ iccid, mbLimit: 20, product: 'acme', auth });
  assert.equal(up.body.mb_limit, 20);
  const off = await particle.deactivateSIM({ iccid, product: 'acme', auth });
  assert.equal(off.body.status, 'inactive_user_deactivated');
  const on = await particle.reactivateSIM({ iccid, mbLimit: 30, product: 'acme', auth });
  assert.equal(on.body.status, 'active');
  assert.equal(on.body.mb_limit, 30);
  const gone = await particle.removeSIM({ iccid, product: 'acme', auth });
  assert.equal(gone.statusCode, 204);
  // A transition the life cycle does not allow comes back as Particle-style errors.
  await assert.rejects(particle.deactivateSIM({ iccid, product: 'acme', auth }), (err) => {
    assert.equal(err.statusCode, 409);
    assert.match(err.shortErrorDescription, /released/);
    return true;
  });
  await assert.rejects(particle.listSIMs({ product: 'acme', auth: 'wrong-token' }), (err) => err.statusCode === 401);
});

test('createWebhook, listWebhooks and deleteWebhook manage webhooks; a product token sees its own', async () => {
  const got = [];
  const rx = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      got.push({ headers: req.headers, body: JSON.parse(body) });
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise((r) => rx.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${rx.address().port}/hook`;
  const mine = await particle.createWebhook({
    event: 'paused', url, product: 'acme', auth: acmeToken,
    hook: { headers: { 'X-Fleet': 'acme' }, auth: { username: 'u', password: 'p' } },
  });
  assert.equal(mine.body.ok, true);
  assert.match(mine.body.id, /^[0-9a-f]{24}$/);
  assert.equal(mine.body.event, 'paused');
  assert.equal(mine.body.url, url);
  const everyProduct = await particle.createWebhook({ event: 'alert', url, auth });
  assert.equal(everyProduct.body.ok, true);

  const asAcme = await particle.listWebhooks({ auth: acmeToken });
  assert.deepEqual(asAcme.body.map((h) => h.id), [mine.body.id]);
  assert.equal(asAcme.body[0].product, 'acme');
  assert.equal(asAcme.body[0].requestType, 'POST');
  assert.equal(asAcme.body[0].event, 'paused');
  const asAdmin = await particle.listWebhooks({ auth });
  assert.deepEqual(asAdmin.body.map((h) => h.id).sort(), [mine.body.id, everyProduct.body.id].sort());
  const acmeForm = await particle.listWebhooks({ product: 'acme', auth });
  assert.deepEqual(acmeForm.body.map((h) => h.id), [mine.body.id]);
  await assert.rejects(particle.deleteWebhook({ hookId: everyProduct.body.id, auth: acmeToken }),
    (err) => err.statusCode === 404);
  await assert.rejects(particle.createWebhook({ event: 'nothing', url, auth }), (err) => err.statusCode === 400);

  // 1.5 MB + 4 MB of a 5 MB limit: the alert (every product's hook) and the pause (acme's hook).
  await stream([{ iccid: iccids[0], end: Math.floor(Date.now() / 1000), down: 4000000 }]);
  await waitFor(() => got.some((r) => r.body.type === 'paused') && got.some((r) => r.body.type === 'alert'),
    'the pause and the alert');
  const paused = got.find((r) => r.body.type === 'paused');
  assert.equal(paused.body.iccid, iccids[0]);
  assert.equal(paused.body.product, 'acme');
  assert.equal(paused.headers['x-fleet'], 'acme');
  assert.equal(paused.headers.authorization, 'Basic ' + Buffer.from('u:p').toString('base64'));
  assert.equal(paused.headers['idempotency-key'], String(paused.body.id));
  const alert = got.find((r) => r.body.type === 'alert');
  assert.equal(alert.headers['x-fleet'], undefined);
  assert.equal(alert.headers.authorization, undefined);

  // The hooks are durable: a restarted simcapd lists them and still delivers.
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  await startDaemon();
  const again = await particle.listWebhooks({ auth });
  assert.deepEqual(again.body.map((h) => h.id).sort(), [mine.body.id, everyProduct.body.id].sort());
  const del = await particle.deleteWebhook({ hookId: mine.body.id, product: 'acme', auth: acmeToken });
  assert.equal(del.body.ok, true);
  assert.deepEqual((await particle.listWebhooks({ auth: acmeToken })).body, []);
  await assert.rejects(particle.deleteWebhook({ hookId: mine.body.id, auth }), (err) => err.statusCode === 404);
  const gone = await particle.deleteWebhook({ hookId: everyProduct.body.id, auth });
  assert.equal(gone.body.ok, true);
  rx.close();
});
