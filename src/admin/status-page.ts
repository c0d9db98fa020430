/**
 * The status page: plain HTML, CSS and JS served by the admin server, with
 * no build step and nothing fetched from elsewhere. It polls /api/services
 * every second and draws one card per service, a backend table with state
 * colours, a sessions/s sparkline, and with workers each one's open sessions.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>blitz-lb status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --bg:#0f1419; --card:#182029; --text:#e6e6e6; --dim:#8b98a5; --up:#2ea043; --down:#da3633; --drain:#d29922; --off:#6e7681; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--text); }
  header { padding:14px 20px; display:flex; gap:16px; align-items:baseline; border-bottom:1px solid #273340; }
  header h1 { font-size:18px; margin:0; }
  #updated { color:var(--dim); font-size:12px; }
  main { padding:16px 20px; display:grid; gap:16px; grid-template-columns:repeat(auto-fit, minmax(600px, 1fr)); }
  .card { background:var(--card); border-radius:8px; padding:14px 16px; }
  .card h2 { margin:0 0 4px; font-size:16px; display:flex; justify-content:space-between; }
  .meta { color:var(--dim); font-size:12px; margin-bottom:8px; }
  .stats { display:flex; gap:18px; margin:6px 0 10px; font-size:13px; }
  .stats b { font-size:16px; display:block; }
  table { width:100%; border-collapse:collapse; font-size:13px; }
  th, td { text-align:left; padding:5px 6px; border-bottom:1px solid #273340; }
  th { color:var(--dim); font-weight:500; }
  .state { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; }
  .state.up { background:var(--up); } .state.down { background:var(--down); }
  .state.draining { background:var(--drain); } .state.disabled { background:var(--off); }
  .reason { color:var(--dim); font-size:11px; }
  svg.spark { width:160px; height:32px; background:#121a22; border-radius:4px; }
  svg.spark polyline { fill:none; stroke:#58a6ff; stroke-width:1.5; }
  #error { color:var(--down); }
</style>
</head>
<body>
<header><h1>blitz-lb</h1><span id="updated">loading…</span><span id="error"></span></header>
<main id="cards"></main>
<script>
const HISTORY = 60;
const history = new Map(); // service -> [{t, accepted}]
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c])); }
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
  if (rates.length < 2) return '<svg class="spark"></svg>';
  const max = Math.max(1, ...rates);
  const step = 160 / Math.max(rates.length - 1, 1);
  const pts = rates.map((r, i) => (i * step).toFixed(1) + ',' + (30 - r / max * 28).toFixed(1)).join(' ');
  return '<svg class="spark" viewBox="0 0 160 32"><polyline points="' + pts + '"/></svg>';
}
function card(s) {
  // With workers, s.workers lists each worker's open sessions (totals are summed by the primary).
  const rates = rateSeries(s.name, s.counters.accepted);
  const rate = rates.length ? rates[rates.length - 1] : 0;
  const rows = s.backends.map((b) =>
    '<tr data-backend="' + esc(b.address) + '"><td>' + esc(b.address) + (b.backup ? ' <span class="reason">backup</span>' : '') + '</td>' +
    '<td><span class="state ' + b.state + '">' + b.state + '</span>' + (b.reason ? '<div class="reason">' + esc(b.reason) + '</div>' : '') + '</td>' +
    '<td>' + b.weight + '</td><td>' + b.active + '</td><td>' + b.sessionsTotal + '</td><td>' + b.poolIdle + '</td>' +
    '<td>' + (b.lastCheck ? esc(b.lastCheck.detail) + ' (' + b.lastCheck.latencyMs + ' ms)' : '–') + '</td></tr>').join('');
  return '<section class="card" data-service="' + esc(s.name) + '">' +
    '<h2><span>' + esc(s.name) + '</span>' + spark(rates) + '</h2>' +
    '<div class="meta">' + esc(s.listen) + ' · ' + esc(s.balance) + ' · health ' + esc(s.health) + '</div>' +
    '<div class="stats"><span><b>' + s.activeSessions + '</b>active</span><span><b class="rate">' + rate.toFixed(1) + '</b>sessions/s</span>' +
    '<span><b>' + s.counters.accepted + '</b>accepted</span><span><b>' + (s.counters.refusedLimit + s.counters.refusedNoBackend + s.counters.connectFailed + s.counters.refusedQueueFull + s.counters.refusedQueueTimeout) + '</b>refused</span>' +
    '<span><b>' + s.pool.hits + ' / ' + s.pool.misses + '</b>pool hit / miss</span></div>' +
    (s.discovery ? '<div class="meta discovery">discovery ' + esc(s.discovery.kind) + ' ' + esc(s.discovery.target) + ' · ' + s.discovery.backends + ' found' +
      (s.discovery.leaving ? ' · ' + s.discovery.leaving + ' leaving' : '') +
      (s.discovery.failing ? ' · <span class="reason failing">failing (' + s.discovery.failing + '): ' + esc(s.discovery.lastError) + ' — keeping the last list</span>' : '') + '</div>' : '') +
    (s.workers ? '<div class="meta workers">active per worker: ' + s.workers.map((w) => '<span data-worker="' + w.worker + '">#' + w.worker + ' ' + w.activeSessions + '</span>').join(' · ') + '</div>' : '') +
    '<table><thead><tr><th>backend</th><th>state</th><th>weight</th><th>active</th><th>sessions</th><th>pool</th><th>last check</th></tr></thead><tbody>' + rows + '</tbody></table></section>';
}
async function refresh() {
  try {
    const r = await fetch('/api/services', { cache: 'no-store' });
    const data = await r.json();
    document.getElementById('cards').innerHTML = data.services.map(card).join('');
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    document.getElementById('error').textContent = '';
  } catch (e) {
    document.getElementById('error').textContent = 'cannot reach the balancer: ' + e.message;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
