// The page's script (/page.js, after /job.js: the page loads nothing from anywhere else).
"use strict";
const $ = (id) => document.getElementById(id);
const state = { content: null, contentUrl: null, styles: [], info: null, resultUrl: null, busy: false, picked: 0,
                job: null };

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text || "";
  s.className = "status" + (isError ? " error" : "");
}

function refresh() {
  $("go").disabled = state.busy || !state.content || state.styles.length === 0;
  $("cancel").hidden = !state.busy;
  const list = $("chosen");
  list.textContent = "";
  const blend = state.styles.length > 1;
  state.styles.forEach((s, i) => {
    const li = document.createElement("li");
    const img = document.createElement("img");
    img.src = s.thumb; img.alt = "";
    const what = document.createElement("span");
    what.className = "what"; what.textContent = s.label; what.title = s.label;
    li.append(img, what);
    if (blend) {
      const w = document.createElement("input");
      w.type = "number"; w.min = "0"; w.step = "0.1"; w.value = s.weight; w.setAttribute("aria-label", "weight of " + s.label);
      w.addEventListener("input", () => { s.weight = w.value; });
      li.append(w);
    }
    const x = document.createElement("button");
    x.type = "button"; x.className = "linklike"; x.textContent = "remove";
    x.addEventListener("click", () => { state.styles.splice(i, 1); refresh(); });
    li.append(x);
    list.append(li);
  });
  document.querySelectorAll(".thumb").forEach((t) => {
    const on = state.styles.some((s) => s.builtin === t.dataset.name);
    t.classList.toggle("on", on);
    t.setAttribute("aria-selected", on ? "true" : "false");
  });
}

function contentNote(text, isError) {
  const n = $("content-note");
  n.textContent = text || ""; n.hidden = !text;
  n.className = "field-note" + (isError ? " error" : "");
}

function clearContent() {
  state.content = null;
  if (state.contentUrl) URL.revokeObjectURL(state.contentUrl);
  state.contentUrl = null;
  $("before").removeAttribute("src");
  $("content-name").textContent = "";
  $("size-hint").textContent = "";
  $("stack").hidden = true; $("empty").hidden = false;
}

// The preview doubles as the check that the file is a picture: the browser decodes it once, for both.
// A file it cannot decode is refused here, beside the drop zone, unless the server opens its format
// (TIFF, TGA, ... which browsers do not show): that one is kept, without a preview.
function previewFailed(file, name) {
  const dot = name.lastIndexOf(".");
  const ext = dot >= 0 ? name.slice(dot).toLowerCase() : "";
  const serverReads = ((state.info || {}).read_extensions || []).includes(ext);
  if (serverReads && file.size > 0) {
    $("stack").classList.add("nopreview"); $("before").hidden = true; $("before-tag").hidden = true;
    contentNote("No preview: this browser cannot show " + ext + " files. Stylize still works.", false);
    return;
  }
  clearContent();
  contentNote(name + ": not a picture this page can read. Choose a photo (JPEG, PNG, WebP, ...).", true);
  refresh();
}

function setContent(file, name) {
  name = name || file.name || "photo";
  const picked = ++state.picked;  // a later choice wins over this one's pending check
  state.content = file;
  if (state.contentUrl) URL.revokeObjectURL(state.contentUrl);
  state.contentUrl = URL.createObjectURL(file);
  $("content-name").textContent = name;
  contentNote("");
  const before = $("before");
  before.onload = () => { if (picked === state.picked) { document.body.dataset.photo = "ok"; sizeHint(); } };
  before.onerror = () => { if (picked === state.picked) { previewFailed(file, name); document.body.dataset.photo = "bad"; } };
  document.body.dataset.photo = "checking";
  $("stack").classList.remove("nopreview"); before.hidden = false; $("before-tag").hidden = false;
  $("size-hint").textContent = "";
  before.src = state.contentUrl;
  $("stack").hidden = false; $("empty").hidden = true;
  showResult(null);
  setStatus("");
  refresh();
}

function showResult(url, filename) {
  if (state.resultUrl && state.resultUrl !== url) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = url;
  $("result").hidden = !url; $("divider").hidden = !url; $("after-tag").hidden = !url;
  $("download").hidden = !url; $("split").disabled = !url || $("stack").classList.contains("nopreview");
  if (url) {
    $("result").src = url;
    $("download").href = url;
    $("download").download = filename || "stylized.png";
    $("download").textContent = "Download " + (filename || "");
  } else {
    $("result").removeAttribute("src");
    $("timing").textContent = "";
  }
}

function serverTiming(header) {
  const out = {};
  (header || "").split(",").forEach((part) => {
    const m = part.trim().match(/^([\w-]+);dur=([\d.]+)/);
    if (m) out[m[1]] = parseFloat(m[2]);
  });
  return out;
}

async function stylize() {
  if (!state.content || !state.styles.length || state.busy) return;
  const info = state.info || {};
  const styleBytes = state.styles.reduce((n, s) => n + (s.file ? s.file.size : 0), 0);
  if (info.max_upload_bytes && state.content.size + styleBytes > info.max_upload_bytes) {
    setStatus("These files are too large for this server (" + Math.round(info.max_upload_bytes / 1048576) +
              " MiB per request; dinstyle serve --max-upload-mb raises it).", true);
    return;
  }
  const fd = new FormData();
  fd.append("content", state.content, $("content-name").textContent || "photo");
  state.styles.forEach((s) => s.file ? fd.append("style", s.file, s.label) : fd.append("style", "builtin:" + s.builtin));
  if (state.styles.length > 1) fd.append("style_weights", state.styles.map((s) => s.weight || "0").join(","));
  fd.append("alpha", $("alpha").value);
  fd.append("preserve_color", $("preserve").checked ? "true" : "false");
  fd.append("stroke_size", $("stroke").value);
  if (!$("full-size").checked) fd.append("max_size", $("max-size").value);
  fd.append("format", $("format").value);
  const job = { id: newJobId(), controller: new AbortController(), t0: performance.now(), cancelled: false,
                last: null, polling: false, timer: null };
  fd.append("job_id", job.id);

  state.job = job; state.busy = true; refresh();
  document.body.dataset.state = "working";
  setStatus("");
  showProgress(job);
  job.timer = setInterval(() => poll(job), POLL_MS);
  const t0 = job.t0;
  try {
    const r = await fetch("/api/stylize", { method: "POST", body: fd, signal: job.controller.signal });
    if (!r.ok) {
      let msg = "the server answered " + r.status;
      try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    const blob = await r.blob();
    const disp = r.headers.get("Content-Disposition") || "";
    const m = disp.match(/filename="([^"]+)"/);
    const timing = serverTiming(r.headers.get("Server-Timing"));
    const warning = r.headers.get("X-Dinstyle-Warning");
    const url = URL.createObjectURL(blob);
    await new Promise((resolve, reject) => {
      const img = $("result");
      img.onload = resolve; img.onerror = () => reject(new Error("the browser cannot show this image format"));
      showResult(url, m ? m[1] : "");
    });
    const ms = performance.now() - t0;
    const img = $("result");
    $("timing").textContent = img.naturalWidth + "x" + img.naturalHeight + " in " + (ms / 1000).toFixed(2) +
      " s from press to image (model " + ((timing.stylize || 0) / 1000).toFixed(2) + " s" +
      (timing.queue > 50 ? ", queued " + (timing.queue / 1000).toFixed(2) + " s" : "") + ")";
    $("timing").dataset.ms = ms.toFixed(0);
    setStatus(warning ? "Note: " + warning : "");
    document.body.dataset.state = "done";
  } catch (e) {
    if (job.cancelled) {
      setStatus("Cancelled after " + ((performance.now() - t0) / 1000).toFixed(1) + " s.");
      document.body.dataset.state = "cancelled";
    } else {
      setStatus(e.message || String(e), true);
      document.body.dataset.state = "error";
    }
  } finally {
    clearInterval(job.timer);
    $("busy").hidden = true;
    state.job = null; state.busy = false; refresh();
  }
}

function pickBuiltin(s, add) {
  const i = state.styles.findIndex((x) => x.builtin === s.name);
  if (add) {
    if (i >= 0) state.styles.splice(i, 1);
    else state.styles.push({ builtin: s.name, label: s.title + " (" + s.artist + ")", thumb: s.thumbnail, weight: "1" });
  } else {
    state.styles = [{ builtin: s.name, label: s.title + " (" + s.artist + ")", thumb: s.thumbnail, weight: "1" }];
  }
  refresh();
}

async function init() {
  const drop = $("drop");
  $("content-file").addEventListener("change", (e) => { if (e.target.files[0]) setContent(e.target.files[0]); });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const f = e.dataTransfer.files[0];
    if (f) setContent(f);
  });
  $("style-files").addEventListener("change", (e) => {
    const files = Array.from(e.target.files || []);
    if (!files.length) return;
    state.styles = files.map((f) => ({ file: f, label: f.name, thumb: URL.createObjectURL(f), weight: "1" }));
    refresh();
  });
  $("alpha").addEventListener("input", () => { $("alpha-out").textContent = parseFloat($("alpha").value).toFixed(2); });
  $("stroke").addEventListener("input", () => { $("stroke-out").textContent = parseFloat($("stroke").value).toFixed(1); });
  $("max-size").addEventListener("change", sizeHint);
  $("full-size").addEventListener("change", sizeHint);
  $("cancel").addEventListener("click", cancelJob);
  $("split").addEventListener("input", () => { $("compare").style.setProperty("--split", $("split").value + "%"); });
  $("go").addEventListener("click", stylize);
  $("example").addEventListener("click", async () => {
    const r = await fetch("/api/example");
    if (r.ok) setContent(new File([await r.blob()], "example.jpg", { type: "image/jpeg" }), "example.jpg");
  });

  try {
    const [info, styles] = await Promise.all([fetch("/api/info").then((r) => r.json()),
                                              fetch("/api/styles").then((r) => r.json())]);
    state.info = info;
    $("model").textContent = "model " + info.model + " on " + info.device;
    if (info.warnings && info.warnings.length) { $("banner").textContent = info.warnings.join(" "); $("banner").hidden = false; }
    $("example-line").hidden = !info.example;
    const gallery = $("gallery");
    styles.styles.forEach((s) => {
      const b = document.createElement("button");
      b.type = "button"; b.className = "thumb"; b.dataset.name = s.name; b.setAttribute("role", "option");
      b.title = s.title + ", " + s.artist + " (" + s.year + ")";
      const img = document.createElement("img");
      img.src = s.thumbnail; img.alt = s.title; img.loading = "lazy";
      b.append(img);
      b.addEventListener("click", (e) => pickBuiltin(s, e.shiftKey || e.ctrlKey || e.metaKey));
      gallery.append(b);
    });
    document.body.dataset.state = "ready";
  } catch (e) {
    setStatus("Cannot reach the dinstyle server: " + (e.message || e), true);
    document.body.dataset.state = "error";
  }
  refresh();
}
init();
