// Appended to a dlogp-view page to take docs/images/viewer.png (README):
//   dlogp-score on the demo's world/base and rl/none_s0/hf/final with top_alternatives=5 on the
//   demo's score/direction/input.jsonl -> dlogp-view -> this script before </body> ->
//   chromium --headless --no-sandbox --hide-scrollbars --window-size=1280,800 --screenshot=viewer.png
(function () {
  const q = (s) => Array.from(document.querySelectorAll(s)), R = window.dlogpView.data.responses;
  // The RL generation whose largest |Δlog p| is largest: open it and pin the panel on that token.
  let best = [0, 0, -1];
  R.forEach((r, i) => { if (r.group !== 'rl') return; r.m.dlogp.forEach((v, t) => {
    if (Math.abs(v) > best[2]) best = [i, t, Math.abs(v)]; }); });
  q('tr.resp[data-i="' + best[0] + '"]')[0].click();
  q('#text span')[best[1]].click();
})();
