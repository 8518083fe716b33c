// The arena's page script: keeps the server-rendered tiles, chart and
// boards live, and wires the account's buttons and the keyboard. Every page
// works without it; with it, an element that carries `data-topic` follows
// that live topic over the WebSocket (Server-Sent Events where a WebSocket
// cannot connect), at the plan's cadence, and redraws itself from the very
// body the API serves. Plans without live push reload their snapshot each
// minute instead.

const POLL_EVERY_MS = 60_000;

// ---- formatting: the same text the server renders (web/format.rs) ----

const grouped = (n, digits = 0) =>
  Number(n).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

const FORMAT = {
  count: (v) => grouped(Math.trunc(v)),
  money: (v) => grouped(Math.trunc(v) / 100, 2),
  points: (v) => grouped(v, 1),
  score: (v) => Number(v).toFixed(1),
};

const show = (unit, value) => (FORMAT[unit] || FORMAT.count)(value);

function asOfText(rfc3339) {
  const at = new Date(rfc3339);
  if (Number.isNaN(at.getTime())) return rfc3339;
  const month = at.toLocaleString("en-US", { month: "short", timeZone: "UTC" });
  const hh = String(at.getUTCHours()).padStart(2, "0");
  const mm = String(at.getUTCMinutes()).padStart(2, "0");
  return `${at.getUTCDate()} ${month} ${hh}:${mm} UTC`;
}

function pulse(element) {
  element.classList.remove("pulse");
  // Restart the animation: reading layout commits the removal first.
  void element.offsetWidth;
  element.classList.add("pulse");
}

// The section's own "as of", and the page's badge: the newest data shown.
function stampFreshness(root, asOf) {
  const targets = [...root.querySelectorAll("[data-as-of]")];
  const badge = document.querySelector(".page-head [data-as-of]");
  if (badge) targets.push(badge);
  for (const el of targets) {
    el.dataset.asOf = asOf;
    const text = el.matches("[data-as-of-text]") ? el : el.querySelector("[data-as-of-text]");
    if (text) text.textContent = `as of ${asOfText(asOf)}`;
  }
}

// ---- boards: rows keyed by artist, moved with a FLIP animation ----

function rowFor(entry) {
  const row = document.createElement("tr");
  row.dataset.artist = entry.artist_id;
  const rank = document.createElement("td");
  rank.className = "rank";
  const name = document.createElement("td");
  name.className = "name";
  const link = document.createElement("a");
  link.href = `/app/artists/${encodeURIComponent(entry.artist_id)}`;
  name.append(link);
  const value = document.createElement("td");
  value.className = "num";
  value.dataset.cell = "value";
  row.append(rank, name, value);
  return row;
}

function drawBoard(section, body) {
  const tbody = section.querySelector("tbody");
  if (!tbody) return;
  const unit = section.dataset.unit;
  const valueName = unit === "score" ? "score" : "value";
  const around = body.artist_id;
  const before = new Map();
  for (const row of tbody.rows) before.set(row.dataset.artist, row.getBoundingClientRect().top);
  const kept = new Map([...tbody.rows].map((row) => [row.dataset.artist, row]));
  const rows = (body.entries || []).map((entry) => {
    const row = kept.get(entry.artist_id) || rowFor(entry);
    const value = entry[valueName];
    row.cells[0].textContent = entry.rank;
    row.cells[1].firstChild.textContent = entry.artist_name || entry.artist_id;
    row.cells[2].textContent = show(unit, value);
    row.classList.toggle("mine", around === entry.artist_id);
    if (row.dataset.value !== undefined && Number(row.dataset.value) !== value) pulse(row);
    row.dataset.value = value;
    return row;
  });
  tbody.replaceChildren(...rows);
  const reduced = matchMedia("(prefers-reduced-motion: reduce)").matches;
  for (const row of rows) {
    const top = before.get(row.dataset.artist);
    if (top === undefined) {
      if (before.size) pulse(row);
      continue;
    }
    const moved = top - row.getBoundingClientRect().top;
    if (moved && !reduced) {
      row.animate([{ transform: `translateY(${moved}px)` }, { transform: "none" }], {
        duration: 450,
        easing: "cubic-bezier(.2,.7,.2,1)",
      });
    }
  }
  const head = body.head || body;
  const total = section.querySelector("[data-total]");
  if (total && head.total_ranked !== undefined) total.textContent = head.total_ranked;
  if (head.as_of) stampFreshness(section, head.as_of);
}

// ---- KPI tiles and the series chart ----

const FIELDS = { plays: "plays", votes: "votes", attendance: "attendance", revenue: "revenue_minor", engagement: "engagement" };
const MAX_BUCKETS = 1000;
const WIDTH = 720;
const HEIGHT = 200;

function buckets(range, step) {
  const from = Date.parse(range.from) / 1000;
  const to = Date.parse(range.to) / 1000;
  let first = Math.floor(from / step) * step;
  let n = Math.max(1, Math.ceil((to - first) / step));
  if (n > MAX_BUCKETS) {
    first += (n - MAX_BUCKETS) * step;
    n = MAX_BUCKETS;
  }
  return { first, n };
}

function path(values, max) {
  const n = Math.max(values.length, 2) - 1;
  return values
    .map((v, i) => `${i ? "L" : "M"}${((i * WIDTH) / n).toFixed(1)},${(HEIGHT - (v / max) * (HEIGHT - 10)).toFixed(1)}`)
    .join(" ");
}

function drawChart(figure, body) {
  const step = Number(figure.dataset.step);
  const field = figure.dataset.field;
  const { first, n } = buckets(body.range, step);
  const values = new Array(n).fill(0);
  for (const point of body.series || []) {
    const i = Math.floor((Date.parse(point.t) / 1000 - first) / step);
    if (i >= 0 && i < n) values[i] += point[field] || 0;
  }
  const previous = JSON.parse(figure.dataset.previous || "null");
  const max = Math.max(1, ...values, ...(previous || []));
  figure.querySelector('[data-line="current"]')?.setAttribute("d", path(values, max));
  const before = figure.querySelector('[data-line="previous"]');
  if (before && previous) before.setAttribute("d", path(previous, max));
}

function drawKpis(section, body) {
  for (const tile of section.querySelectorAll("[data-kpi]")) {
    const value = body.totals?.[FIELDS[tile.dataset.kpi]];
    if (value === undefined) continue;
    if (Number(tile.dataset.value) !== value) {
      tile.querySelector('[data-cell="value"]').textContent = show(tile.dataset.unit, value);
      tile.dataset.value = value;
      pulse(tile.querySelector("a") || tile);
    }
  }
  const figure = section.querySelector("[data-chart]");
  if (figure) drawChart(figure, body);
  const watermark = section.querySelector("[data-watermark]");
  if (watermark) watermark.textContent = body.watermark;
  if (body.as_of) stampFreshness(section, body.as_of);
}

function draw(section, topic, body) {
  if (topic.kind === "kpis") drawKpis(section, body);
  else if (topic.kind === "pipeline") drawPipeline(section, body);
  else if (topic.kind === "audit") drawAudit(section, body);
  else drawBoard(section, body);
}

// ---- the DIA panel: the pipeline's figures and charts, the audit log ----

const ADMIN_UNITS = {
  count: (v) => grouped(Math.trunc(v)),
  rate: (v) => Number(v).toFixed(1),
  percent: (v) => `${(v * 100).toFixed(1)} %`,
  ms: (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`),
};
const FIGURE_UNITS = {
  queue_depth: "count", ingest_per_s: "rate", processed_per_s: "rate", error_rate_10m: "percent",
  latency_p50_ms: "ms", latency_p95_ms: "ms", latency_p99_ms: "ms", dead_letters: "count", unrecognized: "count",
};

function pipelineValue(body, field) {
  const latency = field.match(/^latency_(p\d+)_ms$/);
  return latency ? body.latency_ms[latency[1]] : body[field];
}

function drawPipeline(section, body) {
  for (const tile of section.querySelectorAll("[data-figure]")) {
    const field = tile.dataset.figure;
    const text = ADMIN_UNITS[FIGURE_UNITS[field]](pipelineValue(body, field));
    const value = tile.querySelector("[data-figure-value]");
    if (value.textContent !== text) {
      value.textContent = text;
      pulse(tile);
    }
  }
  const status = document.querySelector("[data-processing-status]");
  if (status) status.textContent = body.paused ? "Processing paused" : "Processing";
  const span = Number(section.querySelector(".admin-charts")?.dataset.span || 3600) * 1000;
  // One reading per pixel of the chart at most: a reading closer to the
  // previous one than that replaces it, so a day's chart holds ~720 points.
  const spacing = span / 720;
  const now = Date.now();
  for (const chart of section.querySelectorAll("[data-admin-chart]")) {
    if (!chartPoints.has(chart)) chartPoints.set(chart, JSON.parse(chart.dataset.points));
    const points = chartPoints.get(chart);
    const lines = [...chart.querySelectorAll("[data-series]")];
    const last = points.t.length - 1;
    const replace = last >= 1 && now - points.t[last - 1] < spacing;
    if (replace) points.t[last] = now;
    else points.t.push(now);
    for (const line of lines) {
      const values = (points[line.dataset.series] ||= []);
      if (replace) values[values.length - 1] = pipelineValue(body, line.dataset.series);
      else values.push(pipelineValue(body, line.dataset.series));
    }
    while (points.t.length && points.t[0] < now - span) {
      points.t.shift();
      for (const line of lines) points[line.dataset.series].shift();
    }
    const unit = chart.dataset.unit;
    let max = unit === "percent" ? 0.01 : 1;
    for (const line of lines) for (const v of points[line.dataset.series]) if (v > max) max = v;
    // From the first reading when the engine is younger than the span.
    const from = Math.max(now - span, points.t[0] ?? now);
    const width = Math.max(1000, now - from);
    for (const line of lines) {
      const values = points[line.dataset.series];
      line.setAttribute("d", values.map((v, i) => {
        const x = Math.max(0, ((points.t[i] - from) / width) * 720);
        return `${i ? " L" : "M"}${x.toFixed(1)} ${(160 - (v / max) * 152).toFixed(1)}`;
      }).join(""));
    }
    const latest = chart.querySelector("[data-chart-latest]");
    const labels = [...chart.querySelectorAll(".legend")].map((l) => l.textContent);
    latest.textContent = lines
      .map((l, i) => `${labels[i]} ${ADMIN_UNITS[unit](pipelineValue(body, l.dataset.series))}`)
      .join(" · ");
    chart.dataset.updated = String(now);
  }
}

// The charts' readings, parsed once from the page and kept here.
const chartPoints = new WeakMap();

function drawAudit(section, body) {
  const tbody = section.querySelector("[data-audit] tbody");
  if (!tbody) return;
  const known = new Set([...tbody.rows].map((row) => row.dataset.auditId));
  tbody.replaceChildren(...body.items.map((item) => {
    const row = document.createElement("tr");
    row.dataset.auditId = String(item.id);
    const detail = item.detail && Object.keys(item.detail).length ? JSON.stringify(item.detail) : "";
    for (const [text, cls] of [[asOfText(item.at), ""], [item.actor, ""], [item.action, ""], [item.subject, ""], [detail, "detail"]]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (cls) cell.className = cls;
      row.append(cell);
    }
    if (!known.has(String(item.id))) pulse(row);
    return row;
  }));
  section.querySelector("[data-audit-empty]")?.remove();
}

// ---- following topics: WebSocket, else SSE, else polling ----

function restUrl(topic) {
  const { kind, metric, domain, artist_id: artist, ...params } = topic;
  const path = {
    leaderboard: `/v1/leaderboards/${encodeURIComponent(metric)}`,
    around: `/v1/leaderboards/${encodeURIComponent(metric)}/around/${encodeURIComponent(artist)}`,
    dna_leaderboard: `/v1/dna/leaderboards/${encodeURIComponent(domain)}`,
    kpis: "/v1/kpis",
    pipeline: "/v1/admin/pipeline",
    audit: "/v1/admin/audit",
  }[kind];
  const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
  return `${path}?${query}`;
}

function follow(subscriptions) {
  if (!subscriptions.length) return;
  const live = document.body.dataset.live;
  if (live === "poll") return poll(subscriptions);
  if (!("WebSocket" in window)) return sse(subscriptions);
  let opened = false;
  let retry = 1000;
  const watermarks = new Map();
  const connect = () => {
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/live`);
    socket.addEventListener("open", () => {
      opened = true;
      retry = 1000;
      subscriptions.forEach(({ topic }, i) => {
        const frame = { op: "subscribe", id: `t${i}`, topic };
        if (watermarks.has(i)) frame.since = watermarks.get(i);
        socket.send(JSON.stringify(frame));
      });
    });
    socket.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      const i = Number(String(frame.id || "").slice(1));
      const subscription = subscriptions[i];
      if (!subscription) return;
      if (frame.op === "update") {
        watermarks.set(i, frame.watermark);
        draw(subscription.section, subscription.topic, frame.data);
        document.body.dataset.lastUpdate = String(Date.now());
      } else if (frame.op === "error") {
        subscription.section.dataset.liveError = frame.problem?.type || "error";
      }
    });
    socket.addEventListener("close", () => {
      // A proxy without WebSocket: fall back to SSE; otherwise reconnect.
      if (!opened) return sse(subscriptions);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30_000);
    });
  };
  connect();
}

function sse(subscriptions) {
  if (!("EventSource" in window)) return poll(subscriptions);
  for (const { section, topic } of subscriptions) {
    const query = new URLSearchParams(Object.entries(topic).map(([k, v]) => [k, String(v)]));
    const source = new EventSource(`/v1/live/sse?${query}`);
    source.addEventListener("update", (event) => draw(section, topic, JSON.parse(event.data)));
  }
}

function poll(subscriptions) {
  setInterval(async () => {
    if (document.hidden) return;
    for (const { section, topic } of subscriptions) {
      const response = await fetch(restUrl(topic), { credentials: "same-origin" });
      if (response.ok) draw(section, topic, await response.json());
    }
  }, POLL_EVERY_MS);
}

// ---- account: billing and API keys through the API ----

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) throw new Error(data.detail || data.title || `HTTP ${response.status}`);
  return data;
}

function say(text) {
  const status = document.querySelector("[data-billing-status]");
  if (!status) return;
  status.hidden = false;
  status.textContent = text;
}

function wireAccount() {
  for (const button of document.querySelectorAll("[data-checkout]")) {
    button.addEventListener("click", async () => {
      try {
        location.assign((await api("POST", "/v1/billing/checkout", { plan: button.dataset.checkout })).url);
      } catch (error) {
        say(error.message);
      }
    });
  }
  document.querySelector("[data-portal]")?.addEventListener("click", async () => {
    try {
      location.assign((await api("POST", "/v1/billing/portal")).url);
    } catch (error) {
      say(error.message);
    }
  });
  const form = document.querySelector("[data-create-key]");
  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const created = await api("POST", "/v1/api-keys", { name: form.elements.name.value });
    const shown = document.querySelector("[data-new-key]");
    shown.querySelector("[data-key-text]").textContent = created.key;
    shown.hidden = false;
    form.reset();
  });
  document.querySelector("[data-copy]")?.addEventListener("click", () =>
    navigator.clipboard?.writeText(document.querySelector("[data-key-text]").textContent),
  );
  for (const button of document.querySelectorAll("[data-revoke]")) {
    button.addEventListener("click", async () => {
      await api("DELETE", `/v1/api-keys/${button.dataset.revoke}`);
      button.closest("tr").remove();
    });
  }
}

// ---- keyboard: `/` searches, 1–6 switch the range ----

function wireKeys() {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, select, textarea")) return;
    if (event.key === "/") {
      const search = document.querySelector("[data-search]");
      if (search) {
        event.preventDefault();
        search.focus();
      }
      return;
    }
    const range = document.querySelector(`[data-range-key="${event.key}"]`);
    if (range) range.click();
  });
}

const subscriptions = [...document.querySelectorAll("[data-topic]")].map((section) => ({
  section,
  topic: JSON.parse(section.dataset.topic),
}));
follow(subscriptions);
// ---- copy buttons: a share link's address to the clipboard ----

function wireCopy() {
  for (const button of document.querySelectorAll("[data-copy-text]")) {
    button.addEventListener("click", async () => {
      await navigator.clipboard?.writeText(button.dataset.copyText);
      button.textContent = "Copied";
    });
  }
}

// ---- the DIA panel's actions: through the admin API, then a fresh page ----

function confirmed(title, text) {
  const dialog = document.querySelector("[data-confirm]");
  if (!dialog?.showModal) return Promise.resolve(window.confirm(`${title}\n\n${text}`));
  dialog.querySelector("[data-confirm-title]").textContent = title;
  dialog.querySelector("[data-confirm-text]").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true }));
}

// Runs an admin action; a failure is shown on the page, not swallowed.
async function act(run) {
  try {
    await run();
  } catch (error) {
    const shown = document.querySelector("[data-admin-error]");
    if (!shown) return;
    shown.textContent = error.message;
    shown.hidden = false;
  }
}

function wireAdmin() {
  if (!document.querySelector("[data-admin]")) return;
  for (const button of document.querySelectorAll("[data-pipeline]")) {
    button.addEventListener("click", async () => {
      const pause = button.dataset.pipeline === "pause";
      const ok = await confirmed(
        pause ? "Pause processing?" : "Resume processing?",
        pause
          ? "Ingestion goes on and entries wait; no figure moves until processing resumes. The audit log records who paused."
          : "Processing resumes where it stopped and works through the entries that waited.",
      );
      if (!ok) return;
      await act(async () => {
        await api("POST", `/v1/admin/pipeline/${pause ? "pause" : "resume"}`);
        location.reload();
      });
    });
  }
  for (const button of document.querySelectorAll("[data-replay]")) {
    button.addEventListener("click", async () => {
      const all = button.dataset.replay === "all";
      if (all && !(await confirmed("Replay every dead letter?", "Each is processed again; those that fail again return here."))) return;
      await act(async () => {
        await api("POST", all ? "/v1/admin/dead-letters/replay" : `/v1/admin/dead-letters/${button.dataset.replay}/replay`);
        location.reload();
      });
    });
  }
  for (const form of document.querySelectorAll("[data-rule-form]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const shown = form.querySelector("[data-form-error]");
      const field = (name) => Number(form.elements[name].value);
      const numbers = ["fire_threshold", "clear_threshold", "for_s", "keep_firing_for_s"];
      const bad = numbers.find((name) => !Number.isFinite(field(name)));
      if (bad) {
        shown.textContent = `${form.elements[bad].closest("label").textContent.trim()} must be a number`;
        shown.hidden = false;
        return;
      }
      const change = {
        fire_threshold: field("fire_threshold"),
        clear_threshold: field("clear_threshold"),
        for_s: field("for_s"),
        keep_firing_for_s: field("keep_firing_for_s"),
        severity: form.elements.severity.value,
        routes: [...form.querySelectorAll('input[name="routes"]:checked')].map((box) => box.value),
      };
      try {
        await api("PUT", `/v1/admin/alerts/${form.dataset.ruleForm}`, change);
        location.reload();
      } catch (error) {
        shown.textContent = error.message;
        shown.hidden = false;
      }
    });
  }
  for (const button of document.querySelectorAll("[data-silence]")) {
    button.addEventListener("click", async () => {
      const hours = Number(button.dataset.hours);
      const until = hours ? new Date(Date.now() + hours * 3_600_000).toISOString() : null;
      await act(async () => {
        await api("POST", `/v1/admin/alerts/${button.dataset.silence}/silence`, { until });
        location.reload();
      });
    });
  }
  // The rules' state, every few seconds (the rules change at the evaluator's pace).
  setInterval(async () => {
    if (document.hidden) return;
    const response = await fetch("/v1/admin/alerts", { credentials: "same-origin" });
    if (!response.ok) return;
    for (const rule of (await response.json()).rules) {
      const row = document.querySelector(`[data-rule="${rule.rule}"]`);
      if (!row) continue;
      const state = row.querySelector("[data-rule-state]");
      if (state.textContent !== rule.state) {
        state.textContent = rule.state;
        state.className = `alert-state alert-${rule.state}`;
        pulse(row);
      }
      row.querySelector("[data-rule-value]").textContent = rule.value_text;
    }
  }, 3000);
}

wireAccount();
wireKeys();
wireCopy();
wireAdmin();
