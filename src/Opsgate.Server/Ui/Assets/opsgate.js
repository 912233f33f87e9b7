// Opsgate console: the job page's live part. Reads the job's Server-Sent Events with fetch (EventSource cannot
// tell named events apart without knowing every name), resumes after a dropped connection from the last seq it
// showed (Last-Event-ID), and refreshes the server-rendered summary and step timeline when a job or step event
// arrives. Event text is inserted as text, never as HTML.
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live) return;
  const log = document.getElementById("event-log");
  const state = document.getElementById("live-state");
  const summary = document.getElementById("summary");
  const maxShown = 500;
  const renderedSeq = Number(live.dataset.renderedSeq || "0");
  // The page arrives with the latest events up to renderedSeq already in the log; the stream goes on after them.
  let lastSeq = renderedSeq;
  let finished = false;
  let refreshTimer = null;

  function setState(value, text) {
    state.dataset.state = value;
    state.textContent = text;
  }

  function show(event) {
    if (event.seq <= lastSeq) return; // a resumed stream starts after lastSeq; never show one twice
    lastSeq = event.seq;
    const item = document.createElement("li");
    const seq = document.createElement("span");
    seq.className = "seq";
    seq.textContent = "#" + event.seq;
    const type = document.createElement("span");
    type.className = "type";
    type.textContent = event.type;
    item.append(seq, " ", new Date(event.ts).toISOString().substring(11, 23), " ", type);
    if (event.data !== null && event.data !== undefined) item.append(" " + JSON.stringify(event.data));
    item.dataset.seq = String(event.seq);
    item.dataset.type = event.type;
    log.append(item);
    while (log.children.length > maxShown) log.firstElementChild.remove();
    log.scrollTop = log.scrollHeight;
    // Events up to the one the page was rendered at are already shown in the summary.
    if (event.seq > renderedSeq && (event.type.startsWith("job.") || event.type.startsWith("step."))) scheduleRefresh();
    if (event.type === "job.finished") finished = true;
  }

  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(async () => {
      refreshTimer = null;
      try {
        const response = await fetch(live.dataset.summary, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (!response.ok) return;
        // The server's own rendering of this job; what the user was typing (a comment) survives the swap.
        const typed = new Map([...summary.querySelectorAll("input[id], textarea[id]")].map(i => [i.id, i.value]));
        const focused = document.activeElement && summary.contains(document.activeElement) ? document.activeElement.id : null;
        summary.innerHTML = await response.text();
        for (const [id, value] of typed) {
          const input = document.getElementById(id);
          if (input && value) input.value = value;
        }
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
      } catch (e) { /* the next event refreshes again */ }
    }, 150);
  }

  // Minimal SSE parsing: frames separated by a blank line, fields "id", "event", "data"; comments ignored.
  async function read(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.substring(0, end);
        buffer = buffer.substring(end + 2);
        const data = frame.split("\n").filter(l => l.startsWith("data: ")).map(l => l.substring(6)).join("\n");
        if (data) show(JSON.parse(data));
      }
    }
  }

  async function follow() {
    let delay = 500;
    while (!finished) {
      try {
        const headers = { Accept: "text/event-stream" };
        if (lastSeq > 0) headers["Last-Event-ID"] = String(lastSeq);
        const response = await fetch(live.dataset.events, { credentials: "same-origin", headers, cache: "no-store" });
        if (response.status === 204) { finished = true; break; } // finished, and nothing left to show
        if (response.status === 401) { setState("closed", "Session ended: sign in again"); return; }
        if (!response.ok) throw new Error("HTTP " + response.status);
        setState("open", "Live");
        delay = 500;
        await read(response);
      } catch (e) {
        if (finished) break;
        setState("retrying", "Reconnecting…");
        await new Promise(resolve => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 8000);
      }
    }
    setState("closed", "Finished");
    if (lastSeq > renderedSeq) scheduleRefresh();
  }

  setState("connecting", "Connecting…");
  follow();
})();

// Ansible: a run's output box opens at its end, where the recap and the failures are.
(function () {
  "use strict";
  const output = document.getElementById("stdout");
  if (output) output.scrollTop = output.scrollHeight;
})();
