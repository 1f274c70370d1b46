"""dlogp-view in a real browser: headless Chromium loads the page with a test script appended, which
drives it (tokens, colours, hover panel, threshold control, colouring toggle, table, a lazily
opened 20k-token response) and writes what it saw into the DOM; `--dump-dom` brings that back.

A screenshot of the page (the hover panel pinned) is saved to $DLOGP_TEST_ARTIFACTS (else the
test's temporary directory). Skipped, with the reason, where no Chromium is installed (`.ci/run`
installs Debian's `chromium` when it can).
"""

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dlogp_jax import runs, toy
from dlogp_jax.cli import score
from tests.cli.configs import get_config
from tests.view import pages

BROWSER = next(
    (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
    None,
)
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no chromium on PATH (apt-get install chromium; .ci/run installs it when it can)",
)

SCORE_CHECKS = r"""
(function () {
  const res = {}, q = (s) => Array.from(document.querySelectorAll(s));
  const fire = (el, type) => el.dispatchEvent(new Event(type, {bubbles: true}));
  const set = (id, v) => { const el = document.getElementById(id); el.value = v; fire(el, 'change');
    fire(el, 'input'); };
  const bgs = () => q('#text span').map((s) => getComputedStyle(s).backgroundColor);
  try {
    res.text = q('#text span').map((s) => s.textContent);
    res.bg = bgs();
    res.spans_in_page = q('span[data-i]').length;
    res.hits_default = q('#text span.hit').length;
    q('#text span')[0].dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
    const panel = document.getElementById('panel');
    res.panel_shown = getComputedStyle(panel).display !== 'none';
    res.panel = panel.textContent;
    set('tau', '0.5');
    res.hits_tau = q('#text span.hit').length;
    set('crit', 'entropy_base');
    res.hits_entropy = q('#text span.hit').length;
    const hl = document.getElementById('hl');
    hl.checked = false; fire(hl, 'change');
    res.hits_off = q('#text span.hit').length;
    hl.checked = true; fire(hl, 'change');
    set('colour', 'entropy_base');
    res.bg_entropy = bgs();
    res.legend = document.getElementById('legend').textContent;
    set('colour', 'dlogp');
    res.rows = q('tr.resp').length;
    q('th[data-key="mean_dlogp"]')[0].click();
    res.sorted = q('tr.resp').map((tr) => Number(tr.dataset.i));
    set('group', 'rl');
    res.rows_rl = q('tr.resp').length;
    set('correct', 'no');
    res.rows_rl_wrong = q('tr.resp').map((tr) => Number(tr.dataset.i));
    set('correct', ''); set('group', '');
    let t = performance.now();
    q('tr.resp[data-i="2"]')[0].click();
    res.open_ms = performance.now() - t;
    res.big_spans = q('#text span').length;
    t = performance.now();
    set('colour', 'entropy_base');
    res.recolour_ms = performance.now() - t;
    const big = q('#text span')[5000];
    big.click();
    res.pinned = big.classList.contains('pin');
    res.big_panel = document.getElementById('panel').textContent;
    // The screenshot's state: response 0, Δlog p colours, τ = -0.3, the panel pinned on "!".
    set('colour', 'dlogp'); set('crit', 'dlogp'); set('tau', '-0.3');
    q('tr.resp[data-i="0"]')[0].click();
    q('#text span')[6].click();
  } catch (e) { res.error = String(e) + ' ' + e.stack; }
  const pre = document.createElement('pre');
  pre.id = 'test-results'; pre.style.display = 'none'; pre.textContent = JSON.stringify(res);
  document.body.appendChild(pre);
})();
"""

SAMPLE_CHECKS = r"""
(function () {
  const res = {}, q = (s) => Array.from(document.querySelectorAll(s));
  try {
    res.text = q('#text span').map((s) => s.textContent);
    res.changed = q('#text span.c').map((s) => Number(s.dataset.i));
    q('#text span')[1].dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
    res.panel = document.getElementById('panel').textContent;
    res.colour_options = q('#colour option').map((o) => o.value);
  } catch (e) { res.error = String(e) + ' ' + e.stack; }
  const pre = document.createElement('pre');
  pre.id = 'test-results'; pre.textContent = JSON.stringify(res);
  document.body.appendChild(pre);
})();
"""


REAL_CHECKS = r"""
(function () {
  const res = {bad: []}, q = (s) => Array.from(document.querySelectorAll(s)), V = window.dlogpView;
  try {
    const R = V.data.responses;
    res.responses = R.length;
    for (let i = 0; i < R.length; i++) {
      q('tr.resp[data-i="' + i + '"]')[0].click();
      const spans = q('#text span');
      if (spans.length !== R[i].length || spans.map((s) => s.textContent).join('') !==
          R[i].tok.join('')) res.bad.push(i);
      if (spans.some((s) => !getComputedStyle(s).backgroundColor.startsWith('rgb('))) res.bad.push(i);
    }
    const spans = q('#text span'), mid = spans[Math.floor(spans.length / 2)];
    mid.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
    res.panel = document.getElementById('panel').textContent;
    res.alt_rows = q('#panel .alts tr').length;
  } catch (e) { res.error = String(e) + ' ' + e.stack; }
  const pre = document.createElement('pre');
  pre.id = 'test-results'; pre.textContent = JSON.stringify(res);
  document.body.appendChild(pre);
})();
"""


def _chromium(tmp_path, *args):
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"]
    cmd += [f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _run_checks(tmp_path, page: Path, checks: str) -> dict:
    test_page = page.with_name("checked.html")
    test_page.write_text(page.read_text().replace("</body>", f"<script>{checks}</script></body>"))
    proc = _chromium(tmp_path, "--dump-dom", test_page.as_uri())
    found = re.search(r'<pre id="test-results"[^>]*>(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no results in the page: {proc.stderr[-2000:]}"
    res = json.loads(html.unescape(found.group(1)))
    assert "error" not in res, res["error"]
    return res


def test_score_page_in_chromium(tmp_path):
    page = runs.view(runs.ViewSettings(input=pages.score_dir(tmp_path / "score")))
    res = _run_checks(tmp_path, page, SCORE_CHECKS)
    assert res["text"] == pages.TEXT0
    assert res["spans_in_page"] == len(pages.TOKENS0)  # lazy: only the open response exists
    red, white, blue, purple = (
        "rgb(215, 48, 39)",
        "rgb(255, 255, 255)",
        "rgb(33, 102, 172)",
        "rgb(118, 42, 131)",
    )
    assert res["bg"][:3] == [red, white, blue]  # Δlog p -100 / 0 / +100: the scale's ends
    assert res["bg"][3] not in (red, white) and res["bg"][6] not in (red, white)
    assert res["bg_entropy"][:2] == [white, purple]  # entropy 0 / 100
    assert "nats" in res["legend"]
    d, h = pages.DLOGP0, pages.ENTROPY0
    assert res["hits_default"] == sum(v <= -0.3 for v in d) == 3
    assert res["hits_tau"] == sum(v <= 0.5 for v in d)
    assert res["hits_entropy"] == sum(v >= 0.5 for v in h) and res["hits_off"] == 0
    assert res["panel_shown"]
    for part in ("Δlog p-100.000", "KL(RL‖base)0.125", "KL(base‖RL)0.250", '" base"', '" rl"'):
        assert part in res["panel"], (part, res["panel"])
    assert '"é"' in res["panel"] and "base top-3" in res["panel"]
    assert res["rows"] == 3 and res["sorted"] == [1, 2, 0]  # mean Δlog p, descending
    assert res["rows_rl"] == 2 and res["rows_rl_wrong"] == [1]
    assert res["big_spans"] == pages.BIG and res["pinned"]
    assert res["open_ms"] < 3000 and res["recolour_ms"] < 3000, res
    assert "RL top-3" in res["big_panel"]
    artifacts = Path(os.environ.get("DLOGP_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "dlogp-view.png"
    checked = page.with_name("checked.html")
    proc = _chromium(tmp_path, f"--screenshot={shot}", checked.as_uri())
    assert shot.is_file() and shot.stat().st_size > 20_000, proc.stderr[-2000:]


def test_sample_page_marks_replacements_in_chromium(tmp_path):
    base, _ = toy.build_pair(tmp_path / "pair", seed=0)
    src, _, _ = pages.sample_dir(tmp_path / "s", toy.build_tokenizer(), base=str(base))
    res = _run_checks(tmp_path, runs.view(runs.ViewSettings(input=src)), SAMPLE_CHECKS)
    assert "".join(res["text"]) == "ab c" and res["changed"] == [1]
    assert 'proposed "z" → emitted "b"' in res["panel"] and "criterion fired: yes" in res["panel"]
    assert res["colour_options"] == ["dlogp"]


def test_real_score_output_in_chromium(tmp_path):
    """A real dlogp-score output (tiny pair, 24 responses, top 5 alternatives) through the page."""
    out = score.run(get_config("score", "demo", out=str(tmp_path / "s"), top_alternatives=5))
    res = _run_checks(tmp_path, runs.view(runs.ViewSettings(input=out)), REAL_CHECKS)
    assert res["responses"] == 24 and res["bad"] == []
    assert "base top-5" in res["panel"] and "KL(base‖RL)" in res["panel"]
    assert res["alt_rows"] == 10  # five alternatives of each model
