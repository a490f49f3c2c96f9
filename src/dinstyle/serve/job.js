// The page's output size hint, and a request's progress and Cancel (loaded before /page.js, which calls these).
"use strict";
const POLL_MS = 400;

// The default output size keeps the long side at 2048 px (a 12 MP photo at full size takes minutes on a
// small CPU); "full size" is one click. The hint says what the photo will become.
function sizeHint() {
  const img = $("before"), full = $("full-size").checked;
  $("max-size").disabled = full;
  const w = img.naturalWidth, h = img.naturalHeight;
  if (!w || img.hidden) { $("size-hint").textContent = ""; return; }
  const long = parseInt($("max-size").value, 10);
  if (full || Math.max(w, h) <= long) {
    $("size-hint").textContent = "Output " + w + " x " + h + " (full size).";
    return;
  }
  const s = long / Math.max(w, h);
  $("size-hint").textContent = "Output " + Math.round(w * s) + " x " + Math.round(h * s) + "; full size is " + w +
    " x " + h + ".";
}

function newJobId() {  // crypto.getRandomValues works on plain http too (randomUUID needs https)
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// Progress comes from GET /api/jobs/ID: tile passes done (large photos run in tiles), else the DIN levels
// passed, and the seconds since the press.
function showProgress(job) {
  const st = job.last, bar = $("progress");
  if (job.cancelled) return;
  const secs = ((performance.now() - job.t0) / 1000).toFixed(1) + " s";
  let text = "Sending the photo";
  bar.removeAttribute("value");
  if (st && st.state === "queued") {
    text = st.ahead ? "Waiting for " + st.ahead + " request" + (st.ahead === 1 ? "" : "s") + " ahead" : "Starting";
  } else if (st && st.state === "paused") {
    text = "Paused while a smaller request runs";
  } else if (st && st.stage === "stylizing" && st.total > 0) {
    text = "Stylizing: " + st.done + " of " + st.total + " tile passes";
    bar.max = st.total; bar.value = st.done;
  } else if (st && st.stage === "stylizing") {
    text = "Stylizing: " + st.steps + " level" + (st.steps === 1 ? "" : "s") + " done";
  } else if (st && st.state !== "queued") {
    text = st.stage.charAt(0).toUpperCase() + st.stage.slice(1);
  }
  $("progress-text").textContent = text + " · " + secs;
  $("busy").hidden = false;
}

async function poll(job) {
  showProgress(job);  // the clock moves on even when a poll is slow
  if (job.polling) return;
  job.polling = true;
  try {
    const r = await fetch("/api/jobs/" + job.id, { cache: "no-store" });
    if (r.ok && state.job === job) { job.last = await r.json(); showProgress(job); }
  } catch (e) { /* not registered yet (still uploading), or a hiccup: the next poll tries again */ }
  finally { job.polling = false; }
}

function cancelJob() {
  const job = state.job;
  if (!job || job.cancelled) return;
  job.cancelled = true;
  setStatus("Cancelling...");
  // Both: the DELETE reaches the server even through a proxy that keeps its own connection open, and
  // abort() ends the upload or the wait (the server also cancels when the connection closes).
  fetch("/api/jobs/" + job.id, { method: "DELETE" }).catch(() => {});
  job.controller.abort();
}
