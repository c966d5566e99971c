// The status page's script: polls the node's JSON API, draws the mesh and
// the recent history as small SVGs, browses keys and follows /v1/watch.
// No framework, no build step. Everything the node sends (keys, values, IDs)
// is put into the page as text, never as markup: a key is hostile input.
// /v1/watch is read with fetch() streaming (not EventSource) so the token
// travels in the Authorization header, never in a URL.
'use strict';

const TOKEN_KEY = 'syncmesh.token';
const POLL_MS = 2000;
const MAX_EVENTS = 200;
const SVG_NS = 'http://www.w3.org/2000/svg';

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  needToken: false,
  samples: [],        // /v1/history samples, oldest first
  lastSample: 0,      // time of the newest sample we have (ms)
  prefix: '',
  cursor: null,
  keyRows: new Map(), // key text -> <tr>
  watch: null,        // AbortController of the running stream
  lastEventId: '',
  pollTimer: null,
};

const $ = (id) => document.getElementById(id);

/// Thrown when the node answered 401: the token prompt is showing.
class NeedToken extends Error {}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.token) h['Authorization'] = 'Bearer ' + state.token;
  return h;
}

async function getJSON(path) {
  const res = await fetch(path, { headers: headers(), cache: 'no-store' });
  if (res.status === 401 || res.status === 403) {
    askForToken(res.status === 403 ? 'That token may not read this node.' : '');
    throw new NeedToken();
  }
  if (!res.ok) {
    let why = res.status + ' ' + res.statusText;
    try { const body = await res.json(); if (body.message) why += ': ' + body.message; } catch (e) { /* not JSON */ }
    throw new Error(path + ': ' + why);
  }
  return res.json();
}

// -- token -------------------------------------------------------------------

function askForToken(why) {
  state.needToken = true;
  stopWatch();
  const form = $('token-form');
  form.hidden = false;
  if (why) showProblem(why);
  $('token-input').focus();
}

function onTokenSubmit(ev) {
  ev.preventDefault();
  state.token = $('token-input').value.trim();
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $('token-input').value = '';
  $('token-form').hidden = true;
  state.needToken = false;
  showProblem('');
  start();
}

function showProblem(text) {
  const p = $('problem');
  p.textContent = text;
  p.hidden = !text;
}

// -- formatting ----------------------------------------------------------------

function shortId(hex) { return hex ? hex.slice(0, 8) : '?'; }

function duration(seconds) {
  seconds = Math.round(Math.abs(seconds));
  if (seconds < 60) return seconds + ' s';
  if (seconds < 3600) return Math.round(seconds / 60) + ' min';
  if (seconds < 86400) return (seconds / 3600).toFixed(1) + ' h';
  return (seconds / 86400).toFixed(1) + ' d';
}

function relative(ms) {
  const delta = (ms - Date.now()) / 1000;
  return delta >= 0 ? 'in ' + duration(delta) : duration(delta) + ' ago';
}

function localTime(ms) {
  return new Date(ms).toLocaleString();
}

function keyText(item) {
  if (typeof item.key === 'string') return item.key;
  if (typeof item.key_base64 === 'string') return 'base64:' + item.key_base64;
  return '?';
}

function preview(value, max) {
  let text;
  try { text = typeof value === 'string' ? value : JSON.stringify(value); } catch (e) { text = String(value); }
  if (text === undefined) text = '';
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

function bytes(n) {
  if (n < 1024) return n.toFixed(0) + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1048576).toFixed(1) + ' MiB';
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// -- node, peers, mesh -----------------------------------------------------------

async function refreshStatus() {
  const st = await getJSON('/v1/status');
  $('node-id').textContent = st.node_id;
  $('node-address').textContent = st.listen || '–';
  $('node-leasing').textContent = st.leasing ? 'on' : 'off';
  $('node-uptime').textContent = duration(st.uptime_s || 0);
  $('stat-keys').textContent = st.keys;
  $('stat-peers').textContent = st.peers;
  document.title = 'syncmesh ' + shortId(st.node_id);
}

async function refreshPeers() {
  const { peers } = await getJSON('/v1/peers');
  const body = $('peers').tBodies[0];
  body.replaceChildren();
  for (const p of peers) {
    const tr = el('tr');
    const id = el('td', shortId(p.node_id), 'mono');
    id.title = p.node_id;
    tr.append(id, el('td', p.address, 'mono'), el('td', p.direction),
      el('td', p.rtt_us ? (p.rtt_us / 1000).toFixed(2) + ' ms' : '–'),
      el('td', p.connected_since ? relative(p.connected_since) : '–'));
    body.append(tr);
  }
}

async function refreshMesh() {
  const mesh = await getJSON('/v1/mesh');
  const view = $('mesh');
  view.replaceChildren();
  const nodes = mesh.nodes.slice(0, 64);
  const w = 320, h = 240, cx = w / 2, cy = h / 2, r = Math.min(w, h) / 2 - 30;
  const pos = new Map();
  nodes.forEach((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(nodes.length, 1);
    pos.set(n.id, nodes.length === 1 ? [cx, cy] : [cx + r * Math.cos(a), cy + r * Math.sin(a)]);
  });
  const direct = new Set();
  for (const link of mesh.links) {
    const { a, b } = link;
    if (a === mesh.self) direct.add(b);
    if (b === mesh.self) direct.add(a);
    if (!pos.has(a) || !pos.has(b)) continue;
    const [x1, y1] = pos.get(a), [x2, y2] = pos.get(b);
    // Announced links are hearsay (peer exchange): dashed, with their age.
    const line = svg('line', { x1, y1, x2, y2, class: link.direct ? 'link' : 'link announced' });
    if (!link.direct && link.heard)
      line.append(svg('title', {}, 'announced ' + relative(link.heard)));
    view.append(line);
  }
  for (const n of nodes) {
    const [x, y] = pos.get(n.id);
    const cls = 'node' + (n.id === mesh.self ? ' self' : '') + (direct.has(n.id) ? ' peer' : '');
    const g = svg('g', { 'data-id': n.id });
    const c = svg('circle', { cx: x, cy: y, r: 9, class: cls });
    c.append(svg('title', {}, n.id + (n.address ? ' ' + n.address : '')));
    g.append(c, svg('text', { x: x + 12, y: y + 4 }, shortId(n.id)));
    view.append(g);
  }
  if (mesh.nodes.length > nodes.length)
    view.append(svg('text', { x: 4, y: h - 4 }, '+' + (mesh.nodes.length - nodes.length) + ' more'));
}

// -- history chart -------------------------------------------------------------------

async function refreshHistory() {
  const hist = await getJSON('/v1/history' + (state.lastSample ? '?since=' + state.lastSample : ''));
  for (const s of hist.samples) state.samples.push(s);
  if (state.samples.length) state.lastSample = state.samples[state.samples.length - 1].t;
  const keep = hist.capacity || 300;
  if (state.samples.length > keep) state.samples.splice(0, state.samples.length - keep);
  const last = state.samples[state.samples.length - 1];
  if (last) $('stat-tombstones').textContent = last.tombstones;
  drawChart(hist.interval_ms || 1000);
}

function drawChart(intervalMs) {
  const view = $('chart');
  view.replaceChildren();
  const w = 480, h = 200, pad = 24;
  const samples = state.samples;
  view.append(svg('line', { x1: pad, y1: h - pad, x2: w - 4, y2: h - pad, class: 'axis' }));
  if (samples.length < 2) {
    view.append(svg('text', { x: pad, y: h / 2 }, 'collecting samples…'));
    return;
  }
  const perSec = 1000 / intervalMs;
  const series = [
    ['writes', samples.map((s) => (s.local_writes + s.remote_writes) * perSec), (v) => v.toFixed(0) + '/s'],
    ['bytes', samples.map((s) => (s.bytes_in + s.bytes_out) * perSec), (v) => bytes(v) + '/s'],
    ['lag', samples.map((s) => s.lag_max_s), (v) => v.toFixed(3) + ' s'],
  ];
  const t0 = samples[0].t, t1 = samples[samples.length - 1].t;
  const x = (t) => pad + ((w - pad - 4) * (t - t0)) / Math.max(t1 - t0, 1);
  series.forEach(([name, values, fmt], i) => {
    const max = Math.max(...values, 0);
    const y = (v) => h - pad - (max > 0 ? ((h - 2 * pad) * v) / max : 0);
    const points = values.map((v, j) => x(samples[j].t).toFixed(1) + ',' + y(v).toFixed(1)).join(' ');
    view.append(svg('polyline', { points, class: 'series ' + name }));
    view.append(svg('text', { x: pad + i * 150, y: 12, class: name }, name + ' max ' + fmt(max)));
  });
  view.append(svg('text', { x: pad, y: h - 8 }, '-' + duration((t1 - t0) / 1000)));
  view.append(svg('text', { x: w - 30, y: h - 8 }, 'now'));
  const last = samples[samples.length - 1];
  $('chart-now').textContent = 'last ' + (intervalMs / 1000) + ' s: ' + last.local_writes + ' local, ' +
    last.remote_writes + ' remote writes; in ' + bytes(last.bytes_in) + ', out ' + bytes(last.bytes_out) +
    '; lag avg ' + last.lag_avg_s.toFixed(3) + ' s';
}

// -- key browser -----------------------------------------------------------------------

function keyRow(item) {
  const tr = el('tr');
  const key = keyText(item);
  tr.dataset.key = key;
  const k = el('td', key, 'mono');
  k.title = key;
  const v = el('td', preview(item.value, 80), 'mono');
  v.title = preview(item.value, 2000);
  const o = el('td', shortId(item.owner), 'mono');
  o.title = item.owner || '';
  const lease = item.lease_end ? localTime(item.lease_end) + ' (' + relative(item.lease_end) + ')' : '–';
  tr.append(k, v, o, el('td', lease));
  return tr;
}

async function loadKeys(more) {
  if (!more) {
    state.prefix = $('key-prefix').value;
    state.cursor = null;
    state.keyRows.clear();
    $('keys').tBodies[0].replaceChildren();
  }
  let path = '/v1/kv?limit=50&prefix=' + encodeURIComponent(state.prefix);
  if (more && state.cursor) path += '&cursor=' + encodeURIComponent(state.cursor);
  const page = await getJSON(path);
  const body = $('keys').tBodies[0];
  for (const item of page.items) {
    const row = keyRow(item);
    state.keyRows.set(row.dataset.key, row);
    body.append(row);
  }
  state.cursor = page.cursor || null;
  $('key-more').hidden = !state.cursor;
}

/// A watched update or delete, reflected in the key browser when it shows
/// the key's prefix (new keys go on top until the next search).
function applyToKeys(kind, data) {
  const key = keyText(data);
  if (!key.startsWith(state.prefix)) return;
  const old = state.keyRows.get(key);
  if (kind === 'delete') {
    if (old) { old.remove(); state.keyRows.delete(key); }
    return;
  }
  const row = keyRow(data);
  state.keyRows.set(key, row);
  if (old) old.replaceWith(row); else $('keys').tBodies[0].prepend(row);
}

// -- live events --------------------------------------------------------------------------

function addEvent(kind, text, cls) {
  const list = $('events');
  const li = el('li', undefined, cls);
  li.dataset.kind = kind;
  li.append(el('time', new Date().toLocaleTimeString()), el('span', kind, 'kind'), el('span', text));
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}

function onEvent(kind, dataText) {
  let data = null;
  try { data = JSON.parse(dataText); } catch (e) { /* shown raw */ }
  if (kind === 'overflow') {
    // The node dropped this stream: events were lost. Say so, re-list the
    // keys (the browser may be stale) and start a fresh stream.
    addEvent('overflow', 'the node could not keep up with this page and ended the stream; events were lost ' +
      (data ? preview(data, 200) : dataText) + ' — keys re-listed', 'overflow');
    state.lastEventId = '';
    loadKeys(false).catch(report);
    return;
  }
  if (!data) { addEvent(kind, dataText); return; }
  if (kind === 'update' || kind === 'delete') {
    const text = kind === 'update' ? keyText(data) + ' = ' + preview(data.value, 60) + ' (by ' + shortId(data.owner) + ')'
      : keyText(data);
    addEvent(kind, text);
    applyToKeys(kind, data);
  } else if (kind === 'lease_lost') {
    addEvent(kind, keyText(data) + ' now owned by ' + shortId(data.new_owner));
  } else if (kind === 'message') {
    addEvent(kind, 'from ' + shortId(data.sender) + ': ' + preview(data.packets, 60));
  } else {
    addEvent(kind, preview(data, 80));
  }
}

/// Splits a Server-Sent Events byte stream into events (WHATWG rules:
/// fields per line, a blank line dispatches, ':' starts a comment).
function sseParser(dispatch) {
  let buffer = '';
  let event = '', data = [], id = null;
  return (chunk) => {
    buffer += chunk;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (id !== null) state.lastEventId = id;
        if (data.length) dispatch(event || 'message', data.join('\n'));
        event = ''; data = []; id = null;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
  };
}

function stopWatch() {
  if (state.watch) state.watch.abort();
  state.watch = null;
}

async function watch() {
  stopWatch();
  const ctrl = new AbortController();
  state.watch = ctrl;
  const h = {};
  if (state.lastEventId) h['Last-Event-ID'] = state.lastEventId;
  $('watch-state').textContent = 'connecting…';
  try {
    const res = await fetch('/v1/watch?prefix=', { headers: headers(h), signal: ctrl.signal, cache: 'no-store' });
    if (res.status === 401 || res.status === 403) { askForToken(''); return; }
    if (res.status === 410) {
      // The events since our last id are gone (or the node restarted):
      // re-list the keys and watch again from now on, without the id.
      addEvent('relist', 'the node no longer has the events since ' + state.lastEventId +
        ' — keys re-listed', 'overflow');
      state.lastEventId = '';
      loadKeys(false).catch(report);
      if (state.watch === ctrl) watch();
      return;
    }
    if (!res.ok || !res.body) throw new Error('/v1/watch: ' + res.status);
    $('watch-state').textContent = 'live';
    const feed = sseParser(onEvent);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      feed(decoder.decode(value, { stream: true }));
    }
    $('watch-state').textContent = 'stream ended, reconnecting…';
  } catch (e) {
    if (ctrl.signal.aborted) return;
    $('watch-state').textContent = 'disconnected (' + e.message + '), retrying…';
  }
  if (state.watch === ctrl && !state.needToken)
    setTimeout(() => { if (state.watch === ctrl) watch(); }, 2000);
}

// -- main loop --------------------------------------------------------------------------------

function report(e) {
  if (e instanceof NeedToken) return;
  showProblem(e.message || String(e));
}

async function poll() {
  if (state.needToken) return;
  try {
    await Promise.all([refreshStatus(), refreshPeers(), refreshMesh(), refreshHistory()]);
    if (!state.needToken) showProblem('');
  } catch (e) {
    report(e);
  }
}

function start() {
  clearInterval(state.pollTimer);
  poll().then(() => {
    if (state.needToken) return;
    loadKeys(false).catch(report);
    watch();
  });
  state.pollTimer = setInterval(poll, POLL_MS);
}

document.addEventListener('DOMContentLoaded', () => {
  $('token-form').addEventListener('submit', onTokenSubmit);
  $('key-search').addEventListener('submit', (ev) => { ev.preventDefault(); loadKeys(false).catch(report); });
  $('key-more').addEventListener('click', () => loadKeys(true).catch(report));
  start();
});
