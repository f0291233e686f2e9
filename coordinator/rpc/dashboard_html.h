// The dashboard page served at GET / by the REST server: one self-contained HTML document (inline
// CSS and JavaScript, no external assets) that reads the REST API of the same origin.
//
// It polls GET /v1/jobs every second and renders the jobs table; for the selected job (a click on
// a row, or the URL fragment #job=ID; default: the newest job) it shows the workers, leases,
// committed files and the event log, which it reads incrementally with
// GET /v1/jobs/{id}/events?after_seq=N. With a bearer token on the REST server, open the page as
// /?token=TOKEN: the page sends it as the Authorization header (only /v1/ is checked). label=k=v
// query parameters are passed on to /v1/jobs as a label selector.
//
// Stable hooks for tests: tr.job-row[data-job-id][data-phase] in tbody#jobs,
// section#job-detail[data-job-id], tr.worker-row[data-index][data-state] in tbody#workers (workers
// expected but not registered are tr.worker-missing), tr.lease-row in tbody#leases, tr.file-row in
// tbody#committed, tr.event-row[data-seq][data-type] in tbody#events, and body[data-ready] once the
// first poll has been answered.
#ifndef MXPORT_COORDINATOR_RPC_DASHBOARD_HTML_H_
#define MXPORT_COORDINATOR_RPC_DASHBOARD_HTML_H_

namespace mxport::coordinator::rpc {

inline constexpr char kDashboardHtml[] = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mxport coordinator</title>
<link rel="icon" href="data:,">
<style>
  :root {
    --bg: #f4f6f9; --card: #ffffff; --text: #1d2433; --muted: #6b7485; --line: #e3e7ee;
    --head: #131a2a; --head-text: #e8ecf4; --accent: #2f6fed; --hover: #f0f4fc;
    --selected: #e6eefd; --track: #e7ebf1;
    --grey: #6b7485; --blue: #2f6fed; --indigo: #5b4fd6; --violet: #8e44c9; --green: #1f9254;
    --red: #d03a3a; --amber: #c27a05;
    --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
  }
  @media (prefers-color-scheme: dark) {
    :root {
      --bg: #0f141d; --card: #171e2b; --text: #dce3ee; --muted: #8d97a8; --line: #263042;
      --head: #0a0e15; --hover: #1d2636; --selected: #1f2d48; --track: #263042;
    }
  }
  * { box-sizing: border-box; }
  body {
    margin: 0; background: var(--bg); color: var(--text);
    font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  }
  header {
    position: sticky; top: 0; z-index: 2; display: flex; align-items: center; gap: 18px;
    padding: 10px 24px; background: var(--head); color: var(--head-text);
  }
  header h1 { margin: 0; font-size: 16px; font-weight: 600; letter-spacing: 0.2px; }
  header h1 span { color: #8fb0ff; }
  #summary { color: #aab4c6; flex: 1; }
  #status { display: flex; align-items: center; gap: 7px; color: #aab4c6; }
  #status .dot { width: 9px; height: 9px; border-radius: 50%; background: #6b7485; }
  #status.live .dot { background: #35c46f; box-shadow: 0 0 0 3px rgba(53, 196, 111, 0.25); }
  #status.down .dot { background: #e25555; box-shadow: 0 0 0 3px rgba(226, 85, 85, 0.25); }
  main { padding: 16px 24px 32px; display: grid; gap: 16px; }
  .card {
    background: var(--card); border: 1px solid var(--line); border-radius: 8px;
    box-shadow: 0 1px 2px rgba(16, 24, 40, 0.05); padding: 14px 16px; min-width: 0;
  }
  h2 { margin: 0; font-size: 15px; font-weight: 600; }
  h3 {
    margin: 18px 0 6px; font-size: 12px; font-weight: 600; text-transform: uppercase;
    letter-spacing: 0.6px; color: var(--muted);
  }
  h3 .count { text-transform: none; letter-spacing: 0; font-weight: 400; margin-left: 6px; }
  .card > h2 + table, .card > h2 + .empty { margin-top: 10px; }
  #error {
    background: #fdecec; color: #8f1f1f; border: 1px solid #f3c4c4; border-radius: 8px;
    padding: 10px 14px; font-weight: 500;
  }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th {
    text-align: left; font-weight: 600; font-size: 11px; text-transform: uppercase;
    letter-spacing: 0.4px; color: var(--muted); padding: 6px 10px;
    border-bottom: 1px solid var(--line); white-space: nowrap;
  }
  td { padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
  tbody tr:last-child td { border-bottom: none; }
  th.num, td.num { text-align: right; white-space: nowrap; }
  .mono { font-family: var(--mono); font-size: 12px; }
  .muted { color: var(--muted); }
  .nowrap { white-space: nowrap; }
  .empty { color: var(--muted); font-style: italic; margin: 6px 10px; }
  tr.job-row { cursor: pointer; }
  tr.job-row:hover td { background: var(--hover); }
  tr.job-row.selected td { background: var(--selected); }
  tr.job-row.selected td:first-child { box-shadow: inset 3px 0 0 var(--accent); }
  tr.job-row:focus { outline: 2px solid var(--accent); outline-offset: -2px; }
  .job-id { max-width: 340px; }
  .job-id .mono { font-weight: 600; }
  .job-message {
    font-size: 12px; color: var(--muted); overflow: hidden; text-overflow: ellipsis;
    white-space: nowrap;
  }
  .job-message.bad { color: var(--red); }
  .badge {
    display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 11px;
    font-weight: 600; letter-spacing: 0.3px; color: #fff; background: var(--grey);
    white-space: nowrap;
  }
  .c-grey { background: var(--grey); } .c-blue { background: var(--blue); }
  .c-indigo { background: var(--indigo); } .c-violet { background: var(--violet); }
  .c-green { background: var(--green); } .c-red { background: var(--red); }
  .c-amber { background: var(--amber); }
  .chip {
    display: inline-block; margin: 1px 4px 1px 0; padding: 0 6px; border-radius: 4px;
    background: var(--track); font-family: var(--mono); font-size: 11px; white-space: nowrap;
  }
  .progress { display: flex; align-items: center; gap: 8px; min-width: 170px; }
  .bar {
    flex: 1; height: 8px; border-radius: 4px; background: var(--track); overflow: hidden;
    min-width: 60px;
  }
  .bar > div { height: 100%; border-radius: 4px; background: var(--blue); transition: width 0.6s; }
  .bar.c-green > div { background: var(--green); } .bar.c-red > div { background: var(--red); }
  .bar.c-grey > div { background: var(--grey); } .bar.c-violet > div { background: var(--violet); }
  .bar.active > div {
    background-image: linear-gradient(45deg, rgba(255,255,255,.22) 25%, transparent 25%,
      transparent 50%, rgba(255,255,255,.22) 50%, rgba(255,255,255,.22) 75%, transparent 75%);
    background-size: 16px 16px; animation: stripes 1s linear infinite;
  }
  @keyframes stripes { to { background-position: 16px 0; } }
  .bar.small { height: 5px; min-width: 50px; max-width: 90px; }
  .pct { width: 46px; text-align: right; font-variant-numeric: tabular-nums; }
  .detail-head { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
  #detail-message { color: var(--muted); }
  #detail-message.bad { color: var(--red); }
  .spec {
    display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 4px 24px;
    margin: 10px 0 0; padding: 0;
  }
  .spec div { display: flex; gap: 8px; min-width: 0; }
  .spec div.wide { grid-column: span 2; }
  .spec dt { color: var(--muted); min-width: 92px; }
  .spec dd { margin: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .tiles { display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 10px; margin-top: 14px; }
  .tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
  .tile .label { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.4px; }
  .tile .value { font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
  .tile .sub { color: var(--muted); font-size: 12px; }
  .columns { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 24px; }
  tr.worker-missing td { color: var(--muted); font-style: italic; }
  .age-warn { color: var(--amber); font-weight: 600; }
  .age-bad { color: var(--red); font-weight: 600; }
  .log { max-height: 300px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
  .log th { position: sticky; top: 0; background: var(--card); }
  .log td { padding: 4px 10px; }
  .log td.msg { font-family: var(--mono); font-size: 12px; word-break: break-word; }
  .etype { font-family: var(--mono); font-size: 11px; font-weight: 600; padding: 0 6px; border-radius: 4px; }
  .etype.c-grey { background: var(--track); color: var(--text); }
  .etype.c-blue, .etype.c-green, .etype.c-red, .etype.c-amber { color: #fff; }
  @media (max-width: 1000px) {
    .columns { grid-template-columns: minmax(0, 1fr); }
    .tiles { grid-template-columns: repeat(2, minmax(0, 1fr)); }
    .spec div.wide { grid-column: auto; }
  }
</style>
</head>
<body>
<header>
  <h1>mxport <span>coordinator</span></h1>
  <div id="summary">loading&hellip;</div>
  <div id="status"><span class="dot"></span><span id="status-text">connecting</span></div>
</header>
<main>
  <div id="error" hidden></div>

  <section class="card" id="jobs-card">
    <h2>Jobs</h2>
    <table>
      <thead><tr>
        <th>job</th><th>phase</th><th class="num">gen</th><th class="num">restarts</th>
        <th>progress</th><th class="num">bytes</th><th class="num">throughput</th>
        <th class="num">ETA</th><th class="num">files</th><th>labels</th>
      </tr></thead>
      <tbody id="jobs"></tbody>
    </table>
    <p class="empty" id="jobs-empty" hidden>No jobs yet. Submit one with
      <span class="mono">mxport submit</span> or <span class="mono">POST /v1/jobs</span>.</p>
  </section>

  <section class="card" id="job-detail" hidden>
    <div class="detail-head">
      <h2 id="detail-title" class="mono"></h2>
      <span id="detail-phase" class="badge"></span>
      <span id="detail-message"></span>
    </div>
    <dl class="spec" id="detail-spec"></dl>
    <div class="tiles">
      <div class="tile"><div class="label">progress</div><div class="value" id="tile-progress"></div>
        <div class="sub" id="tile-bytes"></div></div>
      <div class="tile"><div class="label">throughput</div><div class="value" id="tile-rate"></div>
        <div class="sub">aggregate, all workers</div></div>
      <div class="tile"><div class="label">ETA</div><div class="value" id="tile-eta"></div>
        <div class="sub" id="tile-eta-sub"></div></div>
      <div class="tile"><div class="label">files committed</div>
        <div class="value" id="tile-files"></div><div class="sub">safetensors shards</div></div>
      <div class="tile"><div class="label">generation</div><div class="value" id="tile-gen"></div>
        <div class="sub" id="tile-restarts"></div></div>
    </div>

    <h3>Workers <span class="count" id="workers-count"></span></h3>
    <table>
      <thead><tr>
        <th class="num">#</th><th>coordinates</th><th>host</th><th>state</th>
        <th class="num">heartbeat</th><th>bytes</th><th class="num">rate</th><th>activity</th>
      </tr></thead>
      <tbody id="workers"></tbody>
    </table>
    <p class="empty" id="workers-empty" hidden>No worker has registered yet.</p>

    <div class="columns">
      <div>
        <h3>Leases <span class="count" id="leases-count"></span></h3>
        <table>
          <thead><tr><th>resource</th><th>holder</th><th class="num">token</th>
            <th>expires</th></tr></thead>
          <tbody id="leases"></tbody>
        </table>
        <p class="empty" id="leases-empty" hidden>No lease is held.</p>
      </div>
      <div>
        <h3>Committed files <span class="count" id="committed-count"></span></h3>
        <table>
          <thead><tr><th>path</th><th class="num">size</th><th class="num">token</th>
            <th class="num">gen</th><th>hash</th><th>committed</th></tr></thead>
          <tbody id="committed"></tbody>
        </table>
        <p class="empty" id="committed-empty" hidden>Nothing committed yet.</p>
      </div>
    </div>

    <h3>Event log <span class="count" id="events-count"></span></h3>
    <div class="log" id="events-log">
      <table>
        <thead><tr><th class="num">seq</th><th>time (UTC)</th><th class="num">gen</th>
          <th>type</th><th>message</th></tr></thead>
        <tbody id="events"></tbody>
      </table>
    </div>
  </section>
</main>
<script>
'use strict';

const POLL_MS = 1000;
const MAX_EVENTS = 5000;      // rows kept in the event log
const RATE_WINDOW_MS = 10000;  // window of the worker rates derived from heartbeats

const query = new URLSearchParams(location.search);
const token = query.get('token');
const labelSelector = query.getAll('label');

const PHASE_COLOUR = {
  PENDING: 'grey', SCANNING: 'indigo', PLANNED: 'indigo', TRANSFERRING: 'blue',
  FINALIZING: 'violet', SUCCEEDED: 'green', FAILED: 'red', CANCELLED: 'amber',
};
const BAR_COLOUR = { grey: 'grey', red: 'red', green: 'green', violet: 'violet', amber: 'grey' };
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
const WORKER_COLOUR = { HEALTHY: 'green', STUCK: 'amber', LOST: 'red', DONE: 'blue' };

const state = {
  jobs: [],
  selected: null,     // job id shown in the detail panel
  pinned: false,      // chosen by the user (else: follow the newest job)
  events: { jobId: null, after: 0 },
  samples: new Map(), // "job/index" -> [[time ms, bytes done], ...] for derived worker rates
};

const $ = id => document.getElementById(id);

// ---- formatting -------------------------------------------------------------------------------

const num = v => (v === undefined || v === null || v === '' ? 0 : Number(v));

function fmtBytes(n) {
  n = Number(n);
  if (!Number.isFinite(n) || n < 0) return '\u2014';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  const digits = i === 0 ? 0 : n < 10 ? 2 : n < 100 ? 1 : 0;
  return n.toFixed(digits) + ' ' + units[i];
}

const fmtRate = bps => (bps > 0 ? fmtBytes(bps) + '/s' : '\u2014');

function fmtDuration(s) {
  if (!Number.isFinite(s) || s < 0) return '\u2014';
  s = Math.round(s);
  const pad = v => String(v).padStart(2, '0');
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + pad(s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + pad(Math.floor(s / 60) % 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + pad(Math.floor(s / 3600) % 24) + 'h';
}

const fmtAge = s => (s < 10 ? s.toFixed(1) + ' s' : fmtDuration(s));

// RFC 3339 with up to nanoseconds -> milliseconds since the epoch (NaN if unset).
function parseTime(text) {
  if (!text) return NaN;
  return Date.parse(String(text).replace(/(\.\d{3})\d+/, '$1'));
}

// "2026-01-02T03:04:05.123456789Z" -> "03:04:05.123".
function clockTime(text) {
  const m = /T(\d\d:\d\d:\d\d)(\.\d{1,3})?/.exec(text || '');
  return m ? m[1] + (m[2] || '') : (text || '');
}

// Seconds left, or -1 where no estimate makes sense (not started, finished, no throughput yet).
function etaOf(job) {
  const phase = job.phase || '';
  const eta = num(job.eta_seconds);
  if (TERMINAL.has(phase) || phase === 'PENDING' || !(eta >= 0)) return -1;
  if (eta === 0 && num(job.bytes_done) < num(job.bytes_total)) return -1;
  return eta;
}

function percent(done, total) {
  return total > 0 ? Math.max(0, Math.min(100, (100 * done) / total)) : 0;
}

// ---- DOM helpers ------------------------------------------------------------------------------

// el('td', {class: 'num', title: 'x'}, 'text', node, ...)
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'style') node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const td = (attrs, ...children) => el('td', attrs, ...children);
const badge = (text, colour, extra) =>
  el('span', { class: 'badge c-' + colour + (extra ? ' ' + extra : '') }, text);

function progressBar(pct, colour, opts) {
  const o = opts || {};
  const bar = el('div', { class: 'bar c-' + colour + (o.small ? ' small' : '') + (o.active ? ' active' : '') },
                 el('div', { style: 'width:' + pct.toFixed(2) + '%' }));
  if (o.small) return bar;
  return el('div', { class: 'progress' }, bar, el('span', { class: 'pct' }, o.label));
}

function setText(id, text) {
  const node = $(id);
  if (node.textContent !== text) node.textContent = text;
}

// Makes tbody hold one row per item, in order, reusing the rows of the same key; fill(item)
// returns {attrs, cells}. Cells are replaced only where they changed, so a text selection or
// a running transition survives the once-a-second refresh.
function syncRows(tbody, items, keyOf, fill) {
  const old = new Map();
  for (const tr of tbody.rows) old.set(tr.dataset.key, tr);
  const rows = items.map(item => {
    const key = String(keyOf(item));
    const { attrs, cells } = fill(item);
    let tr = old.get(key);
    if (!tr) {
      tr = document.createElement('tr');
      tr.dataset.key = key;
    }
    for (const [name, value] of Object.entries(attrs)) {
      if (tr.getAttribute(name) !== String(value)) tr.setAttribute(name, value);
    }
    cells.forEach((cell, i) => {
      const current = tr.cells[i];
      if (!current) tr.append(cell);
      else if (current.outerHTML !== cell.outerHTML) current.replaceWith(cell);
    });
    while (tr.cells.length > cells.length) tr.lastElementChild.remove();
    return tr;
  });
  const same = rows.length === tbody.rows.length && rows.every((tr, i) => tbody.rows[i] === tr);
  if (!same) tbody.replaceChildren(...rows);
}

function showEmpty(id, empty) {
  const node = $(id);
  if (node.hidden === empty) node.hidden = !empty;
}

// ---- API --------------------------------------------------------------------------------------

async function api(path) {
  const headers = {};
  if (token) headers['Authorization'] = 'Bearer ' + token;
  const response = await fetch(path, { headers, cache: 'no-store' });
  const text = await response.text();
  if (!response.ok) {
    let message = text.trim();
    try {
      const body = JSON.parse(text);
      message = body.code + ': ' + body.message;
    } catch (e) { /* not JSON */ }
    if (response.status === 401) message += ' \u2014 open this page as /?token=<bearer token>';
    throw new Error('GET ' + path.split('?')[0] + ' failed (HTTP ' + response.status + '): ' + message);
  }
  return text;
}

// ---- jobs -------------------------------------------------------------------------------------

const jobId = job => (job.spec && job.spec.job_id) || '';

function jobFill(job) {
  const id = jobId(job);
  const phase = job.phase || 'JOB_PHASE_UNSPECIFIED';
  const colour = PHASE_COLOUR[phase] || 'grey';
  const done = num(job.bytes_done), total = num(job.bytes_total);
  const pct = phase === 'SUCCEEDED' ? 100 : percent(done, total);
  const active = !TERMINAL.has(phase) && phase !== 'PENDING';
  const eta = etaOf(job);
  const labels = Object.entries((job.spec && job.spec.labels) || {}).sort()
                   .map(([k, v]) => el('span', { class: 'chip' }, k + '=' + v));
  const spec = job.spec || {};
  return {
    attrs: {
      class: 'job-row' + (id === state.selected ? ' selected' : ''),
      'data-job-id': id, 'data-phase': phase, tabindex: '0',
    },
    cells: [
      td({ class: 'job-id', title: (spec.source_path || '') + ' \u2192 ' + (spec.output_path || '') },
         el('div', { class: 'mono' }, id),
         job.message ? el('div', { class: 'job-message' + (phase === 'FAILED' ? ' bad' : ''), title: job.message },
                          job.message) : null),
      td({ class: 'phase' }, badge(phase, colour)),
      td({ class: 'num generation' }, num(job.generation)),
      td({ class: 'num restarts' + (num(job.restarts) > 0 ? ' age-warn' : '') }, num(job.restarts)),
      td({ class: 'progress-cell' },
         progressBar(pct, BAR_COLOUR[colour] || 'blue',
                     { active: active && pct < 100, label: total > 0 || pct > 0 ? pct.toFixed(1) + '%' : '\u2014' })),
      td({ class: 'num bytes' }, fmtBytes(done) + ' / ' + (total > 0 ? fmtBytes(total) : '\u2014')),
      td({ class: 'num throughput' }, active ? fmtRate(num(job.bytes_per_second)) : '\u2014'),
      td({ class: 'num eta' }, fmtDuration(eta)),
      td({ class: 'num files' }, num(job.files_committed) + ' / ' + num(job.files_total)),
      td({ class: 'labels' }, labels.length ? labels : el('span', { class: 'muted' }, '\u2014')),
    ],
  };
}

function renderJobs() {
  // Newest first.
  const jobs = state.jobs.slice().sort((a, b) =>
    (parseTime(b.created_at) || 0) - (parseTime(a.created_at) || 0) || jobId(a).localeCompare(jobId(b)));
  syncRows($('jobs'), jobs, jobId, jobFill);
  showEmpty('jobs-empty', jobs.length === 0);

  const counts = {};
  for (const job of jobs) counts[job.phase] = (counts[job.phase] || 0) + 1;
  const parts = [jobs.length + (jobs.length === 1 ? ' job' : ' jobs')];
  for (const phase of Object.keys(PHASE_COLOUR)) {
    if (counts[phase]) parts.push(counts[phase] + ' ' + phase.toLowerCase());
  }
  if (labelSelector.length) parts.push('selector ' + labelSelector.join(', '));
  setText('summary', parts.join(' \u00b7 '));
  return jobs;
}

function select(id, pinned) {
  state.selected = id;
  state.pinned = pinned;
  if (pinned) history.replaceState(null, '', location.pathname + location.search + '#job=' + encodeURIComponent(id));
  for (const tr of $('jobs').rows) tr.classList.toggle('selected', tr.dataset.jobId === id);
  const job = state.jobs.find(j => jobId(j) === id);
  renderDetail(job);
  pollEvents().catch(showError);
}

// ---- the selected job -------------------------------------------------------------------------

function renderSpec(job) {
  const spec = job.spec || {};
  const rows = [
    ['source', spec.source_path], ['output', spec.output_path],
    ['architecture', spec.architecture || 'from the checkpoint'],
    ['workers', num(spec.workers_expected) + ' expected'],
    ['transport', spec.transport], ['quantization', spec.quantization],
    ['output dtype', spec.output_dtype || 'as stored'],
    ['max shard', fmtBytes(num(spec.max_shard_size))],
    ['created', (job.created_at || '').replace(/\.\d+/, '')],
    ['updated', (job.updated_at || '').replace(/\.\d+/, '')],
  ];
  const items = rows.map(([k, v], i) =>
    el('div', { class: i < 2 ? 'wide' : null }, el('dt', {}, k), el('dd', { class: 'mono', title: v || '' }, v || '\u2014')));
  const dl = $('detail-spec');
  const fresh = el('dl', {}, items).innerHTML;
  if (dl.innerHTML !== fresh) dl.replaceChildren(...items);
}

// Bytes per second of a worker: the server's figure, or else one derived from the bytes its
// heartbeats reported over the last RATE_WINDOW_MS.
function workerRate(job, w) {
  const key = jobId(job) + '/' + num(w.index);
  const now = Date.now(), bytes = num(w.bytes_done);
  let samples = state.samples.get(key) || [];
  if (samples.length && bytes < samples[samples.length - 1][1]) samples = [];  // restarted
  samples.push([now, bytes]);
  while (samples.length > 2 && now - samples[0][0] > RATE_WINDOW_MS) samples.shift();
  state.samples.set(key, samples);
  if (num(w.bytes_per_second) > 0) return num(w.bytes_per_second);
  const [t0, b0] = samples[0];
  return now - t0 >= 2000 ? ((bytes - b0) * 1000) / (now - t0) : 0;
}

function renderWorkers(job) {
  const expected = num(job.spec && job.spec.workers_expected);
  const workers = (job.workers || []).slice().sort((a, b) => num(a.index) - num(b.index));
  const rows = workers.map(w => ({ w }));
  const present = new Set(workers.map(w => num(w.index)));
  for (let i = 0; i < expected; i++) if (!present.has(i)) rows.push({ missing: i });
  rows.sort((a, b) => (a.w ? num(a.w.index) : a.missing) - (b.w ? num(b.w.index) : b.missing));

  syncRows($('workers'), rows, r => (r.w ? 'w' + num(r.w.index) : 'm' + r.missing), r => {
    if (!r.w) {
      return {
        attrs: { class: 'worker-missing', 'data-index': r.missing },
        cells: [td({ class: 'num' }, r.missing),
                td({ colspan: '7' }, 'not registered yet')],
      };
    }
    const w = r.w;
    const st = w.state || 'WORKER_STATE_UNSPECIFIED';
    const age = num(w.heartbeat_age_seconds);
    const done = num(w.bytes_done), total = num(w.bytes_total);
    const coords = (w.coordinates || []).map(c => el('span', { class: 'chip' }, c));
    const gpu = num(w.gpu) >= 0 ? 'gpu ' + num(w.gpu) : 'cpu';
    const ageClass = st === 'LOST' ? 'age-bad' : age > 10 ? 'age-warn' : '';
    return {
      attrs: { class: 'worker-row', 'data-index': num(w.index), 'data-state': st },
      cells: [
        td({ class: 'num index' }, num(w.index)),
        td({ class: 'coordinates' }, coords.length ? coords : el('span', { class: 'muted' }, '\u2014')),
        td({ class: 'host nowrap', title: w.address ? 'data plane ' + w.address : null },
           (w.host || '\u2014') + ' \u00b7 ' + gpu),
        td({ class: 'state' }, badge(st, WORKER_COLOUR[st] || 'grey')),
        td({ class: 'num heartbeat ' + ageClass }, fmtAge(age)),
        td({ class: 'bytes nowrap' },
           el('div', { class: 'progress' },
              progressBar(percent(done, total), st === 'DONE' ? 'green' : st === 'LOST' ? 'red' : 'blue', { small: true }),
              el('span', { class: 'mono' }, fmtBytes(done) + ' / ' + (total > 0 ? fmtBytes(total) : '\u2014')))),
        td({ class: 'num rate' }, fmtRate(workerRate(job, w))),
        td({ class: 'activity' }, w.activity || el('span', { class: 'muted' }, '\u2014')),
      ],
    };
  });
  showEmpty('workers-empty', rows.length === 0);
  setText('workers-count', workers.length + ' registered of ' + expected + ' expected');
}

function renderLeases(job) {
  const leases = (job.leases || []).slice().sort((a, b) => (a.resource || '').localeCompare(b.resource || ''));
  syncRows($('leases'), leases, l => l.resource, l => {
    const left = (parseTime(l.expires_at) - Date.now()) / 1000;
    return {
      attrs: { class: 'lease-row', 'data-resource': l.resource || '', 'data-holder': l.holder || '' },
      cells: [
        td({ class: 'mono resource' }, l.resource || '\u2014'),
        td({ class: 'holder' }, l.holder || '\u2014'),
        td({ class: 'num mono token' }, num(l.token)),
        td({ class: 'expires nowrap', title: l.expires_at || '' },
           Number.isFinite(left) ? (left >= 0 ? 'in ' + fmtAge(left) : 'expired') : '\u2014'),
      ],
    };
  });
  showEmpty('leases-empty', leases.length === 0);
  setText('leases-count', leases.length ? String(leases.length) : '');
}

function renderCommitted(job) {
  const files = (job.committed || []).slice().sort((a, b) => (a.path || '').localeCompare(b.path || ''));
  syncRows($('committed'), files, f => f.path, f => ({
    attrs: { class: 'file-row', 'data-path': f.path || '' },
    cells: [
      td({ class: 'mono path' }, f.path),
      td({ class: 'num size' }, fmtBytes(num(f.size))),
      td({ class: 'num mono token' }, num(f.token)),
      td({ class: 'num generation' }, num(f.generation)),
      td({ class: 'mono hash', title: f.content_hash || '' }, (f.content_hash || '').replace(/^[^:]*:/, '').slice(0, 12)),
      td({ class: 'nowrap committed-at', title: f.committed_at || '' }, clockTime(f.committed_at)),
    ],
  }));
  showEmpty('committed-empty', files.length === 0);
  setText('committed-count', num(job.files_committed) + ' of ' + num(job.files_total));
}

function renderDetail(job) {
  const panel = $('job-detail');
  if (!job) {
    panel.hidden = true;
    panel.removeAttribute('data-job-id');
    document.title = 'mxport coordinator';
    return;
  }
  const id = jobId(job);
  const phase = job.phase || 'JOB_PHASE_UNSPECIFIED';
  panel.hidden = false;
  if (panel.dataset.jobId !== id) panel.dataset.jobId = id;
  panel.dataset.phase = phase;
  setText('detail-title', id);
  const phaseBadge = $('detail-phase');
  phaseBadge.className = 'badge c-' + (PHASE_COLOUR[phase] || 'grey');
  setText('detail-phase', phase);
  setText('detail-message', job.message || '');
  $('detail-message').classList.toggle('bad', phase === 'FAILED');
  renderSpec(job);

  const done = num(job.bytes_done), total = num(job.bytes_total);
  const pct = phase === 'SUCCEEDED' ? 100 : percent(done, total);
  const active = !TERMINAL.has(phase) && phase !== 'PENDING';
  setText('tile-progress', total > 0 || pct > 0 ? pct.toFixed(1) + ' %' : '\u2014');
  setText('tile-bytes', fmtBytes(done) + ' of ' + (total > 0 ? fmtBytes(total) : 'unknown'));
  setText('tile-rate', active ? fmtRate(num(job.bytes_per_second)) : '\u2014');
  const eta = etaOf(job);
  setText('tile-eta', fmtDuration(eta));
  setText('tile-eta-sub', TERMINAL.has(phase) ? 'finished' : eta >= 0 ? 'remaining' : 'not known yet');
  setText('tile-files', num(job.files_committed) + ' / ' + num(job.files_total));
  setText('tile-gen', String(num(job.generation)));
  setText('tile-restarts', num(job.restarts) + (num(job.restarts) === 1 ? ' restart' : ' restarts'));

  renderWorkers(job);
  renderLeases(job);
  renderCommitted(job);
  document.title = (total > 0 ? pct.toFixed(0) + '% \u00b7 ' : '') + id + ' ' + phase.toLowerCase() +
                   ' \u2014 mxport';
}

// ---- events -----------------------------------------------------------------------------------

function eventColour(type) {
  if (/fail|lost|abort|revok|error|cancel/.test(type)) return 'red';
  if (/stuck|restart|expire|retry/.test(type)) return 'amber';
  if (/commit|done|succeed|finish/.test(type)) return 'green';
  if (/lease|assign|plan|scan|register|transfer|finaliz/.test(type)) return 'blue';
  return 'grey';
}

async function pollEvents() {
  const id = state.selected;
  const ev = state.events;
  if (!id) return;
  if (ev.jobId !== id) {
    ev.jobId = id;
    ev.after = 0;
    $('events').replaceChildren();
  }
  const text = await api('/v1/jobs/' + encodeURIComponent(id) + '/events?after_seq=' + ev.after);
  if (ev.jobId !== id) return;  // another job was selected meanwhile
  const log = $('events-log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  const rows = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const e = JSON.parse(line);
    const seq = num(e.seq);
    if (seq <= ev.after) continue;
    ev.after = seq;
    const type = e.type || '';
    rows.push(el('tr', { class: 'event-row', 'data-seq': seq, 'data-type': type },
      td({ class: 'num mono seq' }, seq),
      td({ class: 'mono nowrap time', title: e.time || '' }, clockTime(e.time)),
      td({ class: 'num generation' }, num(e.generation)),
      td({ class: 'type nowrap' }, el('span', { class: 'etype c-' + eventColour(type) }, type)),
      td({ class: 'msg' }, e.message || '')));
  }
  if (rows.length) {
    const tbody = $('events');
    tbody.append(...rows);
    while (tbody.rows.length > MAX_EVENTS) tbody.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }
  setText('events-count', ev.after ? 'up to #' + ev.after : 'none yet');
}

// ---- the loop ---------------------------------------------------------------------------------

function showError(e) {
  const box = $('error');
  box.textContent = String(e && e.message ? e.message : e);
  box.hidden = false;
  $('status').className = 'down';
  setText('status-text', 'disconnected');
}

async function refresh() {
  const path = '/v1/jobs' + (labelSelector.length
    ? '?' + labelSelector.map(s => 'label=' + encodeURIComponent(s)).join('&') : '');
  const body = JSON.parse(await api(path));
  state.jobs = body.jobs || [];
  const jobs = renderJobs();
  const ids = new Set(jobs.map(jobId));
  if (!state.selected || !ids.has(state.selected) || (!state.pinned && jobs.length && state.selected !== jobId(jobs[0]))) {
    const fromHash = /^#job=(.+)$/.exec(location.hash);
    const wanted = fromHash ? decodeURIComponent(fromHash[1]) : null;
    if (wanted && ids.has(wanted)) {
      state.selected = wanted;
      state.pinned = true;
    } else {
      state.selected = jobs.length ? jobId(jobs[0]) : null;
      state.pinned = false;
    }
    for (const tr of $('jobs').rows) tr.classList.toggle('selected', tr.dataset.jobId === state.selected);
  }
  renderDetail(state.jobs.find(j => jobId(j) === state.selected));
  await pollEvents();
  $('error').hidden = true;
  $('status').className = 'live';
  setText('status-text', 'live \u00b7 ' + new Date().toLocaleTimeString([], { hour12: false }));
  document.body.dataset.ready = '1';
}

async function loop() {
  if (!document.hidden) {
    try { await refresh(); } catch (e) { showError(e); }
  }
  setTimeout(loop, POLL_MS);
}

$('jobs').addEventListener('click', e => {
  const tr = e.target.closest('tr.job-row');
  if (tr) select(tr.dataset.jobId, true);
});
$('jobs').addEventListener('keydown', e => {
  const tr = e.target.closest('tr.job-row');
  if (tr && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); select(tr.dataset.jobId, true); }
});
loop();
</script>
</body>
</html>
)html";

}  // namespace mxport::coordinator::rpc

#endif  // MXPORT_COORDINATOR_RPC_DASHBOARD_HTML_H_
