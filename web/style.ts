// The hub's one stylesheet, served at /hub/static/style.css. Small enough to keep inline.
export const STYLE_CSS = `
:root { --fg:#1d2430; --muted:#5b6575; --bg:#f6f7f9; --card:#fff; --line:#dde1e7; --accent:#1f6feb; --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; align-items:center; gap:1rem; padding:.6rem 1rem; background:#fff; border-bottom:1px solid var(--line); }
header .brand { font-weight:700; text-decoration:none; color:var(--fg); }
header nav { margin-left:auto; display:flex; gap:1rem; align-items:center; }
header nav a { color:var(--muted); text-decoration:none; }
main { max-width:52rem; margin:1.5rem auto; padding:0 1rem; }
h1 { font-size:1.5rem; margin:.2rem 0 1rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:1rem 1.2rem; margin-bottom:1rem; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:.5rem .4rem; border-bottom:1px solid var(--line); vertical-align:middle; }
th { color:var(--muted); font-weight:600; font-size:.9rem; }
.actions { display:flex; gap:.4rem; flex-wrap:wrap; }
.actions form { margin:0; }
button, .button { font:inherit; padding:.4rem .9rem; border-radius:6px; border:1px solid var(--line); background:#fff; color:var(--fg); cursor:pointer; text-decoration:none; display:inline-block; }
button.primary, .button.primary { background:var(--accent); border-color:var(--accent); color:#fff; }
button.danger { color:var(--bad); }
input[type=text] { font:inherit; padding:.4rem .6rem; border:1px solid var(--line); border-radius:6px; width:100%; max-width:20rem; }
label { display:block; margin:.4rem 0; font-weight:600; }
.state { font-size:.85rem; padding:.1rem .5rem; border-radius:999px; border:1px solid var(--line); white-space:nowrap; }
.state.running { color:var(--ok); border-color:var(--ok); }
.state.pending, .state.stopping { color:var(--warn); border-color:var(--warn); }
.muted { color:var(--muted); }
.error { color:var(--bad); }
pre.log { background:#0d1117; color:#e6edf3; padding:.8rem; border-radius:6px; overflow:auto; max-height:24rem; white-space:pre-wrap; font-size:.85rem; }
.progress { height:.8rem; background:var(--line); border-radius:999px; overflow:hidden; margin:.6rem 0 1rem; }
.progress > div { height:100%; background:var(--accent); width:0; transition:width .3s; }
.progress.failed > div { background:var(--bad); }
.progress.ready > div { background:var(--ok); }
@media (max-width: 36rem) { th:nth-child(3), td:nth-child(3) { display:none; } }
`;

export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f6feb"/><path d="M4 11h8M4 8h8M4 5h8" stroke="#fff" stroke-width="1.6"/></svg>`;

export const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 28" width="120" height="28"><rect width="28" height="28" rx="5" fill="#1f6feb"/><path d="M7 19h14M7 14h14M7 9h14" stroke="#fff" stroke-width="2.4"/><text x="34" y="20" font-family="system-ui,sans-serif" font-size="16" font-weight="700" fill="#1d2430">slicehub</text></svg>`;
