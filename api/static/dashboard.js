// mieruka dashboard: the live demand period (gauge with the period's clock, the
// target line and the prediction), live channel values, today's profile against
// its baseline, open findings.  No libraries, no CDN.
//
// The token: open /dashboard#token=YOUR_TOKEN (a URL fragment is never sent to a
// server, so it is never in an access log) or type it into the form.  It is kept
// in this tab's sessionStorage only, sent as `Authorization: Bearer`, and the
// fragment is removed from the address bar at once.
"use strict";

const LABELS = {
  ja: {live: "最新値", profile: "日負荷曲線とベースライン", findings: "検出されたムダ",
       kind: "種類", channel: "計測点", kwh: "kWh", jpy: "金額 (円)", co2: "t-CO2", expl: "説明",
       today: "本日", baseline: "ベースライン", updated: "更新", token: "APIトークン", none: "なし",
       standby: "待機電力", air_leak: "エア漏れ", baseline_gap: "ベースライン超過",
       air_leak_growth: "エア漏れの増加", base_load: "常時運転負荷（要見直し）",
       compressor_profile: "コンプレッサー運転", workday: "稼働日", saturday: "土曜",
       sunday_holiday: "日曜・祝日", company_holiday: "会社休日", days: "日", ok: "正常", stale: "更新なし", fault: "異常", no_data: "データなし",
       last: "最終", latest_day: "最新データの日", no_profile: "この計測点にはデータがありません",
       no_profile_day: "この日のデータがありません", last_reading: "最新の値",
       demand: "デマンド", so_far: "現在までの平均", present: "現在電力", predicted: "予測デマンド", target: "目標",
       contract: "契約電力", left: "残り", stage0: "正常", stage_warn: "注意", stage_alarm: "警報", stage_limit: "限界",
       coverage: "計測率", no_demand: "デマンドの現在値はまだありません",
       no_demand_hint: "（コレクタ mieruka collect がこの設定で動いているか確認してください）", stale_demand: "コレクタの更新が止まっています"},
  en: {live: "Latest values", profile: "Day profile against its baseline", findings: "Open findings",
       kind: "Kind", channel: "Channel", kwh: "kWh", jpy: "yen", co2: "t-CO2", expl: "Explanation",
       today: "today", baseline: "baseline", updated: "updated", token: "API token", none: "none",
       standby: "Standby power", air_leak: "Air leak", baseline_gap: "Baseline gap",
       air_leak_growth: "Air leak growth", base_load: "Base load (to review)",
       compressor_profile: "Compressor profile", workday: "workday", saturday: "Saturday",
       sunday_holiday: "Sunday/holiday", company_holiday: "company holiday", days: "days", ok: "ok", stale: "stale", fault: "fault", no_data: "no data",
       last: "last", latest_day: "latest day with data", no_profile: "this channel has no data",
       no_profile_day: "no data on this day", last_reading: "latest reading",
       demand: "Demand", so_far: "so far", present: "present", predicted: "predicted", target: "target",
       contract: "contract", left: "left", stage0: "normal", stage_warn: "warning", stage_alarm: "alarm", stage_limit: "limit",
       coverage: "coverage", no_demand: "No live demand yet", no_demand_hint: "", stale_demand: "The collector has stopped updating"},
};
let L = LABELS.ja;
let LANG = "ja";
let TZ = "Asia/Tokyo";
let channelsById = {};
const SVGNS = "http://www.w3.org/2000/svg";

// add(tag, attrs, text): a new SVG element in `svg` (the charts and the demand gauge draw with it)
function svgAdder(svg) {
  return (tag, attrs, text) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
}

function takeToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("mieruka-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("mieruka-token");
}

async function api(path) {
  const token = sessionStorage.getItem("mieruka-token");
  if (!token) {         // dropped by a 401 of a request running beside this one: keep its message
    showLogin();
    throw new Error("401");
  }
  const r = await fetch(path, {headers: {"Authorization": "Bearer " + token}, cache: "no-store"});
  if (r.status === 401) {
    // say why (a wrong token, or one past its expiry day), then ask for another
    let detail = "";
    try { detail = (await r.json()).detail || ""; } catch (e) { /* not JSON */ }
    sessionStorage.removeItem("mieruka-token");
    showLogin();
    const box = document.getElementById("error");
    box.textContent = "401 " + detail;
    box.hidden = !detail;
    throw new Error("401");
  }
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(r.status + " " + detail);
  }
  return r.json();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v, digits) {
  if (v === null || v === undefined) return "–";
  return Number(v).toLocaleString(undefined, {maximumFractionDigits: digits, minimumFractionDigits: 0});
}

// "3 分前", "7 か月前" / "3 minutes ago", "7 months ago": an age in words, in the site's language
function ago(seconds) {
  const steps = [["second", 60], ["minute", 60], ["hour", 24], ["day", 30.44], ["month", 12], ["year", Infinity]];
  let v = Math.max(0, seconds);
  for (const [unit, next] of steps) {
    if (v < next) return new Intl.RelativeTimeFormat(LANG, {numeric: "always"}).format(-Math.floor(v), unit);
    v /= next;
  }
}

// an ISO time as "2026-04-19 23:59" in the site zone
function siteTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString("sv-SE", {timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
                                                hour: "2-digit", minute: "2-digit"});
}

function applyLabels(lang) {
  LANG = LABELS[lang] ? lang : "en";
  L = LABELS[lang] || LABELS.en;
  document.documentElement.lang = lang;
  const set = (id, key) => { document.getElementById(id).textContent = L[key]; };
  set("h-live", "live"); set("h-demand", "demand"); set("h-profile", "profile"); set("h-findings", "findings");
  set("th-kind", "kind"); set("th-channel", "channel"); set("th-kwh", "kwh");
  set("th-jpy", "jpy"); set("th-co2", "co2"); set("th-expl", "expl"); set("token-label", "token");
}

// what a channel is, in the words of the site config (設備, 工程, breaker, meter): the id
// alone ("main_power") tells an energy manager little
function describe(c) {
  if (!c) return "";
  return [c.equipment, c.process, c.breaker, c.meter].filter(x => x).join(" · ");
}

function renderChannels(items) {
  const box = document.getElementById("channels");
  box.replaceChildren();
  for (const c of items) {
    const card = el("div", "card " + c.status);
    card.dataset.channel = c.id;
    card.title = L[c.status] || c.status;
    card.append(el("div", "name", c.id));
    if (describe(c)) card.append(el("div", "desc", describe(c)));
    const v = el("span", "value", fmt(c.value, 2));
    v.id = "value-" + c.id;
    const line = el("div");
    line.append(v, el("span", "unit", c.unit || ""));
    card.append(line);
    // not only a colour: stale, fault and no data are said in words, with the age
    if (c.status === "stale") {
      card.append(el("div", "state", `${L.stale} · ${L.last} ${siteTime(c.time)} (${ago(c.age_s)})`));
    } else if (c.status === "fault") {
      card.append(el("div", "state", `${L.fault}: ${c.quality} · ${ago(c.age_s)}`));
    } else if (c.status === "no_data") {
      card.append(el("div", "state", L.no_data));
    }
    box.append(card);
  }
}

function path(xs, ys, sx, sy) {
  let d = "", pen = false;
  for (let i = 0; i < xs.length; i++) {
    if (ys[i] === null) { pen = false; continue; }
    d += (pen ? "L" : "M") + sx(xs[i]).toFixed(1) + "," + sy(ys[i]).toFixed(1);
    pen = true;
  }
  return d;
}

function renderProfile(p) {
  const box = document.getElementById("profile-chart");
  const info = channelsById[p.channel] || {};
  if (!p.today.concat(p.baseline).some(v => v !== null)) {      // nothing to draw: say so, no empty grid
    const msg = info.time ? `${p.channel}: ${L.no_profile_day} (${p.date}). ${L.last_reading}: ${siteTime(info.time)}`
                          : `${p.channel}: ${L.no_profile}`;
    box.replaceChildren(el("p", "empty", msg));
    return;
  }
  const W = 900, H = 260, ml = 56, mr = 10, mt = 40, mb = 28;
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.id = "profile-svg";
  const n = p.slots.length;
  const vals = p.today.concat(p.baseline).filter(v => v !== null);
  const ymax = Math.max(1, ...vals) * 1.1;
  const sx = i => ml + (W - ml - mr) * i / n;
  const sy = v => H - mb - (H - mt - mb) * v / ymax;
  const add = svgAdder(svg);
  for (let k = 0; k <= 4; k++) {
    const v = ymax * k / 4;
    add("line", {x1: ml, x2: W - mr, y1: sy(v), y2: sy(v), stroke: "#ddd"});
    add("text", {x: ml - 4, y: sy(v) + 4, "text-anchor": "end", "font-size": 11}, fmt(v, 1));
  }
  add("text", {x: ml - 4, y: mt - 12, "text-anchor": "end", "font-size": 12, class: "y-unit"}, info.unit || "");
  for (let h = 0; h <= 24; h += 3) {
    const x = sx(h * n / 24);
    add("text", {x: x, y: H - 8, "text-anchor": "middle", "font-size": 11}, h + ":00");
  }
  const xs = [...Array(n).keys()];
  add("path", {d: path(xs, p.baseline, sx, sy), fill: "none", stroke: "#999", "stroke-width": 2,
               "stroke-dasharray": "6 4", class: "baseline"});
  add("path", {d: path(xs, p.today, sx, sy), fill: "none", stroke: "#1f77b4", "stroke-width": 2.2, class: "today"});
  // the profile is of the latest day with data: "today" only when it is today in the site zone
  const todaySite = new Date().toLocaleDateString("sv-SE", {timeZone: TZ});
  add("text", {x: W - mr - 4, y: 13, "text-anchor": "end", "font-size": 12, fill: "#1f77b4"},
      `${p.date === todaySite ? L.today : L.latest_day} ${p.date} (${L[p.day_type] || p.day_type})`);
  add("text", {x: W - mr - 4, y: 29, "text-anchor": "end", "font-size": 12, fill: "#777"},
      `${L.baseline}: ${p.baseline_days} ${L.days}`);
  // a legend: which line is the day and which the baseline (not only by colour: solid and dashed)
  add("line", {x1: ml + 40, x2: ml + 70, y1: 9, y2: 9, stroke: "#1f77b4", "stroke-width": 2.2});
  add("text", {x: ml + 76, y: 13, "font-size": 12, class: "legend-today"}, p.date === todaySite ? L.today : p.date);
  add("line", {x1: ml + 40, x2: ml + 70, y1: 25, y2: 25, stroke: "#999", "stroke-width": 2, "stroke-dasharray": "6 4"});
  add("text", {x: ml + 76, y: 29, "font-size": 12, class: "legend-baseline"},
      `${L.baseline} (${L[p.day_type] || p.day_type})`);
  box.replaceChildren(svg);
}

function renderFindings(items) {
  const body = document.querySelector("#findings tbody");
  body.replaceChildren();
  if (!items.length) {
    const tr = el("tr"); const td = el("td", "", L.none); td.colSpan = 6; tr.append(td); body.append(tr);
    return;
  }
  for (const f of items) {
    const tr = el("tr", "finding");
    const where = el("td", "", f.channel);
    const desc = describe(channelsById[f.channel]);
    if (desc) where.append(el("div", "desc", desc));
    tr.append(el("td", "", L[f.kind] || f.kind), where, el("td", "num", fmt(f.energy_kwh, 0)),
              el("td", "num", fmt(f.cost_jpy, 0)), el("td", "num", fmt(f.co2_t, 3)), el("td", "", f.explanation));
    body.append(tr);
  }
}

// ---------------------------------------------------------------- demand gauge
const STAGE_COLORS = ["#2ca02c", "#f2c200", "#ff7f0e", "#d62728", "#8b0000"];
let demand = null;          // the last /api/v1/demand/now answer and when it came
let demandAt = 0;

function stageLabel(stage, n) {
  if (!stage) return L.stage0;
  const names = [L.stage_warn, L.stage_alarm, L.stage_limit];
  return names[Math.max(0, 3 - (n - stage) - 1)] || L.stage_warn;
}

function niceStep(x) {
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  return [1, 2, 2.5, 5, 10].map(m => m * p).find(m => m >= x) || 10 * p;
}

function mmss(s) {
  s = Math.max(0, Math.round(s));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

function renderDemand(d, tz, lang) {
  const box = document.getElementById("demand-gauge");
  const note = document.getElementById("demand-note");
  if (!d || !d.available) {
    box.replaceChildren();
    // the server's note is English: in Japanese the sentence is Japanese, the note its tooltip
    note.textContent = L.no_demand + (d && d.note && LANG !== "ja" ? " (" + d.note + ")" : L.no_demand_hint);
    note.title = (d && d.note) || "";
    note.hidden = false;
    return;
  }
  note.hidden = !d.stale;
  if (d.stale) note.textContent = L.stale_demand + " (" + fmt(d.age_s, 0) + " s)";
  const W = 1100, H = 190, cx = 80, cy = 92, r = 62, gx = 200, gw = W - gx - 40, gy = 78, gh = 34;
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.id = "demand-svg";
  const add = svgAdder(svg);
  // the period's clock: elapsed share of the period as a filled arc, the time left in the middle
  const period_s = d.period_min * 60;
  const left = Math.max(0, d.seconds_left - (Date.now() - demandAt) / 1000);
  const frac = Math.min(1, Math.max(0, 1 - left / period_s));
  add("circle", {cx: cx, cy: cy, r: r, fill: "#eef1f5", stroke: "#c8ced6"});
  const a = 2 * Math.PI * frac - Math.PI / 2;
  if (frac >= 0.999) add("circle", {cx: cx, cy: cy, r: r, fill: "#9ec5e8"});
  else if (frac > 0) add("path", {d: `M${cx},${cy} L${cx},${cy - r} A${r},${r} 0 ${frac > 0.5 ? 1 : 0} 1 ` +
                                   `${(cx + r * Math.cos(a)).toFixed(1)},${(cy + r * Math.sin(a)).toFixed(1)} Z`,
                                fill: "#9ec5e8", class: "period-clock"});
  const hm = iso => new Date(iso).toLocaleTimeString(lang === "ja" ? "ja-JP" : "en-GB",
                                                    {timeZone: tz, hour: "2-digit", minute: "2-digit"});
  add("text", {x: cx, y: cy - 4, "text-anchor": "middle", "font-size": 20, "font-weight": "bold", id: "demand-left"},
      mmss(left));
  add("text", {x: cx, y: cy + 16, "text-anchor": "middle", "font-size": 11, fill: "#555"}, L.left);
  add("text", {x: cx, y: H - 6, "text-anchor": "middle", "font-size": 12, id: "demand-period"},
      `${hm(d.start)}–${hm(d.end)}`);
  // the gauge: stage zones, demand so far (bar), the prediction (marker), target and contract lines
  const top = Math.max(d.contract_kw || 0, d.target_kw || 0, d.predicted_kw || 0, d.present_kw || 0, 1) * 1.15;
  const sx = v => gx + gw * Math.min(v, top) / top;
  const edges = [0, ...(d.stage_kw || []), top];
  for (let i = 0; i + 1 < edges.length; i++) {
    add("rect", {x: sx(edges[i]), y: gy, width: Math.max(0, sx(edges[i + 1]) - sx(edges[i])), height: gh,
                 fill: STAGE_COLORS[Math.min(i, STAGE_COLORS.length - 1)], opacity: 0.22});
  }
  add("rect", {x: gx, y: gy + 8, width: Math.max(0, sx(d.demand_so_far_kw || 0) - gx), height: gh - 16,
               fill: "#17324d", class: "so-far"});
  const step = niceStep(top / 6);
  for (let v = 0; v <= top; v += step) {
    add("line", {x1: sx(v), x2: sx(v), y1: gy + gh, y2: gy + gh + 5, stroke: "#888"});
    add("text", {x: sx(v), y: gy + gh + 34, "text-anchor": "middle", "font-size": 11, fill: "#555"}, fmt(v, 0));
  }
  add("text", {x: gx + gw, y: gy + gh + 50, "text-anchor": "end", "font-size": 11, fill: "#555"}, "kW");
  const vline = (v, color, label, dash, cls, ly) => {
    add("line", {x1: sx(v), x2: sx(v), y1: ly + 4, y2: gy + gh + 2, stroke: color, "stroke-width": 2.5,
                 "stroke-dasharray": dash, class: cls});
    add("text", {x: sx(v) + 4, y: ly, "text-anchor": "start", "font-size": 11, fill: color}, `${label} ${fmt(v, 0)} kW`);
  };
  if (d.contract_kw) vline(d.contract_kw, "#666", L.contract, "4 3", "contract-line", gy - 22);
  if (d.target_kw) vline(d.target_kw, "#d62728", L.target, "", "target-line", gy - 6);
  const n = (d.stages || []).length;
  const pc = STAGE_COLORS[Math.min(d.stage, STAGE_COLORS.length - 1)];
  const px = sx(d.predicted_kw);
  add("path", {d: `M${px - 7},${gy + gh + 20} L${px + 7},${gy + gh + 20} L${px},${gy + gh + 5} Z`, fill: pc,
               stroke: "#333", class: "predicted-marker"});
  add("text", {x: px + 10, y: gy + gh + 18, "font-size": 11, fill: "#333"}, L.predicted);
  add("line", {x1: px, x2: px, y1: gy, y2: gy + gh, stroke: pc, "stroke-width": 3, class: "predicted-line"});
  // the figures a demand monitor shows
  add("text", {x: gx, y: 22, "font-size": 15, "font-weight": "bold", id: "demand-predicted"},
      `${L.predicted} ${fmt(d.predicted_kw, 1)} kW`);
  add("text", {x: gx + 260, y: 22, "font-size": 13}, `${L.present} ${fmt(d.present_kw, 1)} kW`);
  add("text", {x: gx + 450, y: 22, "font-size": 13}, `${L.so_far} ${fmt(d.demand_so_far_kw, 1)} kW`);
  add("text", {x: gx + 640, y: 22, "font-size": 13, fill: "#555"}, `${L.coverage} ${fmt(100 * d.coverage, 0)} %`);
  add("rect", {x: W - 130, y: 4, width: 90, height: 26, rx: 5, fill: d.stage ? pc : "#2ca02c"});
  const badge = add("text", {x: W - 85, y: 23, "text-anchor": "middle", "font-size": 15, "font-weight": "bold",
                             fill: "#fff", id: "demand-stage"}, stageLabel(d.stage, n));
  badge.dataset.stage = d.stage;
  box.replaceChildren(svg);
}

let site = null;

async function refreshDemand() {
  if (!site) return;
  try {
    demand = await api("/api/v1/demand/now");
    demandAt = Date.now();
    renderDemand(demand, site.timezone, site.language);
  } catch (e) { /* the main refresh reports errors */ }
}

let profileChannel = null;

async function refresh() {
  try {
    const [sites, chans] = await Promise.all([api("/api/v1/sites"), api("/api/v1/channels?limit=200")]);
    site = sites[0];
    TZ = site.timezone || TZ;
    applyLabels(site.language);
    channelsById = Object.fromEntries(chans.items.map(c => [c.id, c]));
    await refreshDemand();
    document.getElementById("site-name").textContent = site.name;
    renderChannels(chans.items);
    const power = chans.items.filter(c => c.quantity === "power_kw");
    const sel = document.getElementById("profile-channel");
    if (!sel.options.length) {
      for (const c of power) sel.append(new Option(c.id, c.id));
      const main = power.find(c => c.equipment_kind === "incomer") || power[0];
      profileChannel = main ? main.id : null;
      if (profileChannel) sel.value = profileChannel;
    }
    const jobs = [api("/api/v1/findings?limit=20").catch(e => ({items: [], error: e.message}))];
    if (profileChannel) jobs.push(api(`/api/v1/channels/${encodeURIComponent(profileChannel)}/profile`));
    const [findings, profile] = await Promise.all(jobs);
    renderFindings(findings.items);
    if (profile) renderProfile(profile);
    if (findings.error) throw new Error(findings.error);
    // the site's clock in the site's language, whatever the viewer's browser is set to
    const clock = new Date().toLocaleTimeString(site.language === "ja" ? "ja-JP" : "en-GB", {timeZone: site.timezone});
    document.getElementById("updated").textContent = `${L.updated} ${clock}`;
    document.getElementById("error").hidden = true;
    document.body.dataset.loaded = "yes";
  } catch (e) {
    if (e.message !== "401") {
      const box = document.getElementById("error");
      box.textContent = e.message;
      box.hidden = false;
    }
  }
}

function showLogin() {
  document.getElementById("main").hidden = true;
  document.getElementById("login").hidden = false;
}

function start() {
  document.getElementById("login").hidden = true;
  document.getElementById("main").hidden = false;
  refresh();
  setInterval(refresh, 15000);
  setInterval(refreshDemand, 5000);
  // the period's clock runs between answers
  setInterval(() => { if (demand && site) renderDemand(demand, site.timezone, site.language); }, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login").addEventListener("submit", ev => {
    ev.preventDefault();
    sessionStorage.setItem("mieruka-token", document.getElementById("token-input").value.trim());
    start();
  });
  document.getElementById("profile-channel").addEventListener("change", ev => {
    profileChannel = ev.target.value;
    refresh();
  });
  if (takeToken()) start(); else showLogin();
});
