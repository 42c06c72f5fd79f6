// The web remote: shows the live TV screen and sends remote keys to the automation API.
"use strict";

const screenImg = document.getElementById("screen");
const statusLine = document.getElementById("status");
const REFRESH_MS = 300;
const KEYBOARD = {
  ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right",
  Enter: "ok", Escape: "back", Backspace: "back", h: "home", H: "home",
  F1: "red", F2: "green", F3: "yellow", F4: "blue",
};
for (let d = 0; d <= 9; d++) KEYBOARD[String(d)] = String(d);

let refreshTimer = null;

function showStatus(state) {
  const focused = state.focused ? ` · focus: ${state.focused}` : "";
  statusLine.textContent = `screen: ${state.screen}${focused}`;
  statusLine.dataset.screen = state.screen || "";
}

function refresh() {
  clearTimeout(refreshTimer);
  // The next frame is requested only when the previous one arrived: no pile-up on a slow link.
  screenImg.src = `/api/screenshot?format=jpeg&t=${Date.now()}`;
}

async function refreshStatus() {
  try { showStatus(await (await fetch("/api/screen")).json()); } catch (err) { /* shown by the image */ }
}

screenImg.addEventListener("load", () => {
  refreshStatus();
  refreshTimer = setTimeout(refresh, REFRESH_MS);
});
screenImg.addEventListener("error", () => {
  statusLine.textContent = "the emulator is not answering; retrying…";
  refreshTimer = setTimeout(refresh, 1000);
});

async function press(key) {
  try {
    const response = await fetch("/api/keys", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ keys: [key] }),
    });
    const body = await response.json();
    if (!response.ok) { statusLine.textContent = body.error.message; return; }
    showStatus(body.screen);
    refresh();
  } catch (err) {
    statusLine.textContent = `key not sent: ${err}`;
  }
}

for (const button of document.querySelectorAll("button[data-key]")) {
  button.addEventListener("click", () => press(button.dataset.key));
}

document.addEventListener("keydown", (event) => {
  const key = KEYBOARD[event.key];
  if (!key || event.ctrlKey || event.altKey || event.metaKey) return;
  event.preventDefault();
  const button = document.querySelector(`button[data-key="${key}"]`);
  if (button) { button.classList.add("pressed"); setTimeout(() => button.classList.remove("pressed"), 120); }
  press(key);
});

refresh();
