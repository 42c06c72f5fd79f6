// The simulator panels beside the remote (utility, bank): each shows its simulator's state and
// injects faults. A simulator's address comes from the automation API's /api/where, as its port
// changes at each start of the stack.
"use strict";

function activeFaults(faults) {
  // The bank lists every fault with its off value; the utility only those set.
  const set = Object.fromEntries(Object.entries(faults).filter(([, value]) => value));
  return Object.keys(set).length ? JSON.stringify(set) : "none";
}

function yuan(fen, currency) {
  // Integer fen to "¥1,234.56": the amount is never a float.
  const whole = Math.trunc(fen / 100).toLocaleString("en");
  const cents = String(fen % 100).padStart(2, "0");
  return `${currency === "CNY" ? "¥" : currency + " "}${whole}.${cents}`;
}

function utilityLine(state) {
  const w = state.writeoffs;
  return (
    `written off: ${w.credited} · rejected: ${w.rejected} · notifications: ${w.notifications}\n` +
    `faults: ${activeFaults(state.faults)}${state.held ? ` · holding ${state.held}` : ""}`
  );
}

function bankLine(state) {
  const cards = state.accounts.map((a) => `${a.bank_token}: ${yuan(a.balance_fen, a.currency)}`);
  const taken = state.debits.filter((d) => d.status === "ok");
  const reversed = taken.filter((d) => d.reversed_at).length;
  return (
    `cards: ${cards.length ? cards.join(" · ") : "none"}\n` +
    `debits: ${taken.length} · reversed: ${reversed} · refused: ${state.debits.length - taken.length}\n` +
    `faults: ${activeFaults(state.faults)}`
  );
}

function simulatorPanel(service, describe, title) {
  const section = document.getElementById(service);
  const line = document.getElementById(`${service}-state`);
  let url = "";

  async function call(method, path, body) {
    if (!url) {
      const where = await (await fetch("/api/where")).json();
      url = (where[service] && where[service].url) || "";
      if (!url) { line.textContent = `no ${title} in this stack`; return; }
    }
    try {
      const response = await fetch(url + path, {
        method,
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      const answer = await response.json();
      if (!response.ok) { line.textContent = answer.error.message; return; }
      if (method === "GET") { line.textContent = describe(answer); return; }
      await call("GET", "/control/state");  // a fault change answers with the faults only
    } catch (err) {
      line.textContent = `the ${title} is not answering (${err})`;
    }
  }

  for (const button of section.querySelectorAll("button[data-fault]")) {
    button.addEventListener("click", () =>
      call("POST", "/control/faults", JSON.parse(button.dataset.fault)));
  }
  document.getElementById(`${service}-clear`).addEventListener("click", () =>
    call("DELETE", "/control/faults"));

  call("GET", "/control/state");
  setInterval(() => call("GET", "/control/state"), 2000);
}

simulatorPanel("utility", utilityLine, "utility simulator");
simulatorPanel("bank", bankLine, "bank simulator");
