"""The token viewer's page: one self-contained HTML file (inline CSS and JS, no network).

The payload of `analysis.view_data` is embedded once as JSON; a response's tokens are turned into
elements only when it is opened (a 20k-token response is one string built and inserted at once),
and the hover panel, colouring and threshold work through one listener on the text, not one per
token. `window.dlogpView` exposes the page's state and actions (used by the browser test).
"""

from __future__ import annotations

import html
import json
from typing import Any

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 8px 14px; background: #f4f4f6; border-bottom: 1px solid #ddd; }
header h1 { font-size: 16px; margin: 0 0 4px; }
.controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; }
.controls label { white-space: nowrap; }
main { display: flex; height: calc(100vh - 92px); }
#list { width: 36%; overflow: auto; border-right: 1px solid #ddd; }
#view { flex: 1; overflow: auto; padding: 10px 14px; position: relative; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { padding: 2px 6px; text-align: right; border-bottom: 1px solid #eee; }
th { position: sticky; top: 0; background: #fafafa; cursor: pointer; user-select: none; }
th.sorted::after { content: attr(data-dir); }
tr.resp { cursor: pointer; } tr.resp:hover { background: #eef3ff; } tr.open { background: #dde7ff; }
#prompt { white-space: pre-wrap; color: #555; border-left: 3px solid #ccc; padding-left: 8px; }
#text { white-space: pre-wrap; font: 15px/1.9 ui-monospace, monospace; }
#text span { border-radius: 2px; cursor: pointer; }
#text span:empty { padding-left: 3px; }  /* a character's first bytes: still hoverable */
#text span.hit { box-shadow: inset 0 -3px 0 #111; }
#text span.s { text-decoration: underline dotted #333; }
#text span.c { text-decoration: underline solid #e08000 3px; }
#text span.pin { outline: 2px solid #0a0; }
#legend { display: flex; align-items: center; gap: 6px; font-size: 12px; }
#bar { width: 180px; height: 12px; border: 1px solid #aaa; }
#panel { position: fixed; right: 12px; bottom: 12px; width: 340px; max-height: 60vh; overflow: auto;
  background: #fff; border: 1px solid #999; box-shadow: 0 2px 8px #0003; padding: 8px;
  font-size: 12px; display: none; }
#panel table td, #panel table th { text-align: left; position: static; }
#panel .alts { display: flex; gap: 8px; } #panel .alts > div { flex: 1; }
.pbar { display: inline-block; height: 8px; background: #69c; vertical-align: middle; }
.muted { color: #777; } code { background: #f2f2f2; padding: 0 2px; }
"""

JS = r"""
(function () {
  const D = JSON.parse(document.getElementById('dlogp-data').textContent);
  const R = D.responses;
  const NAMES = {dlogp: 'Δlog p', entropy_base: 'entropy (base)', entropy_rl: 'entropy (RL)',
    kl_rl_base: 'KL(RL‖base)', kl_base_rl: 'KL(base‖RL)', logp_base: 'log p (base)',
    logp_rl: 'log p (RL)'};
  const S = {colour: D.colourings[0], crit: D.colourings[0], tau: D.default_tau,
    highlight: true, open: null, pinned: null, sortKey: 'row', sortDir: 1, group: '', correct: ''};
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const fmt = (v) => (v === null || v === undefined) ? '–' : Number(v).toFixed(3);

  function mix(c, t) {  // white -> colour c by t in [0, 1]
    const r = Math.round(255 + (c[0] - 255) * t), g = Math.round(255 + (c[1] - 255) * t),
      b = Math.round(255 + (c[2] - 255) * t);
    return 'rgb(' + r + ',' + g + ',' + b + ')';
  }
  const NEG = [215, 48, 39], POS = [33, 102, 172], SEQ = [118, 42, 131];
  function colour(name, v) {
    if (v === null || v === undefined) return 'transparent';
    const L = D.scales[name] || 1;
    if (name === 'dlogp') {
      const t = Math.max(-1, Math.min(1, v / L));
      return t < 0 ? mix(NEG, -t) : mix(POS, t);
    }
    return mix(SEQ, Math.max(0, Math.min(1, v / L)));
  }
  function fires(name, v) {  // the criterion at tau: dlogp fires low, entropy / KL fire high
    if (v === null || v === undefined) return false;
    return name === 'dlogp' ? v <= S.tau : v >= S.tau;
  }

  function legend() {
    const L = D.scales[S.colour];
    const bar = $('bar'), lo = $('lo'), hi = $('hi');
    if (S.colour === 'dlogp') {
      bar.style.background = 'linear-gradient(to right,' + mix(NEG, 1) + ',#fff,' + mix(POS, 1) + ')';
      lo.textContent = '−' + L; hi.textContent = '+' + L + ' nats';
      $('lnote').textContent = 'Δlog p = log π_RL − log π_base; red: the RL model made it less likely';
    } else {
      bar.style.background = 'linear-gradient(to right,#fff,' + mix(SEQ, 1) + ')';
      lo.textContent = '0'; hi.textContent = L + ' nats';
      $('lnote').textContent = NAMES[S.colour];
    }
  }

  function hitText(hits, n) {
    $('hits').textContent = hits + ' of ' + n + ' tokens selected by ' + NAMES[S.crit] +
      (S.crit === 'dlogp' ? ' ≤ ' : ' ≥ ') + S.tau;
    legend();
  }

  function paint() {  // colours and threshold marks of the open response, after a control changed
    if (S.open === null) return;
    const r = R[S.open], col = r.m[S.colour], crit = r.m[S.crit], spans = $('text').children;
    let hits = 0;
    for (let i = 0; i < spans.length; i++) {
      spans[i].style.background = colour(S.colour, col[i]);
      const hit = S.highlight && fires(S.crit, crit[i]);
      hits += hit;
      spans[i].classList.toggle('hit', hit);
    }
    hitText(hits, spans.length);
  }

  function open(i) {  // lazy: a response's elements exist only while it is open
    S.open = i; S.pinned = null;
    const r = R[i], parts = new Array(r.tok.length), col = r.m[S.colour], crit = r.m[S.crit];
    let hits = 0;
    for (let t = 0; t < r.tok.length; t++) {  // colours and marks go into the one HTML string
      let cls = r.sel && r.sel[t] ? 's' : '';
      if (r.prop && r.prop[t] !== null) cls = 'c';
      if (S.highlight && fires(S.crit, crit[t])) { cls += ' hit'; hits++; }
      parts[t] = '<span data-i="' + t + '" class="' + cls + '" style="background:' +
        colour(S.colour, col[t]) + '">' + esc(r.tok[t]) + '</span>';
    }
    $('text').innerHTML = parts.join('');
    $('prompt').textContent = r.prompt || '';
    $('title').textContent = 'row ' + r.row + ' · prompt ' + r.prompt_index +
      (r.group ? ' · ' + r.group : '') + (r.correct === null ? '' : r.correct ? ' · correct' : ' · wrong') +
      ' · ' + r.length + ' tokens · mean Δlog p ' + fmt(r.mean_dlogp);
    $('panel').style.display = 'none';
    document.querySelectorAll('tr.resp').forEach((tr) =>
      tr.classList.toggle('open', Number(tr.dataset.i) === i));
    hitText(hits, r.tok.length);
  }

  function alts(list) {
    if (!list) return '';
    return '<table>' + list.map((a) => '<tr><td><code>' + esc(JSON.stringify(a[0])) +
      '</code></td><td>' + a[1].toFixed(3) + '</td><td><span class="pbar" style="width:' +
      Math.round(60 * a[1]) + 'px"></span></td></tr>').join('') + '</table>';
  }

  function panel(t) {
    const r = R[S.open], m = r.m;
    let h = '<b><code>' + esc(JSON.stringify(r.tok[t])) + '</code></b> <span class="muted">position ' +
      t + '</span><table>';
    for (const k of D.metrics) h += '<tr><th>' + NAMES[k] + '</th><td class="v-' + k + '">' +
      fmt(m[k][t]) + '</td></tr>';
    h += '</table>';
    if (r.sel) {
      h += '<div>criterion fired: <b>' + (r.sel[t] ? 'yes' : 'no') + '</b></div>';
      if (r.prop && r.prop[t] !== null) h += '<div class="swap">proposed <code>' +
        esc(JSON.stringify(r.prop[t])) + '</code> → emitted <code>' + esc(JSON.stringify(r.tok[t])) +
        '</code></div>';
      h += '<div class="muted">values of the proposed token, as the sampler recorded them</div>';
    }
    if (r.alt_base || r.alt_rl) h += '<div class="alts"><div><b>base top-' + D.alternatives +
      '</b>' + alts(r.alt_base && r.alt_base[t]) + '</div><div><b>RL top-' + D.alternatives +
      '</b>' + alts(r.alt_rl && r.alt_rl[t]) + '</div></div>';
    $('panel').innerHTML = h;
    $('panel').style.display = 'block';
  }

  function tokenOf(e) {
    const el = e.target.closest('#text span');
    return el ? Number(el.dataset.i) : null;
  }
  $('text').addEventListener('mouseover', (e) => {
    const t = tokenOf(e);
    if (t !== null && S.pinned === null) panel(t);
  });
  $('text').addEventListener('click', (e) => {
    const t = tokenOf(e);
    if (t === null) return;
    const spans = $('text').children;
    if (S.pinned !== null) spans[S.pinned].classList.remove('pin');
    S.pinned = S.pinned === t ? null : t;
    if (S.pinned !== null) spans[t].classList.add('pin');
    panel(t);
  });

  const COLS = [['row', '#'], ['prompt_index', 'prompt'], ['group', 'group'], ['correct', 'correct'],
    ['length', 'length'], ['mean_dlogp', 'mean Δlog p'], ['n_big', '|Δlog p|>1']];
  function shown() {
    return R.map((r, i) => i).filter((i) => {
      const r = R[i];
      if (S.group && r.group !== S.group) return false;
      if (S.correct === 'yes' && r.correct !== true) return false;
      if (S.correct === 'no' && r.correct !== false) return false;
      if (S.correct === 'ungraded' && r.correct !== null) return false;
      return true;
    }).sort((a, b) => {
      const x = R[a][S.sortKey], y = R[b][S.sortKey];
      return (x === y ? a - b : (x === null ? -1 : y === null ? 1 : x < y ? -1 : 1)) * S.sortDir;
    });
  }
  function table() {
    const rows = shown();
    let h = '<table><thead><tr>' + COLS.map((c) => '<th data-key="' + c[0] + '"' +
      (c[0] === S.sortKey ? ' class="sorted" data-dir="' + (S.sortDir > 0 ? ' ▲' : ' ▼') + '"' : '') +
      '>' + c[1] + '</th>').join('') + '</tr></thead><tbody>';
    for (const i of rows) {
      const r = R[i];
      h += '<tr class="resp' + (i === S.open ? ' open' : '') + '" data-i="' + i + '"><td>' + r.row +
        '</td><td>' + r.prompt_index + '</td><td>' + esc(r.group) + '</td><td>' +
        (r.correct === null ? '' : r.correct ? '✓' : '✗') + '</td><td>' + r.length + '</td><td>' +
        fmt(r.mean_dlogp) + '</td><td>' + r.n_big + '</td></tr>';
    }
    $('list').innerHTML = h + '</tbody></table><p class="muted">' + rows.length + ' of ' + R.length +
      ' responses</p>';
  }
  $('list').addEventListener('click', (e) => {
    const th = e.target.closest('th');
    if (th) {
      const k = th.dataset.key;
      S.sortDir = S.sortKey === k ? -S.sortDir : (k === 'row' ? 1 : -1);
      S.sortKey = k;
      table();
      return;
    }
    const tr = e.target.closest('tr.resp');
    if (tr) open(Number(tr.dataset.i));
  });

  function options(sel, values, labels) {
    sel.innerHTML = values.map((v, k) => '<option value="' + esc(v) + '">' + esc(labels[k]) +
      '</option>').join('');
  }
  options($('colour'), D.colourings, D.colourings.map((c) => NAMES[c]));
  options($('crit'), D.colourings, D.colourings.map((c) => NAMES[c]));
  const groups = [...new Set(R.map((r) => r.group))].sort();
  options($('group'), [''].concat(groups), ['all'].concat(groups));
  $('tau').value = S.tau;
  $('colour').onchange = (e) => { S.colour = e.target.value; paint(); };
  $('crit').onchange = (e) => { S.crit = e.target.value; paint(); };
  $('tau').oninput = (e) => { const v = parseFloat(e.target.value); if (!isNaN(v)) { S.tau = v; paint(); } };
  $('hl').onchange = (e) => { S.highlight = e.target.checked; paint(); };
  $('group').onchange = (e) => { S.group = e.target.value; table(); };
  $('correct').onchange = (e) => { S.correct = e.target.value; table(); };

  table();
  legend();
  if (R.length) open(shown()[0]);
  window.dlogpView = {data: D, state: S, open: open, paint: paint, table: table,
    set: (k, v) => { S[k] = v; paint(); table(); }, colour: colour, fires: fires};
})();
"""

BODY = """
<header>
  <h1>{title}</h1>
  <div class="controls">
    <label>colour by <select id="colour"></select></label>
    <span id="legend"><span id="lo"></span><span id="bar"></span><span id="hi"></span>
      <span id="lnote" class="muted"></span></span>
    <label><input type="checkbox" id="hl" checked> highlight</label>
    <label><select id="crit"></select> at τ = <input id="tau" type="number" step="0.1"
      style="width:6em"></label>
    <label>group <select id="group"></select></label>
    <label>correct <select id="correct"><option value="">all</option><option value="yes">correct
      </option><option value="no">wrong</option><option value="ungraded">ungraded</option>
      </select></label>
  </div>
</header>
<main>
  <div id="list"></div>
  <div id="view">
    <div id="title" class="muted"></div>
    <div id="hits" class="muted"></div>
    <p id="prompt"></p>
    <div id="text"></div>
  </div>
</main>
<div id="panel"></div>
"""


def render_html(payload: dict[str, Any], *, title: str, threshold: float, criterion: str) -> str:
    """The page of a viewer payload.

    Args:
      payload: `analysis.view_data` output (its `colourings` non-empty).
      title: shown in the header and the tab.
      threshold, criterion: the threshold control's initial τ and metric (the first colouring
        when the payload has no such metric).
    Returns:
      the HTML text (UTF-8, self-contained).
    """
    payload = dict(payload, default_tau=threshold)
    if criterion in payload["colourings"]:  # the criterion first: it is the initial choice
        payload["colourings"] = [criterion] + [c for c in payload["colourings"] if c != criterion]
    # "<" never appears raw in the script element, so no "</script>" in the data can end it.
    data = json.dumps(payload, ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
    )
    body = BODY.replace("{title}", html.escape(title))
    return (
        f'{head}{body}<script type="application/json" id="dlogp-data">{data}</script>'
        f"<script>{JS}</script></body></html>\n"
    )
