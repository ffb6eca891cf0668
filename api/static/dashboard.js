// mieruka dashboard: live channel values, today's profile against its baseline,
// open findings.  No libraries, no CDN.
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
       compressor_profile: "コンプレッサー運転", workday: "稼働日", saturday: "土曜",
       sunday_holiday: "日曜・祝日", company_holiday: "会社休日", days: "日", ok: "正常", stale: "更新なし", fault: "異常", no_data: "データなし",
       last: "最終", latest_day: "最新データの日", no_profile: "この計測点にはデータがありません",
       no_profile_day: "この日のデータがありません", last_reading: "最新の値"},
  en: {live: "Latest values", profile: "Day profile against its baseline", findings: "Open findings",
       kind: "Kind", channel: "Channel", kwh: "kWh", jpy: "yen", co2: "t-CO2", expl: "Explanation",
       today: "today", baseline: "baseline", updated: "updated", token: "API token", none: "none",
       standby: "Standby power", air_leak: "Air leak", baseline_gap: "Baseline gap",
       compressor_profile: "Compressor profile", workday: "workday", saturday: "Saturday",
       sunday_holiday: "Sunday/holiday", company_holiday: "company holiday", days: "days", ok: "ok", stale: "stale", fault: "fault", no_data: "no data",
       last: "last", latest_day: "latest day with data", no_profile: "this channel has no data",
       no_profile_day: "no data on this day", last_reading: "latest reading"},
};
let L = LABELS.ja;
let LANG = "ja";
let TZ = "Asia/Tokyo";
let channelsById = {};
const SVGNS = "http://www.w3.org/2000/svg";

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
  const r = await fetch(path, {headers: {"Authorization": "Bearer " + token}, cache: "no-store"});
  if (r.status === 401) {
    sessionStorage.removeItem("mieruka-token");
    showLogin();
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
  set("h-live", "live"); set("h-profile", "profile"); set("h-findings", "findings");
  set("th-kind", "kind"); set("th-channel", "channel"); set("th-kwh", "kwh");
  set("th-jpy", "jpy"); set("th-co2", "co2"); set("th-expl", "expl"); set("token-label", "token");
}

function renderChannels(items) {
  const box = document.getElementById("channels");
  box.replaceChildren();
  for (const c of items) {
    const card = el("div", "card " + c.status);
    card.dataset.channel = c.id;
    card.title = L[c.status] || c.status;
    card.append(el("div", "name", c.id));
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
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
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
    tr.append(el("td", "", L[f.kind] || f.kind), el("td", "", f.channel), el("td", "num", fmt(f.energy_kwh, 0)),
              el("td", "num", fmt(f.cost_jpy, 0)), el("td", "num", fmt(f.co2_t, 3)), el("td", "", f.explanation));
    body.append(tr);
  }
}

let profileChannel = null;

async function refresh() {
  try {
    const [sites, chans] = await Promise.all([api("/api/v1/sites"), api("/api/v1/channels?limit=200")]);
    const site = sites[0];
    TZ = site.timezone || TZ;
    applyLabels(site.language);
    channelsById = Object.fromEntries(chans.items.map(c => [c.id, c]));
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
