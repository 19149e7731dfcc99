// The hub's one stylesheet, served at /hub/static/style.css. Small enough to keep inline.
export const STYLE_CSS = `
:root { --fg:#1d2430; --muted:#5b6575; --bg:#f6f7f9; --card:#fff; --line:#dde1e7; --accent:#1f6feb; --accent-soft:#eef4ff; --ok:#1a7f37; --ok-soft:#effaf2; --bad:#cf222e; --bad-soft:#fff1f0; --warn:#9a6700; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; flex-wrap:wrap; align-items:center; gap:.4rem 1rem; padding:.6rem 1rem; background:#fff; border-bottom:1px solid var(--line); }
header .brand { font-weight:700; text-decoration:none; color:var(--fg); }
header nav { margin-left:auto; display:flex; flex-wrap:wrap; gap:.2rem .9rem; align-items:center; }
header nav a { color:var(--muted); text-decoration:none; padding:.2rem 0; }
header nav a:hover, header nav a[aria-current] { color:var(--fg); }
header nav a[aria-current] { box-shadow:inset 0 -2px var(--accent); }
header nav .who { color:var(--muted); font-size:.9rem; padding:.1rem .5rem; border:1px solid var(--line); border-radius:999px; }
main { max-width:60rem; margin:1.5rem auto; padding:0 1rem; }
main.wide { max-width:76rem; }
h1 { font-size:1.5rem; margin:.2rem 0 1rem; }
h2 { font-size:1.1rem; margin:0 0 .6rem; }
a { color:var(--accent); }
code { font-size:.9em; background:var(--bg); padding:.05rem .3rem; border-radius:4px; }
form { margin:0; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:1rem 1.2rem; margin-bottom:1rem; }
.server-head { display:flex; flex-wrap:wrap; align-items:center; gap:.4rem .7rem; margin-bottom:.4rem; }
.server-head h2 { margin:0; }
.server-head .grow { margin-left:auto; }
.meta { display:flex; flex-wrap:wrap; gap:.2rem 1.2rem; color:var(--muted); font-size:.9rem; margin:.2rem 0 .8rem; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:.5rem .4rem; border-bottom:1px solid var(--line); vertical-align:middle; }
th { color:var(--muted); font-weight:600; font-size:.85rem; white-space:nowrap; }
td form { display:inline-block; }
.nowrap { white-space:nowrap; }
.scroll { overflow-x:auto; }
.actions { display:flex; gap:.5rem; flex-wrap:wrap; align-items:center; margin-top:.6rem; }
.actions form { margin:0; }
button, .button { font:inherit; min-height:2.5rem; padding:.45rem 1rem; border-radius:6px; border:1px solid var(--line); background:#fff; color:var(--fg); cursor:pointer; text-decoration:none; display:inline-flex; align-items:center; }
button:hover, .button:hover { border-color:var(--muted); }
button.primary, .button.primary { background:var(--accent); border-color:var(--accent); color:#fff; }
button.danger { color:var(--bad); }
button.danger:hover { border-color:var(--bad); }
button:disabled { opacity:.5; cursor:not-allowed; }
input[type=text], select { font:inherit; padding:.45rem .6rem; border:1px solid var(--line); border-radius:6px; width:100%; max-width:24rem; background:#fff; }
input.secret { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:.9rem; max-width:none; flex:1 1 16rem; }
label { display:block; margin:.8rem 0 .3rem; font-weight:600; }
.hint { font-size:.9rem; margin:.3rem 0; }
fieldset.profiles { border:0; padding:0; margin:.4rem 0 0; display:grid; gap:.5rem; grid-template-columns:repeat(auto-fill, minmax(15rem, 1fr)); }
fieldset.profiles legend { font-weight:600; padding:0; margin-bottom:.4rem; }
label.choice { display:flex; gap:.6rem; align-items:flex-start; margin:0; padding:.6rem .8rem; border:1px solid var(--line); border-radius:8px; font-weight:normal; cursor:pointer; }
label.choice:has(input:checked) { border-color:var(--accent); background:var(--accent-soft); }
label.choice input { margin:.3rem 0 0; accent-color:var(--accent); }
label.choice .limits { display:block; font-size:.85rem; color:var(--muted); }
label.choice .description { display:block; font-size:.9rem; margin-top:.2rem; }
.state, .badge { font-size:.8rem; padding:.05rem .55rem; border-radius:999px; border:1px solid var(--line); white-space:nowrap; color:var(--muted); }
.state.running { color:var(--ok); border-color:var(--ok); background:var(--ok-soft); }
.state.pending, .state.stopping { color:var(--warn); border-color:var(--warn); }
.badge { color:var(--accent); border-color:var(--accent); }
.badge.bad { color:var(--bad); border-color:var(--bad); background:var(--bad-soft); }
table.admin tr.user { border-bottom:0; }
table.admin tr.user td { padding-top:1.2rem; border-bottom:2px solid var(--line); }
table.admin tbody:first-of-type tr.user td { padding-top:.6rem; }
table.admin tr.user .server-head { margin:0; }
table.admin tbody.blocked tr:not(.user) { opacity:.6; }
table.admin td .error { min-width:10rem; }
.muted { color:var(--muted); }
.error { color:var(--bad); }
.notice { color:var(--warn); }
.small { font-size:.85rem; }
.alert { background:var(--bad-soft); border:1px solid #ffcecb; color:#82071e; border-radius:6px; padding:.7rem .9rem; font-weight:600; overflow-wrap:anywhere; }
.alert::first-letter { text-transform:uppercase; }
.alert.ok { background:var(--ok-soft); border-color:#aceebb; color:#0f5323; }
pre.log { background:#0d1117; color:#e6edf3; padding:.8rem; border-radius:6px; overflow:auto; max-height:24rem; white-space:pre-wrap; overflow-wrap:anywhere; font-size:.85rem; margin:.6rem 0; }
pre.log:empty { display:none; }
details { margin:.6rem 0; }
summary { cursor:pointer; color:var(--muted); }
ol.events { color:var(--muted); font-size:.9rem; margin:.4rem 0; padding-left:1.4rem; }
.progress { height:.8rem; background:var(--line); border-radius:999px; overflow:hidden; margin:.6rem 0 1rem; }
.progress > div { height:100%; background:var(--accent); width:0; transition:width .3s; }
.progress.failed > div { background:var(--bad); }
.progress.ready > div { background:var(--ok); }
/* Phones: tables become one block per row, each cell labelled from its data-label. */
@media (max-width: 40rem) {
  main { margin-top:1rem; padding:0 .6rem; }
  .card { padding:.9rem; }
  table.stack thead { display:none; }
  table.stack tr { display:block; padding:.4rem 0; border-bottom:1px solid var(--line); }
  table.stack tr:last-child { border-bottom:0; }
  table.stack td { display:flex; justify-content:space-between; align-items:center; gap:1rem; border:0; padding:.2rem 0; text-align:right; }
  table.stack td::before { content:attr(data-label); color:var(--muted); font-size:.85rem; text-align:left; }
  table.stack td:not([data-label]) { justify-content:flex-end; }
  table.stack td[colspan] { display:block; text-align:left; }
}
`;

export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f6feb"/><path d="M4 11h8M4 8h8M4 5h8" stroke="#fff" stroke-width="1.6"/></svg>`;

export const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 28" width="120" height="28"><rect width="28" height="28" rx="5" fill="#1f6feb"/><path d="M7 19h14M7 14h14M7 9h14" stroke="#fff" stroke-width="2.4"/><text x="34" y="20" font-family="system-ui,sans-serif" font-size="16" font-weight="700" fill="#1d2430">slicehub</text></svg>`;
