// The meters panel: the demo household's prepaid meters in the emulated home (the automation
// API's /api/meters): where the purchase card is, with buttons to move it; each meter's balance
// and last outcome; a field to type a token on the keypad meter.
"use strict";

(function metersPanel() {
  const cardLine = document.getElementById("meters-card");
  const stateLine = document.getElementById("meters-state");
  const answerLine = document.getElementById("token-answer");
  const digits = document.getElementById("token-digits");
  const PLACES = { box: "in the box", meter: "in the meter", out: "out" };

  function money(fen, currency) {
    // Integer fen to "¥12.34" (negative when a meter runs on emergency credit).
    const sign = fen < 0 ? "-" : "";
    const abs = Math.abs(fen);
    const whole = Math.trunc(abs / 100).toLocaleString("en");
    return `${sign}${currency === "CNY" ? "¥" : currency + " "}${whole}.${String(abs % 100).padStart(2, "0")}`;
  }

  function kwh(wh) {
    return `${Math.trunc(wh / 1000)}.${String(wh % 1000).padStart(3, "0")} kWh`;
  }

  function cardOutcome(last) {
    return last ? `${last.outcome}: ${last.message}` : "no card inserted yet";
  }

  function tokenOutcome(last) {
    return last ? `${last.accepted ? "accepted" : `refused (${last.reason})`}: ${last.message}` : "no token typed yet";
  }

  function remoteLine(remote) {
    if (remote.error) return `remote ${remote.meter_no}: ${remote.error}`;
    return `remote ${remote.meter_no}: ${money(remote.balance_fen, remote.currency)} (utility)`;
  }

  function show(state) {
    const card = state.card;
    const count = card.count === null ? "unreadable" : `purchase ${card.count}`;
    cardLine.textContent = `card: ${PLACES[card.at]} · holds ${count}`;
    cardLine.dataset.at = card.at;
    const m = state.card_meter;
    const t = state.token_meter;
    stateLine.textContent =
      `card meter ${m.meter_no}: ${money(m.balance_fen, m.currency)} · count ${m.count}\n` +
      `  last: ${cardOutcome(m.last_outcome)}\n` +
      `token meter ${t.meter_no}: ${kwh(t.credit_wh)}\n` +
      `  last: ${tokenOutcome(t.last_outcome)}\n` +
      remoteLine(state.remote_meter);
  }

  async function call(method, path, body) {
    try {
      const response = await fetch(path, {
        method,
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      const answer = await response.json();
      if (!response.ok) return { error: answer.error.message };
      return answer;
    } catch (err) {
      return { error: `the emulator is not answering (${err})` };
    }
  }

  async function refresh() {
    const state = await call("GET", "/api/meters");
    if (state.error) { cardLine.textContent = state.error; return; }
    show(state);
  }

  for (const button of document.querySelectorAll("#meters button[data-card-to]")) {
    button.addEventListener("click", async () => {
      const moved = await call("POST", "/api/card/move", { to: button.dataset.cardTo });
      if (moved.error) { answerLine.textContent = moved.error; }
      else if (moved.outcome) { answerLine.textContent = `meter: ${cardOutcome(moved.outcome)}`; }
      refresh();
    });
  }

  // Digits typed here are for the meter, not the TV: keep them from the remote's keyboard.
  digits.addEventListener("keydown", (event) => event.stopPropagation());
  document.getElementById("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await call("POST", "/api/meters/token", { digits: digits.value });
    answerLine.textContent = answer.error || `token meter: ${tokenOutcome(answer)}`;
    answerLine.dataset.accepted = answer.error ? "" : String(answer.accepted);
    refresh();
  });

  refresh();
  setInterval(refresh, 2000);
})();
