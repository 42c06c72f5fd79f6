// The utility panel: the simulator's faults and write-off counts, and buttons to inject faults.
// The simulator's address comes from the automation API's /api/where.
"use strict";

const utilityLine = document.getElementById("utility-state");
let utilityUrl = "";

function showUtility(state) {
  const faults = Object.keys(state.faults).length ? JSON.stringify(state.faults) : "none";
  const w = state.writeoffs;
  utilityLine.textContent =
    `written off: ${w.credited} · rejected: ${w.rejected} · notifications: ${w.notifications}\n` +
    `faults: ${faults}${state.held ? ` · holding ${state.held}` : ""}`;
}

async function utilityCall(method, path, body) {
  if (!utilityUrl) {
    const where = await (await fetch("/api/where")).json();
    utilityUrl = (where.utility && where.utility.url) || "";
    if (!utilityUrl) { utilityLine.textContent = "no utility simulator in this stack"; return; }
  }
  try {
    const response = await fetch(utilityUrl + path, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const answer = await response.json();
    if (!response.ok) { utilityLine.textContent = answer.error.message; return; }
    showUtility(answer);
  } catch (err) {
    utilityLine.textContent = `the utility simulator is not answering (${err})`;
  }
}

for (const button of document.querySelectorAll("button[data-fault]")) {
  button.addEventListener("click", () =>
    utilityCall("POST", "/control/faults", JSON.parse(button.dataset.fault)));
}
document.getElementById("utility-clear").addEventListener("click", () =>
  utilityCall("DELETE", "/control/faults"));

utilityCall("GET", "/control/state");
setInterval(() => utilityCall("GET", "/control/state"), 2000);
