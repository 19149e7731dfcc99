// The terminal page's own script and style, served from /hub/static/terminal/ next to xterm.js and its fit
// addon (read from node_modules: no front-end build). Everything is a file the page loads, nothing inline, so
// the page's CSP can say script-src 'self'.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/package-root.js";

export const TERMINAL_JS = `
(function () {
  "use strict";
  var root = document.getElementById("terminal");
  var host = document.getElementById("terminal-host");
  var statusEl = document.getElementById("terminal-status");
  var endedBox = document.getElementById("terminal-ended");
  var endedMsg = document.getElementById("terminal-ended-message");
  var reconnect = document.getElementById("terminal-reconnect");
  function status(text) { statusEl.textContent = text; }
  function ended(text, canReconnect) {
    endedMsg.textContent = text;
    reconnect.hidden = !canReconnect;
    endedBox.hidden = false;
    root.classList.add("ended");
  }
  reconnect.addEventListener("click", function () { location.reload(); });
  var term = new Terminal({
    cursorBlink: true,
    scrollback: 5000,
    fontSize: 14,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, monospace',
    theme: { background: "#0d1117", foreground: "#e6edf3" }
  });
  var fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(host);
  fit.fit();
  term.focus();
  window.slicehubTerminal = term;
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + location.pathname + "?ticket=" + encodeURIComponent(root.dataset.ticket);
  var ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  var encoder = new TextEncoder();
  var done = false;
  function sendSize() {
    if (ws.readyState === 1) ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
  }
  ws.onopen = function () { sendSize(); };
  ws.onmessage = function (m) {
    if (typeof m.data !== "string") { term.write(new Uint8Array(m.data)); return; }
    var msg; try { msg = JSON.parse(m.data); } catch (e) { return; }
    if (msg.type === "hello") {
      status("Connected: a shell as " + msg.account + ". It keeps running if you close or reload this page.");
      root.dataset.connected = "yes";
      sendSize();
    } else if (msg.type === "exit") {
      done = true;
      term.write("\\r\\n\\x1b[2m[" + msg.message + "]\\x1b[0m\\r\\n");
      status("Ended.");
      ended(msg.message, false);
    } else if (msg.type === "ended") {
      done = true;
      status("Ended.");
      ended(msg.message, msg.message.indexOf("another window") >= 0);
    }
  };
  ws.onclose = function () {
    root.dataset.connected = "no";
    if (done) return;
    done = true;
    status("Disconnected.");
    ended("The connection to the hub closed. If the hub restarted, the terminal has ended; reconnecting shows whether it is still there.", true);
  };
  // Input in pieces: a large paste must not exceed what the hub takes in one websocket message (64 KiB).
  function sendInput(bytes) {
    for (var i = 0; i < bytes.length && ws.readyState === 1; i += 8192) ws.send(bytes.subarray(i, i + 8192));
  }
  term.onData(function (d) { sendInput(encoder.encode(d)); });
  term.onBinary(function (d) {
    if (ws.readyState !== 1) return;
    var bytes = new Uint8Array(d.length);
    for (var i = 0; i < d.length; i++) bytes[i] = d.charCodeAt(i) & 255;
    sendInput(bytes);
  });
  term.onResize(sendSize);
  var pending;
  function refit() { clearTimeout(pending); pending = setTimeout(function () { fit.fit(); }, 50); }
  window.addEventListener("resize", refit);
  if (window.ResizeObserver) new ResizeObserver(refit).observe(host);
})();
`;

export const TERMINAL_CSS = `
main.terminal { max-width:none; margin:.8rem auto; }
.terminal-bar { display:flex; flex-wrap:wrap; align-items:center; gap:.4rem 1rem; margin-bottom:.5rem; }
.terminal-bar h1 { margin:0; font-size:1.2rem; }
.terminal-bar .grow { margin-left:auto; }
#terminal [hidden] { display:none !important; }
.terminal-frame { background:#0d1117; padding:.4rem; border-radius:6px; }
#terminal-host { height:calc(100vh - 11.8rem); min-height:12rem; overflow:hidden; }
#terminal.ended .terminal-frame { opacity:.75; }
#terminal-ended .alert { margin-top:0; }
#terminal-ended { margin-top:.6rem; }
#terminal-ended .actions { margin-top:.4rem; }
`;

interface Asset {
  body: Buffer | string;
  type: string;
  version: string;
}

const version = (body: Buffer | string) => createHash("sha256").update(body).digest("hex").slice(0, 12);

let cache: Map<string, Asset> | undefined;

/** The files under /hub/static/terminal/, each with a content hash the page puts in its URL. */
export function terminalAssets(): Map<string, Asset> {
  if (cache) return cache;
  const nm = join(packageRoot(), "node_modules", "@xterm");
  const file = (path: string) => readFileSync(join(nm, path));
  const js = "text/javascript; charset=utf-8";
  const css = "text/css; charset=utf-8";
  const entries: [string, Buffer | string, string][] = [
    ["xterm.js", file("xterm/lib/xterm.js"), js],
    ["xterm.css", file("xterm/css/xterm.css"), css],
    ["addon-fit.js", file("addon-fit/lib/addon-fit.js"), js],
    ["terminal.js", TERMINAL_JS, js],
    ["terminal.css", TERMINAL_CSS, css],
  ];
  cache = new Map(entries.map(([name, body, type]) => [name, { body, type, version: version(body) }]));
  return cache;
}

/** `/hub/static/terminal/<name>?v=<hash>`: cached for good, and a new release changes the URL. */
export function assetUrl(name: string): string {
  const a = terminalAssets().get(name);
  return `/hub/static/terminal/${name}${a ? `?v=${a.version}` : ""}`;
}
