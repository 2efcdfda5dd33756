// zeroops dashboard: reads the figure table (/dashboard/figures.json), then the authenticated API with the bearer
// token kept in sessionStorage; live updates from the server-sent event stream (read with fetch, so the token
// travels in the Authorization header, never in a URL).  No framework, no external assets.
"use strict";

const TOKEN_KEY = "zeroops.token";
const S = { spec: null, token: null, roles: [], principal: null, ends: {}, decisions: [], query: "", shown: {},
            stream: null, timer: null, pending: new Set(), incidents: [], timelines: {}, postmortems: {}, open: new Set() };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") n.className = v; else if (k === "text") n.textContent = v; else n.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) n.append(k);
  return n;
}

function showError(msg) { const e = $("error"); e.textContent = msg || ""; e.hidden = !msg; }

async function api(path, opts = {}) {
  const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
  if (S.token) headers.Authorization = "Bearer " + S.token;
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) { signOut("The server refused the token (401); sign in again."); throw new Error("401"); }
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : r.statusText;
    throw Object.assign(new Error(`${opts.method || "GET"} ${path}: ${r.status} ${detail}`), { status: r.status, detail });
  }
  return body;
}

// ---- formatting -------------------------------------------------------------------------------------------------
function lookup(doc, path) {
  let cur = doc;
  for (const k of path.split(".")) { if (cur === null || typeof cur !== "object" || !(k in cur)) return null; cur = cur[k]; }
  return cur;
}

function fmt(v, unit) {
  if (v === null || v === undefined) return "no data";
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v !== "number") return String(v);
  switch (unit) {
    // enough digits to compare with the target: 99.9991 % against > 99.999 %, 0.0050 % against < 0.01 %
    case "percent": return (100 * v).toFixed((v >= 0.99 && v < 1) || (v > 0 && v < 0.001) ? 4 : 2) + " %";
    case "seconds": return v.toFixed(1) + " s";
    case "money": return "$" + v.toLocaleString("en-US", { maximumFractionDigits: 2, minimumFractionDigits: 2 });
    case "count": return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toFixed(2);
    default: return String(v);
  }
}

function met(t, v) {
  if (!t || v === null || v === undefined) return null;
  if (t.op === "==") return v === t.value;
  if (typeof v !== "number") return null;
  return { "<": v < t.value, "<=": v <= t.value, ">": v > t.value, ">=": v >= t.value,
           range: t.high !== null && v >= t.value && v <= t.high }[t.op];
}

function fmtTime(v) {
  if (v === null || v === undefined || v === "") return "";
  if (typeof v === "string") return v;
  if (v > 1e9) return new Date(v * 1000).toISOString().replace(".000Z", "Z");
  const s = Math.floor(v), d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  const pad = (x) => String(x).padStart(2, "0");
  return `t+${d ? d + "d " : ""}${pad(h)}:${pad(m)}:${pad(s % 60)}`;
}

function listOf(doc, ...keys) {
  if (Array.isArray(doc)) return doc;
  for (const k of keys) if (doc && Array.isArray(doc[k])) return doc[k];
  return [];
}

// An item (proposal or decision, docs/serve.md) names its action's kind and target at top level.
function kindOf(x) { return x.kind || (x.action && x.action.kind) || ""; }
function targetOf(x) {
  const t = x.target ?? (x.action && (x.action.target || x.action.service || x.action.server)) ?? "";
  return typeof t === "string" ? t : JSON.stringify(t);
}
function detailText(d) {
  if (!d) return "";
  if (typeof d === "string") return d;
  const short = (v) => typeof v === "number" && !Number.isInteger(v) ? String(+v.toPrecision(4))
                     : typeof v === "object" ? JSON.stringify(v) : String(v);
  return Object.entries(d).slice(0, 4).map(([k, v]) => `${k}=${short(v)}`).join(", ");
}

// ---- figures ----------------------------------------------------------------------------------------------------
function buildFigures() {
  $("figure-sections").replaceChildren(...S.spec.sections.map((sec) =>
    el("section", { "aria-labelledby": "sec-" + sec.id, "data-section": sec.id },
      el("table", {},
        el("caption", { id: "sec-" + sec.id }, sec.title),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Figure"), el("th", { scope: "col" }, "Measured"),
          el("th", { scope: "col", title: "from the design document: a goal, not a result" }, "Target"),
          el("th", { scope: "col" }, "Status"))),
        el("tbody", { id: "tb-" + sec.id })))));
  renderFigures({});
}

function figureRow(f, id, label, v, known) {
  const ok = known ? met(f.target, v) : null;
  return el("tr", { id, "data-figure": f.id },
    el("th", { scope: "row", title: f.help }, label),
    el("td", { class: "value", "data-raw": known ? JSON.stringify(v) : "" }, known ? fmt(v, f.unit) : "—"),
    el("td", { class: "target", title: f.target ? f.target.ref : "" }, f.target ? "target " + f.target.text : "no target"),
    el("td", { class: "status " + (ok === null ? "na" : ok ? "met" : "missed") },
      ok === null ? (f.target && known ? "not judged (no value)" : "") : ok ? "✓ meets target" : "✗ misses target"));
}

function renderFigures(docs) {
  for (const sec of S.spec.sections) {
    const rows = [];
    for (const f of S.spec.figures.filter((x) => x.section === sec.id)) {
      const doc = docs[f.source];
      if (!f.each) { rows.push(figureRow(f, "fig-" + f.id, f.label, doc ? lookup(doc, f.path) : null, !!doc)); continue; }
      const items = doc ? lookup(doc, f.each) : null;
      if (!Array.isArray(items) || !items.length) {
        rows.push(figureRow(f, "fig-" + f.id, f.label + (doc ? " (none configured)" : ""), null, false));
        continue;
      }
      for (const it of items) {
        const k = String(it[f.key]);
        rows.push(figureRow(f, `fig-${f.id}--${k}`, `${f.label}: ${k === "*" ? "all projects" : k}`, lookup(it, f.path), true));
      }
    }
    $("tb-" + sec.id).replaceChildren(...rows);
  }
}

async function refreshFigures() {
  const sources = [...new Set(S.spec.figures.map((f) => f.source))];
  const docs = {};
  await Promise.all(sources.map(async (src) => {
    try { docs[src] = await api(src); } catch (e) { if (e.message !== "401") showError(e.message); }
  }));
  if (S.token) renderFigures(docs);
}

// ---- incidents --------------------------------------------------------------------------------------------------
function timelineOf(inc, detail) {
  const ev = [{ at: inc.declared_at, what: `declared by ${inc.declared_by || "?"} (${inc.severity || ""})` }];
  for (const d of (detail && detail.timeline) || []) {
    ev.push({ at: d.at, what: `decision ${d.id} · ${d.engine || ""}: ${kindOf(d)} ${targetOf(d)} → ${d.outcome || ""}` +
                              (d.rule ? ` (${d.rule})` : "") });
  }
  if (inc.resolved_at !== null && inc.resolved_at !== undefined) ev.push({ at: inc.resolved_at, what: "resolved" });
  return ev.sort((a, b) => (a.at ?? 0) - (b.at ?? 0));
}

function incidentItem(inc) {
  const id = String(inc.id);
  const what = inc.title || (inc.components || []).join(", ") || "incident";
  const d = el("details", { "data-id": id },
    el("summary", {}, el("strong", {}, id), ` ${what} · ${inc.severity || ""} · ${inc.status || ""} · declared ${fmtTime(inc.declared_at)}`),
    el("ol", { class: "timeline", "aria-label": `Timeline of incident ${id}`, tabindex: "0" },
      ...timelineOf(inc, S.timelines[id]).map((e) => el("li", {}, el("time", {}, fmtTime(e.at)), e.what))),
    el("button", { type: "button", class: "postmortem", "data-id": id, "aria-label": `Post-mortem of incident ${id}`,
                   text: "Post-mortem" }),
    S.postmortems[id] ? el("pre", { class: "postmortem", tabindex: "0", "aria-label": `Post-mortem of ${id}` },
                           S.postmortems[id]) : null);
  if (S.open.has(id)) d.open = true;
  d.addEventListener("toggle", () => {
    // a re-render re-opens the ones the user opened (S.open has them): only a user's toggle loads a timeline
    if (d.open && !S.open.has(id)) { S.open.add(id); loadTimeline(id); } else if (!d.open) S.open.delete(id);
  });
  return el("li", { id: "incident-" + id, "data-status": inc.status || "" }, d);
}

async function loadPostmortem(id) {
  try {
    const doc = await api(S.ends.postmortem.replace("{id}", encodeURIComponent(id)));
    S.postmortems[id] = doc.markdown || "";
  } catch (e) { if (e.message !== "401") showError(e.message); return; }
  S.shown.incidents = null;
  await refreshIncidents(S.incidents);
  document.querySelector(`#incident-${CSS.escape(id)} pre.postmortem`)?.focus();
}

async function loadTimeline(id) {
  try {
    S.timelines[id] = await api(S.ends.incident.replace("{id}", encodeURIComponent(id)));
  } catch (e) { if (e.message !== "401") showError(e.message); return; }
  S.shown.incidents = null;
  await refreshIncidents(S.incidents);
}

async function refreshIncidents(cached) {
  const items = cached || listOf(await api(S.ends.incidents), "incidents", "items");
  S.incidents = items;
  // open incidents first, newest first
  items.sort((a, b) => (a.status === "resolved") - (b.status === "resolved") || (b.declared_at ?? 0) - (a.declared_at ?? 0));
  const key = JSON.stringify(items) + JSON.stringify(S.timelines) + JSON.stringify(S.postmortems);
  if (S.shown.incidents === key) return;
  S.shown.incidents = key;
  const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("details");
  const fid = focused && focused.dataset.id;
  $("incidents-empty").hidden = items.length > 0;
  $("incident-list").replaceChildren(...items.map(incidentItem));
  if (fid) document.querySelector(`#incident-list details[data-id="${CSS.escape(fid)}"] summary`)?.focus();
  if (!cached) for (const id of S.open) if (items.some((i) => String(i.id) === id)) loadTimeline(id);
}

// ---- approvals --------------------------------------------------------------------------------------------------
function canApprove() { return S.roles.includes("approver") || S.roles.includes("admin"); }

async function refreshApprovals() {
  if (S.noQueue) return;
  let doc;
  try { doc = await api(S.ends.approvals); } catch (e) {
    if (e.status !== 409) throw e;
    // no approval queue in this mode (live observe): say so once, stop asking
    S.noQueue = true;
    $("approvals-mode").textContent = `No approval queue here: ${e.detail}.`;
    $("approval-rows").replaceChildren();
    return;
  }
  const items = listOf(doc, "approvals", "proposals", "items").filter((p) => !p.status || p.status === "pending");
  const key = JSON.stringify(items) + canApprove();
  if (S.shown.approvals === key) return;
  S.shown.approvals = key;
  $("approvals-mode").textContent = canApprove()
    ? "You may approve or deny: each proposal runs through the safety gate again before it executes."
    : "Read-only: approving needs the approver role.";
  // Keyed update: a row that did not change stays the same element, so a button under the pointer or the
  // keyboard focus is never replaced while new proposals arrive.
  const tbody = $("approval-rows");
  const have = new Map([...tbody.children].filter((r) => r.dataset.key).map((r) => [r.dataset.id, r]));
  const rows = items.map((p) => {
    const k = JSON.stringify(p) + canApprove();
    const old = have.get(String(p.id));
    return old && old.dataset.key === k ? old : approvalRow(p, k);
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "7", class: "note" }, "Nothing waits for approval.")));
  for (const r of [...tbody.children]) if (!rows.includes(r)) r.remove();
  rows.forEach((r, i) => { if (tbody.children[i] !== r) tbody.insertBefore(r, tbody.children[i] || null); });
}

function approvalRow(p, key) {
  const what = `${kindOf(p)} ${targetOf(p)}`.trim();
  const votes = `${(p.approvers || []).length} of ${p.needed ?? 1}`;
  const decide = el("td", { class: "decide" });
  if (canApprove()) {
    decide.append(
      el("button", { type: "button", class: "approve", id: `approve-${p.id}`, "data-id": p.id, "data-do": "approve",
                     "aria-label": `Approve proposal ${p.id}: ${what}`, text: "Approve" }), " ",
      el("button", { type: "button", class: "deny", id: `deny-${p.id}`, "data-id": p.id, "data-do": "deny",
                     "aria-label": `Deny proposal ${p.id}: ${what}`, text: "Deny" }));
  } else decide.append(el("span", { class: "note" }, "read-only"));
  const why = [p.rule, detailText(p.detail)].filter(Boolean).join(": ");
  return el("tr", { id: "approval-" + p.id, "data-id": p.id, "data-key": key },
    el("td", {}, String(p.id)), el("td", {}, fmtTime(p.created_at)), el("td", {}, p.engine || ""),
    el("td", {}, what), el("td", {}, why), el("td", {}, votes), decide);
}

async function decide(id, what) {
  const path = S.ends[what].replace("{id}", encodeURIComponent(id));
  $("approvals-result").textContent = `${what === "approve" ? "Approving" : "Denying"} proposal ${id}…`;
  let said = "";
  try {
    await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ comment: "via dashboard" }) });
    said = `Proposal ${id} ${what === "approve" ? "approved" : "denied"}.`;
    showError("");
  } catch (e) {
    if (e.message !== "401") showError(e.message);
  }
  S.shown.approvals = null;
  await refreshApprovals().catch(() => {});
  // the clicked button is gone: the focus goes to the next proposal's button (or the queue's heading), then the news
  const next = document.querySelector("#approval-rows button:not([disabled])");
  (next || $("approvals-h")).focus();
  $("approvals-result").textContent = said;
}

// ---- self-service requests ------------------------------------------------------------------------------------
function canSubmit() { return S.roles.includes("operator"); }
const INT_FIELDS = new Set(["count", "cpus", "instances", "cores"]);
const NUM_FIELDS = new Set(["memory_gb", "storage_gb", "budget"]);

async function refreshRequests() {
  if (S.noRequests) return;
  let doc;
  try { doc = await api(S.ends.requests); } catch (e) {
    if (e.status !== 404 && e.status !== 409) throw e;
    S.noRequests = true;  // the self-service router is not mounted here
    $("requests-mode").textContent = "No self-service requests on this server.";
    $("request-form").hidden = true;
    return;
  }
  $("request-form").hidden = !canSubmit();
  $("requests-mode").textContent = canSubmit()
    ? "Operators file requests below; approvers answer the ones the policy routed to a person."
    : "Read-only: filing a request needs the operator role.";
  const items = listOf(doc, "requests", "items").slice().reverse();
  const tbody = $("request-rows");
  const have = new Map([...tbody.children].filter((r) => r.dataset.key).map((r) => [r.dataset.id, r]));
  const rows = items.map((q) => {
    const k = JSON.stringify(q) + canApprove();
    const old = have.get(String(q.id));
    return old && old.dataset.key === k ? old : requestRow(q, k);
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "11", class: "note" }, "No requests yet.")));
  for (const r of [...tbody.children]) if (!rows.includes(r)) r.remove();
  rows.forEach((r, i) => { if (tbody.children[i] !== r) tbody.insertBefore(r, tbody.children[i] || null); });
}

function requestRow(q, key) {
  const d = q.decision || {};
  const asked = detailText(q.params);
  const answer = el("td", { class: "decide" });
  // routed to a person and not answered yet (the engine's phase "waiting"; "stalled": it gave up carrying it out)
  if (canApprove() && q.status === "open" && d.verdict === "approval" && !d.approved_by
      && (d.phase === undefined || d.phase === "waiting" || d.phase === "stalled")) {
    answer.append(
      el("button", { type: "button", class: "approve", id: `rq-approve-${q.id}`, "data-id": q.id, "data-do": "request_approve",
                     "aria-label": `Approve request ${q.id}: ${q.kind} for ${q.project}`, text: "Approve" }), " ",
      el("button", { type: "button", class: "deny", id: `rq-deny-${q.id}`, "data-id": q.id, "data-do": "request_deny",
                     "aria-label": `Deny request ${q.id}: ${q.kind} for ${q.project}`, text: "Deny" }));
  }
  return el("tr", { id: "request-" + q.id, "data-id": q.id, "data-key": key, "data-verdict": d.verdict || "" },
    el("td", {}, String(q.id)), el("td", {}, fmtTime(q.submitted_at)), el("td", {}, q.project || ""),
    el("td", {}, q.requester || ""), el("td", {}, q.kind || ""), el("td", {}, asked), el("td", {}, q.status || ""),
    el("td", {}, q.decision ? `${d.verdict} · ${d.rule}${d.approved_by ? ` · approved by ${d.approved_by}` : ""}` : "deciding…"),
    el("td", {}, typeof d.cost_per_month === "number" ? fmt(d.cost_per_month, "money") : ""),
    el("td", {}, typeof d.latency_s === "number" ? fmt(d.latency_s, "seconds") : ""), answer);
}

async function submitRequest(form) {
  const params = {};
  for (const input of form.querySelectorAll(".fields input")) {
    const v = input.value.trim();
    if (!v || input.name === "project") continue;
    params[input.name] = INT_FIELDS.has(input.name) ? parseInt(v, 10) : NUM_FIELDS.has(input.name) ? parseFloat(v) : v;
  }
  const body = { kind: $("rq-kind").value, project: $("rq-project").value.trim(), params };
  try {
    const r = await api(S.ends.requests, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    $("requests-result").textContent = `Request ${r.id} filed; the policy decides it within seconds.`;
    showError("");
  } catch (e) {
    $("requests-result").textContent = "";
    if (e.message !== "401") showError(e.message);
    return;
  }
  // the decision comes at the engine's next step: look again a few times
  for (const ms of [1000, 2500, 5000, 10000]) setTimeout(() => schedule("requests"), ms);
  schedule("requests");
}

async function answerRequest(id, what) {
  let said = "";
  try {
    await api(S.ends[what].replace("{id}", encodeURIComponent(id)), { method: "POST", headers: { "Content-Type": "application/json" },
                                                                      body: JSON.stringify({ note: "via dashboard" }) });
    said = `Request ${id} ${what === "request_approve" ? "approved" : "denied"}.`;
    showError("");
  } catch (e) { if (e.message !== "401") showError(e.message); }
  await refreshRequests().catch(() => {});
  (document.querySelector("#request-rows button:not([disabled])") || $("requests-h")).focus();
  $("requests-result").textContent = said;
}

// ---- decisions --------------------------------------------------------------------------------------------------
// The search runs on the server (``q`` over kind, target, engine, rule and reason of the whole trail).
async function refreshDecisions() {
  const q = $("decision-q").value.trim();
  const doc = await api(`${S.ends.decisions}?limit=200${q ? "&q=" + encodeURIComponent(q) : ""}`);
  if (q !== $("decision-q").value.trim()) return;  // a newer search is on its way
  S.decisions = listOf(doc, "decisions", "records", "items").slice().sort((a, b) => (b.id ?? 0) - (a.id ?? 0));
  S.query = q;
  renderDecisions();
}

function decisionCells(d) {
  const verdict = d.decision || (d.verdict && typeof d.verdict === "object" ? d.verdict.decision : d.verdict) || "";
  return [String(d.id ?? ""), fmtTime(d.at ?? d.time), d.engine || "", kindOf(d), targetOf(d),
          [verdict, d.rule].filter(Boolean).join(" · "), d.outcome || d.status || ""];
}

function renderDecisions() {
  const rows = S.decisions.map(decisionCells);
  const key = S.query + "|" + JSON.stringify(rows);
  if (S.shown.decisions === key) return;
  S.shown.decisions = key;
  $("decision-rows").replaceChildren(...rows.map((c) => el("tr", { "data-id": c[0] }, ...c.map((x) => el("td", {}, x)))));
  $("decision-count").textContent = S.query ? `${rows.length} newest decisions matching “${S.query}”`
                                            : `the ${rows.length} newest decisions`;
  document.body.dataset.decisionQuery = S.query;
}

// ---- live updates -----------------------------------------------------------------------------------------------
const REFRESH = { figures: refreshFigures, incidents: refreshIncidents, approvals: refreshApprovals,
                  requests: refreshRequests, decisions: refreshDecisions };

function schedule(...what) {
  if (!S.token) return;
  for (const w of what.length ? what : Object.keys(REFRESH)) S.pending.add(w);
  if (S.timer) return;
  S.timer = setTimeout(async () => {
    S.timer = null;
    const todo = [...S.pending]; S.pending.clear();
    await Promise.all(todo.map(async (w) => {
      if (!S.token) return;
      try { await REFRESH[w](); } catch (e) { if (e.message !== "401") showError(e.message); }
    }));
    document.body.dataset.refreshed = String(Date.now());
  }, 500);
}

// Event kinds (docs/serve.md): status every 2 s, decision, incident, approval; each names what to re-read.
// Requests have no event of their own: the status tick re-reads them (a decided request changes no other panel).
const ON_EVENT = { status: ["figures", "requests"], decision: ["decisions", "figures"], incident: ["incidents", "figures"],
                   approval: ["approvals", "figures"] };

function onEvent(type) {
  $("live").textContent = `Live updates: on (last event: ${type} at ${new Date().toLocaleTimeString()})`;
  document.body.dataset.lastEvent = type;
  schedule(...(ON_EVENT[type] || Object.keys(REFRESH)));
}

async function stream() {
  const ctl = new AbortController();
  S.stream = ctl;
  let wait = 1000;
  while (!ctl.signal.aborted) {
    try {
      const r = await fetch(S.ends.events, { headers: { Accept: "text/event-stream", Authorization: "Bearer " + S.token },
                                             signal: ctl.signal });
      if (!r.ok) throw new Error(`events: ${r.status}`);
      $("live").textContent = "Live updates: on";
      wait = 1000;
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          let type = "message";
          for (const line of block.split("\n")) if (line.startsWith("event:")) type = line.slice(6).trim();
          if (block.split("\n").some((l) => l && !l.startsWith(":"))) onEvent(type);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      $("live").textContent = `Live updates: reconnecting (${e.message || e})`;
    }
    if (ctl.signal.aborted) return;
    $("live").textContent = "Live updates: reconnecting…";
    await new Promise((res) => setTimeout(res, wait));
    wait = Math.min(wait * 2, 15000);
  }
}

// ---- session ----------------------------------------------------------------------------------------------------
async function signIn(token) {
  S.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  let me;
  try { me = await api(S.ends.whoami); } catch (e) { if (e.message !== "401") showError(e.message); return; }
  S.principal = me.principal || me.name || me.sub || "?";
  S.roles = me.roles || (me.role ? [me.role] : []);
  $("whoami").textContent = `Signed in as ${S.principal} (${S.roles.join(", ") || "no role"})`;
  $("signout").hidden = false; $("token").value = ""; showError("");
  document.body.dataset.roles = S.roles.join(" ");
  S.shown = {};
  schedule();
  stream();
}

function signOut(msg) {
  if (S.stream) S.stream.abort();
  S.token = null; S.roles = []; S.shown = {};
  sessionStorage.removeItem(TOKEN_KEY);
  $("whoami").textContent = "Not signed in."; $("live").textContent = "Live updates: off";
  $("signout").hidden = true;
  for (const id of ["approval-rows", "decision-rows", "incident-list", "request-rows"]) $(id).replaceChildren();
  $("request-form").hidden = true; $("requests-mode").textContent = ""; S.noRequests = false;
  S.timelines = {}; S.postmortems = {}; S.open.clear(); S.decisions = []; S.incidents = []; S.noQueue = false;
  renderFigures({});
  $("approvals-mode").textContent = ""; $("decision-count").textContent = "";
  delete document.body.dataset.roles;
  showError(msg || "");
}

async function main() {
  S.spec = await (await fetch("/dashboard/figures.json")).json();
  S.ends = S.spec.endpoints;
  buildFigures();
  $("login").addEventListener("submit", (ev) => { ev.preventDefault(); const t = $("token").value.trim(); if (t) signIn(t); });
  $("signout").addEventListener("click", () => signOut());
  let typing = null;
  $("decision-q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => schedule("decisions"), 250); });
  $("decision-search").addEventListener("submit", (ev) => { ev.preventDefault(); schedule("decisions"); });
  $("incident-list").addEventListener("click", (ev) => {
    const b = ev.target.closest("button.postmortem");
    if (b) loadPostmortem(b.dataset.id);
  });
  $("request-form").addEventListener("submit", (ev) => { ev.preventDefault(); submitRequest(ev.target); });
  $("request-rows").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-do]");
    if (b) { b.disabled = true; answerRequest(b.dataset.id, b.dataset.do); }
  });
  $("approval-rows").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-do]");
    if (b) { b.disabled = true; decide(b.dataset.id, b.dataset.do); }
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) await signIn(saved);
  document.body.dataset.ready = "1";
}

main().catch((e) => showError("The dashboard failed to start: " + e.message));
