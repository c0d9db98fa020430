/**
 * The status page: plain HTML, CSS and JS served by the admin server, with
 * no build step and nothing fetched from elsewhere. It polls /api/services
 * and /api/info every second and draws one card per service: traffic,
 * refusals by cause, the queue, a sessions/s sparkline with its scale, and a
 * backend table whose buttons drain, enable, disable and re-weight, plus a
 * form that adds a backend. When the admin server has a token it asks for it
 * once and keeps it in sessionStorage (gone with the tab). Light or dark as
 * the system prefers; on a phone the table stacks into one block per backend.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>blitz-lb status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<style>
  :root { --bg:#f5f7fa; --card:#ffffff; --text:#1f2328; --dim:#59636e; --line:#d8dee4; --spark:#eef2f6; --accent:#0969da;
          --up:#1a7f37; --down:#cf222e; --drain:#9a6700; --off:#6e7781; --btn:#f0f3f6; }
  @media (prefers-color-scheme: dark) {
    :root { --bg:#0f1419; --card:#182029; --text:#e6e6e6; --dim:#8b98a5; --line:#273340; --spark:#121a22; --accent:#58a6ff;
            --up:#2ea043; --down:#da3633; --drain:#d29922; --off:#6e7681; --btn:#21262d; }
  }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--text); }
  header { padding:12px 16px; display:flex; flex-wrap:wrap; gap:6px 16px; align-items:baseline; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  .dim, #updated { color:var(--dim); font-size:12px; }
  main { padding:12px; display:grid; gap:12px; grid-template-columns:repeat(auto-fit, minmax(min(100%, 600px), 1fr)); }
  .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; min-width:0; }
  .card h2 { margin:0 0 4px; font-size:16px; display:flex; flex-wrap:wrap; gap:8px; justify-content:space-between; align-items:flex-start; }
  .meta { color:var(--dim); font-size:12px; margin-bottom:6px; overflow-wrap:anywhere; }
  .stats { display:flex; flex-wrap:wrap; gap:6px 16px; margin:6px 0 8px; font-size:12px; color:var(--dim); }
  .stats b { font-size:16px; display:block; color:var(--text); }
  table { width:100%; border-collapse:collapse; font-size:13px; }
  th, td { text-align:left; padding:5px 6px; border-bottom:1px solid var(--line); vertical-align:top; overflow-wrap:anywhere; }
  th { color:var(--dim); font-weight:500; white-space:nowrap; overflow-wrap:normal; }
  .state { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; }
  .state.up { background:var(--up); } .state.down { background:var(--down); } .state.half-open { background:var(--drain); }
  .state.draining { background:var(--drain); } .state.disabled { background:var(--off); }
  .reason { color:var(--dim); font-size:11px; }
  .spark { display:flex; gap:4px; align-items:stretch; }
  .spark svg { width:160px; height:36px; background:var(--spark); border-radius:4px; }
  .spark polyline { fill:none; stroke:var(--accent); stroke-width:1.5; }
  .spark line { stroke:var(--line); stroke-width:1; }
  .scale { display:flex; flex-direction:column; justify-content:space-between; font-size:10px; color:var(--dim); text-align:right; min-width:44px; }
  button, input { font:inherit; font-size:12px; color:var(--text); background:var(--btn); border:1px solid var(--line); border-radius:4px; padding:2px 6px; }
  button { cursor:pointer; } button:hover { border-color:var(--accent); }
  input.weight { width:64px; }
  .actions { display:flex; flex-wrap:wrap; gap:4px; }
  form.add { display:flex; flex-wrap:wrap; gap:6px; margin-top:8px; align-items:center; }
  form.add input[name=address] { flex:1 1 140px; min-width:0; }
  #error, .failing { color:var(--down); }
  #login { display:none; gap:6px; align-items:center; flex-wrap:wrap; }
  #login.open { display:flex; }
  #login input { width:200px; max-width:100%; }
  @media (max-width: 640px) {
    table, thead, tbody, tr, td { display:block; }
    thead { display:none; }
    tr { border-bottom:1px solid var(--line); padding:6px 0; }
    td { border:0; padding:2px 0; display:flex; gap:8px; }
    td::before { content:attr(data-label); color:var(--dim); min-width:84px; font-size:12px; }
  }
</style>
</head>
<body>
<header>
  <h1>blitz-lb</h1>
  <span id="about" class="dim"></span>
  <span id="updated">loading…</span>
  <span id="error"></span>
  <form id="login"><label for="token" class="dim">admin token</label><input id="token" type="password" autocomplete="current-password"><button type="submit">Use token</button></form>
</header>
<main id="cards"></main>
<script>
const HISTORY = 60;
const history = new Map(); // service -> [{t, accepted}]
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('blitz-lb-token') || '';
let pending = null; // a write that waits for the token
let shown = { text: '', at: 0 }; // an action's error, kept a few seconds
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c])); }
function bytes(n) { const u = ['B','KiB','MiB','GiB','TiB']; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + ' ' + u[i]; }
function ago(s) { const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60); return d ? d + 'd ' + h + 'h' : h ? h + 'h ' + m + 'm' : m ? m + 'm ' + Math.floor(s % 60) + 's' : Math.floor(s) + 's'; }
function headers(write) {
  const h = write ? { 'content-type': 'application/json' } : {};
  if (token) h.authorization = 'Bearer ' + token;
  return h;
}
function askToken(why) {
  $('login').classList.add('open');
  $('error').textContent = why;
  $('token').focus();
}
$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('blitz-lb-token', token);
  $('login').classList.remove('open');
  $('error').textContent = '';
  const p = pending; pending = null;
  if (p) act(p.method, p.path, p.body); else refresh();
});
async function act(method, path, body) {
  const r = await fetch(path, { method, headers: headers(true), body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) { pending = { method, path, body }; askToken('this action needs the admin token'); return; }
  const data = await r.json().catch(() => ({}));
  shown = { text: r.ok ? '' : (data.error || 'failed: HTTP ' + r.status), at: Date.now() };
  $('error').textContent = shown.text;
  refresh();
}
function rateSeries(name, accepted) {
  const now = Date.now();
  const h = history.get(name) || [];
  h.push({ t: now, accepted });
  while (h.length > HISTORY + 1) h.shift();
  history.set(name, h);
  const rates = [];
  for (let i = 1; i < h.length; i++) rates.push(Math.max(0, (h[i].accepted - h[i-1].accepted) / ((h[i].t - h[i-1].t) / 1000)));
  return rates;
}
function spark(rates) {
  // The scale: the top line is the busiest second shown, the bottom is 0; the span is the last minute.
  const max = Math.max(1, ...rates);
  const step = 160 / Math.max(rates.length - 1, 1);
  const pts = rates.map((r, i) => (i * step).toFixed(1) + ',' + (34 - r / max * 32).toFixed(1)).join(' ');
  return '<div class="spark"><div class="scale"><span class="scale-max">' + max.toFixed(max < 10 ? 1 : 0) + '/s</span><span class="scale-min">0/s</span></div>' +
    '<svg viewBox="0 0 160 36" preserveAspectRatio="none"><line x1="0" y1="2" x2="160" y2="2"/><line x1="0" y1="34" x2="160" y2="34"/>' +
    (rates.length > 1 ? '<polyline points="' + pts + '"/>' : '') + '</svg></div>';
}
const REFUSALS = [['refusedLimit','max_connections'],['refusedDescriptors','descriptors'],['refusedQueueFull','queue full'],['refusedQueueTimeout','queue timeout'],
  ['refusedNoBackend','no backend'],['connectFailed','connect failed'],['refusedProxy','PROXY header'],['refusedSourceConnections','per-source connections'],
  ['refusedSourceRate','per-source rate'],['refusedDenied','denied']];
function card(s) {
  // With workers, s.workers lists each worker's open sessions (totals are summed by the primary).
  const rates = rateSeries(s.name, s.counters.accepted);
  const rate = rates.length ? rates[rates.length - 1] : 0;
  const sum = (f) => s.backends.reduce((n, b) => n + f(b), 0);
  const refused = REFUSALS.map(([k, label]) => [label, s.counters[k] || 0]);
  const refusedTotal = refused.reduce((n, r) => n + r[1], 0);
  const svc = esc(s.name);
  const rows = s.backends.map((b) => {
    const a = esc(b.address);
    const btn = (action, label) => '<button type="button" data-action="' + action + '" data-service="' + svc + '" data-backend="' + a + '">' + label + '</button>';
    const named = b.name && b.name !== b.address ? '<b class="name">' + esc(b.name) + '</b> ' : '';
    return '<tr data-backend="' + a + '"><td data-label="backend">' + named + a + (b.backup ? ' <span class="reason">backup</span>' : '') + '</td>' +
    '<td data-label="state"><span><span class="state ' + b.state + '">' + b.state + '</span>' + (b.reason ? '<div class="reason">' + esc(b.reason) + '</div>' : '') +
      (b.checksPaused ? '<div class="reason">checks paused</div>' : '') + '</span></td>' +
    '<td data-label="weight" class="w">' + b.weight + '</td><td data-label="active">' + b.active + '</td><td data-label="sessions">' + b.sessionsTotal + '</td>' +
    '<td data-label="bytes in / out">' + bytes(b.bytesFromBackend) + ' / ' + bytes(b.bytesToBackend) + '</td>' +
    '<td data-label="dial failures" class="df">' + b.dialFailuresTotal + '</td>' +
    '<td data-label="last check">' + (b.lastCheck ? esc(b.lastCheck.detail) + ' (' + b.lastCheck.latencyMs + ' ms)' : '–') + '</td>' +
    '<td data-label="actions"><span class="actions">' + btn('drain', 'Drain') + btn('enable', 'Enable') + btn('disable', 'Disable') +
      '<input class="weight" type="number" min="0" max="1000000" step="1" aria-label="weight of ' + a + '" value="' + b.weight + '">' + btn('weight', 'Set weight') + '</span></td></tr>';
  }).join('');
  return '<section class="card" data-service="' + svc + '">' +
    '<h2><span>' + svc + '</span>' + spark(rates) + '</h2>' +
    '<div class="meta">' + esc(s.listen) + ' · ' + esc(s.balance) + ' · health ' + esc(s.health) + '</div>' +
    '<div class="stats"><span><b>' + s.activeSessions + '</b>active</span><span><b class="rate">' + rate.toFixed(1) + '</b>sessions/s</span>' +
    '<span><b>' + s.counters.accepted + '</b>accepted</span><span><b class="refused">' + refusedTotal + '</b>refused</span>' +
    '<span><b class="queue">' + (s.queue ? s.queue.length : 0) + '</b>queued' + (s.queue && s.queue.length ? ' (' + (s.queue.longestWaitMs / 1000).toFixed(1) + ' s)' : '') + '</span>' +
    '<span><b class="bytes">' + bytes(sum((b) => b.bytesFromBackend)) + ' / ' + bytes(sum((b) => b.bytesToBackend)) + '</b>bytes in / out</span>' +
    '<span><b class="dial-failures">' + sum((b) => b.dialFailuresTotal) + '</b>dial failures</span>' +
    '<span><b>' + s.pool.hits + ' / ' + s.pool.misses + '</b>pool hit / miss</span></div>' +
    (refusedTotal ? '<div class="meta refusals">refused: ' + refused.filter((r) => r[1] > 0).map((r) => '<span data-cause="' + esc(r[0]) + '">' + esc(r[0]) + ' ' + r[1] + '</span>').join(' · ') + '</div>' : '') +
    (s.discovery ? '<div class="meta discovery">discovery ' + esc(s.discovery.kind) + ' ' + esc(s.discovery.target) + ' · ' + s.discovery.backends + ' found' +
      (s.discovery.leaving ? ' · ' + s.discovery.leaving + ' leaving' : '') +
      (s.discovery.failing ? ' · <span class="reason failing">failing (' + s.discovery.failing + '): ' + esc(s.discovery.lastError) + ' — keeping the last list</span>' : '') + '</div>' : '') +
    (s.workers ? '<div class="meta workers">active per worker: ' + s.workers.map((w) => '<span data-worker="' + w.worker + '">#' + w.worker + ' ' + w.activeSessions + '</span>').join(' · ') + '</div>' : '') +
    '<table><thead><tr><th>backend</th><th>state</th><th>weight</th><th>active</th><th>sessions</th><th>bytes in / out</th><th>dial failures</th><th>last check</th><th>actions</th></tr></thead><tbody>' + rows + '</tbody></table>' +
    '<form class="add" data-service="' + svc + '"><input name="address" placeholder="host:port" aria-label="new backend address" required>' +
    '<input name="weight" class="weight" type="number" min="0" max="1000000" step="1" value="1" aria-label="new backend weight"><button type="submit">Add backend</button></form></section>';
}
$('cards').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-action]');
  if (!b) return;
  const base = '/api/services/' + encodeURIComponent(b.dataset.service) + '/backends/' + encodeURIComponent(b.dataset.backend) + '/';
  if (b.dataset.action === 'weight') {
    const w = Number(b.closest('tr').querySelector('input.weight').value);
    act('PUT', base + 'weight', { weight: w });
  } else act('POST', base + b.dataset.action);
});
$('cards').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = e.target;
  const address = f.elements.address.value.trim();
  act('POST', '/api/services/' + encodeURIComponent(f.dataset.service) + '/backends/' + encodeURIComponent(address), { weight: Number(f.elements.weight.value) });
});
async function get(path) {
  const r = await fetch(path, { cache: 'no-store', headers: headers(false) });
  if (r.status === 401) { askToken('reading needs the admin token'); throw new Error('token needed'); }
  return r.json();
}
async function refresh() {
  try {
    const [data, info] = await Promise.all([get('/api/services'), get('/api/info')]);
    $('about').textContent = 'v' + info.version + ' · up ' + ago(info.uptimeSeconds) + ' · pid ' + info.pid + (info.workers > 1 ? ' · ' + info.workers + ' workers' : '');
    // Someone typing in a field keeps it: the cards are redrawn on the next tick after.
    const typing = document.activeElement && document.activeElement.tagName === 'INPUT' && $('cards').contains(document.activeElement);
    if (!typing) $('cards').innerHTML = data.services.map(card).join('');
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    if (!pending && !$('login').classList.contains('open')) $('error').textContent = Date.now() - shown.at < 5000 ? shown.text : '';
  } catch (e) {
    if (e.message !== 'token needed') $('error').textContent = 'cannot reach the balancer: ' + e.message;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
