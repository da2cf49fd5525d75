(function () {
  "use strict";

  // ---- configuration ------------------------------------------------------------------------
  var MAX_ROWS = 25;              // rows shown in the table
  var MAX_WINDOWS = 48;           // windows kept for the revenue/spend chart
  var INGEST_SPAN_MS = 5 * 60 * 1000;
  var RESYNC_MS = 30000;
  var STALL_MS = 5000;
  var SPREAD_MS = 5000;           // /v1/spread refresh (with --models)
  var SPREAD_THROTTLE_MS = 2000;  // at most this often on row events

  var hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  var token = hash.get("token");
  // With --models: the model chosen in the switch (#model=NAME); null shows the server's first.
  var chosenModel = hash.get("model") || null;
  function setHashModel(model) {
    if (model) hash.set("model", model); else hash.delete("model");
    var text = hash.toString();
    // replaceState: no hashchange (which reloads the page), and no history entry per switch.
    history.replaceState(null, "", location.pathname + location.search + (text ? "#" + text : ""));
  }
  function api(path) {
    if (!token) return path;
    return path + (path.indexOf("?") >= 0 ? "&" : "?") + "access_token=" + encodeURIComponent(token);
  }

  // ---- state --------------------------------------------------------------------------------
  var state = {
    meta: null,                   // {model, window, slide, by}
    models: [],                   // the models served (more than one with --models)
    watermark: null,              // ISO string
    entries: new Map(),           // key -> {creator, campaign, open, closed}
    windows: [],                  // [{window_start, window_end, revenue, refunds, spend, conversions}]
    samples: [],                  // [{t, eps, rej}]
    stats: null,
    prevStats: null,
    streamState: "connecting",
    lastMessageAt: 0,
    lastSyncAt: 0,
    loaded: false,
    previousRoas: new Map()
  };

  // A roll-up row (--by tier: no creator, a tier) is keyed by its tier too.
  function keyOf(creator, campaign, rollUp) {
    return JSON.stringify([creator == null ? null : creator, campaign == null ? null : campaign, rollUp == null ? null : rollUp]);
  }
  function rollUpOf(creator, tier) { return creator == null && tier != null ? tier : null; }
  // Typical engagement rates by tier (CreatorTier.typicalEngagementRate).
  var TIERS = ["nano", "micro", "macro", "mega", "unknown"];
  var TYPICAL = { nano: [0.05, 0.10], micro: [0.02, 0.05], macro: [0.01, 0.02], mega: [0, 0.01] };
  function isLowEngagement(tier, rate) {
    return tier != null && TYPICAL[tier] != null && rate != null && isFinite(rate) && Number(rate) < TYPICAL[tier][0];
  }
  function ts(iso) { var t = Date.parse(iso); return isNaN(t) ? 0 : t; }
  function num(v) { v = Number(v); return isFinite(v) ? v : 0; }

  // ---- formatting ---------------------------------------------------------------------------
  var moneyFmt = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var rateFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  var DASH = "\u2013";
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function money(v) { return v == null || !isFinite(v) ? DASH : moneyFmt.format(v); }
  function percent(v) { return v == null || !isFinite(v) ? DASH : moneyFmt.format(v * 100) + "%"; }
  function kpiCell(name, value, format) {
    var v = value == null ? null : Number(value);
    return td("num " + name + (v == null || !isFinite(v) ? " muted" : ""), format(v));
  }
  function int(v) { return v == null || !isFinite(v) ? DASH : intFmt.format(v); }
  function roasText(v) {
    return v == null || !isFinite(Number(v)) ? DASH : moneyFmt.format(Number(v)) + "\u00d7";
  }
  function roasClass(v) {
    if (v == null || !isFinite(Number(v))) return "none";
    return Number(v) >= 1 ? "good" : "bad";
  }
  function ratio(rev, refunds, spend) { return spend > 0 ? (rev - refunds) / spend : null; }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function hhmm(t) { var d = new Date(t); return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()); }
  function hhmmss(t) { var d = new Date(t); return hhmm(t) + ":" + pad(d.getUTCSeconds()); }
  function dayLabel(t) { var d = new Date(t); return MONTHS[d.getUTCMonth()] + " " + d.getUTCDate(); }
  function windowLabel(startIso, endIso) {
    var s = ts(startIso), e = ts(endIso);
    if (e - s >= 86400000 && s % 86400000 === 0) {
      return e - s === 86400000 ? dayLabel(s) : dayLabel(s) + DASH + dayLabel(e - 1);
    }
    var label = hhmm(s) + DASH + hhmm(e);
    return label;
  }
  function compact(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return trim(v / 1e9) + "B";
    if (a >= 1e6) return trim(v / 1e6) + "M";
    if (a >= 1e3) return trim(v / 1e3) + "k";
    return trim(v);
  }
  function trim(v) {
    var s = Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
    return s.indexOf(".") >= 0 ? s.replace(/\.?0+$/, "") : s;
  }
  function durationLabel(w) { return w || "?"; }

  // ---- merging ------------------------------------------------------------------------------
  // The model whose rows are shown: rows of other models (--models) are not applied.
  function shownModel() { return chosenModel || (state.meta && state.meta.model) || null; }

  function applySnapshot(s) {
    state.meta = { model: s.model, window: s.window, slide: s.slide, by: s.by };
    state.models = Array.isArray(s.models) && s.models.length ? s.models.slice() : (s.model ? [s.model] : []);
    if (s.watermark && (!state.watermark || ts(s.watermark) >= ts(state.watermark))) state.watermark = s.watermark;
    if (s.watermark === null && !state.watermark) state.watermark = null;
    var entries = new Map();
    (s.rows || []).forEach(function (r) {
      var creator = r.creator == null ? null : r.creator;
      var campaign = r.campaign == null ? null : r.campaign;
      var rollUp = rollUpOf(creator, r.tier);
      entries.set(keyOf(creator, campaign, rollUp), { creator: creator, campaign: campaign, rollUp: rollUp, open: r.open || null, closed: r.closed || null });
    });
    state.entries = entries;
    state.windows = (s.recent_windows || []).map(function (w) {
      return { window_start: w.window_start, window_end: w.window_end, revenue: num(w.revenue), refunds: num(w.refunds), spend: num(w.spend), conversions: num(w.conversions) };
    }).sort(function (a, b) { return ts(a.window_start) - ts(b.window_start) || ts(a.window_end) - ts(b.window_end); });
    if (s.stats) applyStats(s.stats);
    state.lastSyncAt = Date.now();
  }

  function addToWindows(row, prev) {
    var list = state.windows, w = null;
    for (var i = list.length - 1; i >= 0; i--) {
      if (list[i].window_start === row.window_start && list[i].window_end === row.window_end) { w = list[i]; break; }
    }
    if (!w) {
      w = { window_start: row.window_start, window_end: row.window_end, revenue: 0, refunds: 0, spend: 0, conversions: 0 };
      list.push(w);
      list.sort(function (a, b) { return ts(a.window_start) - ts(b.window_start) || ts(a.window_end) - ts(b.window_end); });
      while (list.length > MAX_WINDOWS) list.shift();
    }
    w.revenue += num(row.revenue) - (prev ? num(prev.revenue) : 0);
    w.refunds += num(row.refunds) - (prev ? num(prev.refunds) : 0);
    w.spend += num(row.spend) - (prev ? num(prev.spend) : 0);
    w.conversions += num(row.conversions) - (prev ? num(prev.conversions) : 0);
  }

  function applyRow(row) {
    if (!row || !row.window_start) return;
    if (row.model != null && row.model !== shownModel()) return;
    var creator = row.creator == null ? null : row.creator;
    var campaign = row.campaign == null ? null : row.campaign;
    var rollUp = rollUpOf(creator, row.tier);
    var k = keyOf(creator, campaign, rollUp);
    var e = state.entries.get(k);
    if (!e) { e = { creator: creator, campaign: campaign, rollUp: rollUp, open: null, closed: null }; state.entries.set(k, e); }
    var start = ts(row.window_start);
    if (row.final) {
      var prev = e.closed;
      var same = prev && prev.window_start === row.window_start && prev.window_end === row.window_end;
      // A repeated final row for a window we already counted replaces its contribution.
      addToWindows(row, same ? prev : null);
      if (!prev || start >= ts(prev.window_start)) e.closed = row;
      if (e.open && ts(e.open.window_start) <= start) e.open = null;
    } else {
      if (e.closed && ts(e.closed.window_start) >= start) return; // stale: that window already closed
      if (!e.open || start >= ts(e.open.window_start)) e.open = row;
    }
  }

  function applyStats(st) {
    if (!st) return;
    var t = ts(st.time);
    var p = state.prevStats;
    if (st.watermark) state.watermark = st.watermark;
    state.stats = st;
    if (p && t <= p.t) return; // already sampled (snapshot and stream can repeat a second)
    var rej = 0;
    var cum = num(st.rejected_batches);
    if (p && cum >= p.rejected) rej = cum - p.rejected;
    state.samples.push({ t: t, eps: num(st.events_per_second), rej: rej, first: !p });
    state.prevStats = { t: t, rejected: cum };
    var cutoff = t - INGEST_SPAN_MS;
    while (state.samples.length && state.samples[0].t < cutoff) state.samples.shift();
  }

  // ---- rendering ----------------------------------------------------------------------------
  var renderTimer = null;
  var dirty = { table: true, windows: true, ingest: true, alerts: true, spread: true };
  // --alert rules of the server, the alerts firing (by id) and the latest resolved ones.
  var alertState = { rules: [], firing: new Map(), resolved: [] };
  function scheduleRender(parts) {
    if (parts) parts.forEach(function (p) { dirty[p] = true; });
    else dirty.table = dirty.windows = dirty.ingest = true;
    if (renderTimer) return;
    renderTimer = setTimeout(function () { renderTimer = null; render(); }, 150);
  }

  function $(id) { return document.getElementById(id); }
  function setText(id, text) { var n = $(id); if (n && n.textContent !== text) n.textContent = text; }

  function figure(e) { return e.open || e.closed; }

  function sortedEntries() {
    var list = [];
    state.entries.forEach(function (e) { if (figure(e)) list.push(e); });
    list.sort(function (a, b) {
      var fa = figure(a), fb = figure(b);
      var ra = fa.roas == null ? null : Number(fa.roas), rb = fb.roas == null ? null : Number(fb.roas);
      if (ra !== rb) {
        if (ra == null) return 1;
        if (rb == null) return -1;
        if (ra !== ra) return 1;
        if (rb !== rb) return -1;
        return rb - ra;
      }
      var d = num(fb.revenue) - num(fa.revenue);
      if (d) return d;
      return String(a.creator).localeCompare(String(b.creator)) || String(a.campaign).localeCompare(String(b.campaign));
    });
    return list;
  }

  function td(cls, text) {
    var c = document.createElement("td");
    c.className = cls;
    if (text != null) c.textContent = text;
    return c;
  }

  // A table's one row while it has nothing to show.
  function emptyRow(columns, text) {
    var tr = document.createElement("tr");
    var cell = td("empty-row", state.loaded ? text : "Loading\u2026");
    cell.colSpan = columns;
    tr.appendChild(cell);
    return tr;
  }
  function tierBadge(tier) {
    var badge = document.createElement("span");
    badge.className = "badge tier tier-" + tier;
    badge.textContent = tier;
    return badge;
  }

  var rowNodes = new Map(); // key -> <tr>, reused so a row's highlight survives re-renders

  function fillRow(tr, e, rank) {
    var f = figure(e);
    if (e.rollUp != null) { tr.removeAttribute("data-creator"); tr.removeAttribute("data-unattributed"); tr.setAttribute("data-rollup", e.rollUp); }
    else if (e.creator == null) { tr.removeAttribute("data-creator"); tr.removeAttribute("data-rollup"); tr.setAttribute("data-unattributed", "true"); }
    else { tr.removeAttribute("data-unattributed"); tr.removeAttribute("data-rollup"); tr.setAttribute("data-creator", e.creator); }
    if (e.campaign != null) tr.setAttribute("data-campaign", e.campaign); else tr.removeAttribute("data-campaign");
    tr.setAttribute("data-window", e.open ? "open" : "closed");
    var cells = [];
    cells.push(td("rank num", String(rank)));
    var c = e.rollUp != null ? td("creator", "all " + e.rollUp + " creators")
      : td("creator" + (e.creator == null ? " unattributed" : ""), e.creator == null ? "(unattributed)" : e.creator);
    c.title = c.textContent;
    cells.push(c);
    var camp = td("campaign");
    if (e.campaign == null) { var nil = document.createElement("span"); nil.className = "nil"; nil.textContent = DASH; camp.appendChild(nil); }
    else { camp.textContent = e.campaign; camp.title = e.campaign; }
    cells.push(camp);
    var roas = f.roas == null ? null : Number(f.roas);
    var rc = td("roas " + roasClass(roas));
    var span = document.createElement("span");
    span.className = "r";
    span.textContent = roasText(roas);
    rc.appendChild(span);
    cells.push(rc);
    var rev = td("num revenue", money(num(f.revenue)));
    if (num(f.refunds) > 0) {
      var rf = document.createElement("span");
      rf.className = "refunds";
      rf.textContent = "\u2212" + money(num(f.refunds)) + " refunds";
      rev.appendChild(rf);
    }
    cells.push(rev);
    cells.push(td("num spend", money(num(f.spend))));
    cells.push(td("num conversions", int(num(f.conversions))));
    cells.push(td("num clicks", int(num(f.clicks))));
    cells.push(td("num views", int(num(f.views))));
    // The row's own ratios (null when the denominator is 0): rates as percentages, AOV and CPA as money.
    cells.push(kpiCell("ctr", f.ctr, percent));
    cells.push(kpiCell("cvr", f.cvr, percent));
    cells.push(kpiCell("aov", f.aov, money));
    cells.push(kpiCell("cpa", f.cpa, money));
    cells.push(kpiCell("roi", f.roi, percent));
    var tc = td("tier");
    if (f.tier != null) tc.appendChild(tierBadge(f.tier)); else tc.textContent = DASH;
    cells.push(tc);
    cells.push(td("num reach", int(num(f.reach))));
    var low = isLowEngagement(f.tier, f.engagement_rate);
    var er = kpiCell("er", f.engagement_rate, percent);
    if (low) {
      er.classList.add("low");
      er.textContent = "\u25bc " + er.textContent;
      er.title = "below the " + f.tier + " tier's typical " + TYPICAL[f.tier][0] * 100 + "\u2013" + TYPICAL[f.tier][1] * 100 + "%";
      tr.setAttribute("data-low-engagement", "true");
    } else tr.removeAttribute("data-low-engagement");
    cells.push(er);
    cells.push(td("num leads", trim(num(f.leads))));
    cells.push(kpiCell("cpl", f.cpl, money));
    var wc = td("window");
    var badge = document.createElement("span");
    badge.className = "badge " + (e.open ? "open" : "closed");
    badge.textContent = e.open ? "open" : "closed";
    wc.appendChild(badge);
    wc.appendChild(document.createTextNode(windowLabel(f.window_start, f.window_end)));
    wc.title = f.window_start + " \u2192 " + f.window_end + (e.open ? " (still open)" : " (final)");
    cells.push(wc);
    tr.replaceChildren.apply(tr, cells);
    return roas;
  }

  function flash(tr, up) {
    tr.classList.remove("flash-up", "flash-down");
    void tr.offsetWidth; // restart the animation
    tr.classList.add(up ? "flash-up" : "flash-down");
    clearTimeout(tr._flashTimer);
    tr._flashTimer = setTimeout(function () { tr.classList.remove("flash-up", "flash-down"); }, 1700);
  }

  function renderTable() {
    var list = sortedEntries();
    var table = $("creators"), body = $("creators-body");
    var anyCampaign = false;
    state.entries.forEach(function (e) { if (e.campaign != null) anyCampaign = true; });
    table.classList.toggle("no-campaign", !anyCampaign);
    var shown = list.slice(0, MAX_ROWS);
    var nextNodes = new Map(), order = [];
    shown.forEach(function (e, i) {
      var key = keyOf(e.creator, e.campaign, e.rollUp);
      var tr = rowNodes.get(key) || document.createElement("tr");
      var roas = fillRow(tr, e, i + 1);
      var now = roas == null ? NaN : roas;
      var old = state.previousRoas.get(key);
      if (old !== undefined && !(old === now || (old !== old && now !== now))) flash(tr, now > old || old !== old);
      state.previousRoas.set(key, now);
      nextNodes.set(key, tr);
      order.push(tr);
    });
    if (state.previousRoas.size > 4 * MAX_ROWS) {
      var keep = new Map();
      nextNodes.forEach(function (_, k) { keep.set(k, state.previousRoas.get(k)); });
      state.previousRoas = keep;
    }
    rowNodes = nextNodes;
    if (!order.length) order.push(emptyRow(20, "No creator activity yet \u2014 waiting for events."));
    var current = body.children, same = current.length === order.length;
    for (var i = 0; same && i < order.length; i++) if (current[i] !== order[i]) same = false;
    if (!same) body.replaceChildren.apply(body, order);
    var by = state.meta && state.meta.by ? state.meta.by.replace(",", " \u00d7 ") : "creator";
    var under = state.models.length > 1 ? " \u00b7 " + shownModel() : "";
    setText("table-meta", (list.length > shown.length
      ? "top " + shown.length + " of " + intFmt.format(list.length) + " \u00b7 per " + by
      : intFmt.format(list.length) + (list.length === 1 ? " row" : " rows") + " \u00b7 per " + by) + under);
  }

  // The shown rows of creators summed per tier (a creator without a tier counts as "unknown";
  // unattributed rows are left out). Reach is not summed: a user may follow several creators.
  function renderTiers() {
    var sums = {};
    state.entries.forEach(function (e) {
      var f = figure(e);
      if (!f || e.creator == null && e.rollUp == null) return;
      var tier = f.tier == null ? "unknown" : f.tier;
      var s = sums[tier] || (sums[tier] = { rows: 0, net: 0, spend: 0, views: 0, engagements: 0, leads: 0 });
      s.rows += 1;
      s.net += num(f.revenue) - num(f.refunds);
      s.spend += num(f.spend);
      s.views += num(f.views);
      s.engagements += num(f.engagements);
      s.leads += num(f.leads);
    });
    var order = [];
    TIERS.forEach(function (tier) {
      var s = sums[tier];
      if (!s) return;
      var tr = document.createElement("tr");
      tr.setAttribute("data-tier", tier);
      var tc = td("tier");
      tc.appendChild(tierBadge(tier));
      var roas = s.spend > 0 ? s.net / s.spend : null;
      var rate = s.views > 0 ? s.engagements / s.views : null;
      var rc = td("num roas " + roasClass(roas), roasText(roas));
      var er = kpiCell("er", rate, percent);
      if (isLowEngagement(tier, rate)) { er.classList.add("low"); er.textContent = "\u25bc " + er.textContent; tr.setAttribute("data-low-engagement", "true"); }
      var typical = TYPICAL[tier] ? TYPICAL[tier][0] * 100 + "\u2013" + TYPICAL[tier][1] * 100 + "%" : DASH;
      tr.replaceChildren(tc, td("num creators", String(s.rows)), rc, td("num revenue", money(s.net)),
        td("num spend", money(s.spend)), td("num views", int(s.views)), td("num engagements", int(s.engagements)),
        er, td("typical", typical), td("num leads", trim(s.leads)));
      order.push(tr);
    });
    if (!order.length) order.push(emptyRow(10, "No creator rows yet."));
    $("tiers-body").replaceChildren.apply($("tiers-body"), order);
    setText("tiers-meta", "the rows above" + (state.models.length > 1 ? " (" + shownModel() + ")" : "") + ", summed per tier");
  }

  function renderKpis() {
    // Current figures: the newest open window summed over every key; else the last closed window.
    var newest = -Infinity, openRows = [];
    state.entries.forEach(function (e) {
      if (e.open) { var s = ts(e.open.window_start); if (s > newest) newest = s; }
    });
    state.entries.forEach(function (e) { if (e.open && ts(e.open.window_start) === newest) openRows.push(e.open); });
    var lastClosed = state.windows.length ? state.windows[state.windows.length - 1] : null;
    var agg = null, scope = "", label = "";
    if (openRows.length) {
      agg = { revenue: 0, refunds: 0, spend: 0, conversions: 0, n: openRows.length, start: openRows[0].window_start, end: openRows[0].window_end };
      openRows.forEach(function (r) { agg.revenue += num(r.revenue); agg.refunds += num(r.refunds); agg.spend += num(r.spend); agg.conversions += num(r.conversions); });
      scope = "open window";
      label = windowLabel(agg.start, agg.end) + " UTC";
    } else if (lastClosed) {
      agg = { revenue: lastClosed.revenue, refunds: lastClosed.refunds, spend: lastClosed.spend, conversions: lastClosed.conversions, n: null, start: lastClosed.window_start, end: lastClosed.window_end };
      scope = "last closed window";
      label = windowLabel(agg.start, agg.end) + " UTC";
    }
    if (!agg) {
      ["kpi-roas", "kpi-rev", "kpi-spend", "kpi-conv"].forEach(function (id) { setText(id, DASH); });
      return;
    }
    var r = ratio(agg.revenue, agg.refunds, agg.spend);
    setText("kpi-roas-label", "Blended ROAS \u00b7 " + scope);
    setText("kpi-rev-label", "Revenue \u00b7 " + scope);
    setText("kpi-spend-label", "Spend \u00b7 " + scope);
    setText("kpi-conv-label", "Conversions \u00b7 " + scope);
    setText("kpi-roas", roasText(r));
    $("kpi-roas").className = "value " + roasClass(r);
    var hint = label;
    if (openRows.length && lastClosed) hint += " \u00b7 previous " + roasText(ratio(lastClosed.revenue, lastClosed.refunds, lastClosed.spend));
    setText("kpi-roas-hint", hint);
    setText("kpi-rev", money(agg.revenue));
    setText("kpi-rev-hint", agg.refunds > 0 ? "net " + money(agg.revenue - agg.refunds) + " after " + money(agg.refunds) + " refunds" : "no refunds");
    setText("kpi-spend", money(agg.spend));
    setText("kpi-spend-hint", agg.conversions > 0 && agg.spend > 0 ? money(agg.spend / agg.conversions) + " per conversion" : "\u00a0");
    setText("kpi-conv", int(agg.conversions));
    setText("kpi-conv-hint", agg.n != null ? intFmt.format(agg.n) + (agg.n === 1 ? " row" : " rows") + " with activity" : "\u00a0");
  }

  function renderPills() {
    var pill = $("pill-conn");
    var s = state.streamState;
    if (s === "connected" && state.lastMessageAt && Date.now() - state.lastMessageAt > STALL_MS) s = "stalled";
    pill.className = "pill conn " + s;
    setText("conn-text", s === "connected" ? "live" : s === "stalled" ? "stalled" : s === "disconnected" ? "disconnected" : "connecting\u2026");
    document.body.setAttribute("data-stream", s);
    if (state.watermark) {
      var w = ts(state.watermark);
      setText("pill-watermark", dayLabel(w) + " " + hhmmss(w) + " UTC");
      $("pill-watermark").parentNode.title = state.watermark;
    } else setText("pill-watermark", state.loaded ? "no events yet" : DASH);
    setText("pill-eps", state.stats ? rateFmt.format(num(state.stats.events_per_second)) + " ev/s" : DASH);
    var m = state.meta;
    if (m) {
      var text = (m.model || "?") + " \u00b7 " + durationLabel(m.window) + " window";
      if (m.slide && m.slide !== m.window) text += " / " + m.slide + " slide";
      setText("pill-model", text);
      if (m.model) document.body.setAttribute("data-model", m.model);
    }
  }

  function renderFoot() {
    var st = state.stats, parts = [];
    if (st) {
      parts.push(["Accepted events", int(num(st.accepted_events))]);
      parts.push(["Dead letters", int(num(st.dead_letters))]);
      parts.push(["Batches accepted / rejected", int(num(st.accepted_batches)) + " / " + int(num(st.rejected_batches))]);
      parts.push(["TCP connections", int(num(st.connections))]);
    }
    if (state.lastSyncAt) parts.push(["Last resync", new Date(state.lastSyncAt).toLocaleTimeString("en-GB")]);
    var foot = $("foot");
    var frag = document.createDocumentFragment();
    parts.forEach(function (p) {
      var s = document.createElement("span");
      s.appendChild(document.createTextNode(p[0] + " "));
      var b = document.createElement("b");
      b.textContent = p[1];
      s.appendChild(b);
      frag.appendChild(s);
    });
    foot.replaceChildren(frag);
  }

  // ---- charts (inline SVG) ------------------------------------------------------------------
  var SVGNS = "http://www.w3.org/2000/svg";
  function svgEl(tag, attrs, parent, text) {
    var n = document.createElementNS(SVGNS, tag);
    for (var k in attrs) if (attrs[k] != null) n.setAttribute(k, attrs[k]);
    if (text != null) n.textContent = text;
    if (parent) parent.appendChild(n);
    return n;
  }
  function niceScale(max, ticks) {
    if (!(max > 0)) max = 1;
    var raw = max / ticks;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var n = raw / mag;
    var step = (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
    return { step: step, max: Math.ceil(max / step - 1e-9) * step };
  }
  function chartBox(id) {
    var host = $(id);
    var w = Math.max(200, host.clientWidth - 12), h = Math.max(120, host.clientHeight - 10);
    var svg = svgEl("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h, role: "img" });
    return { host: host, svg: svg, w: w, h: h };
  }
  function finish(box, emptyText) {
    var frag = document.createDocumentFragment();
    frag.appendChild(box.svg);
    if (emptyText) {
      var d = document.createElement("div");
      d.className = "empty";
      d.textContent = emptyText;
      frag.appendChild(d);
    }
    box.host.replaceChildren(frag);
  }

  function renderWindowsChart() {
    var box = chartBox("chart-windows");
    var data = state.windows;
    var m = { l: 56, r: 10, t: 14, b: 34 };
    var pw = box.w - m.l - m.r, ph = box.h - m.t - m.b;
    var max = 0;
    data.forEach(function (d) { max = Math.max(max, d.revenue, d.spend); });
    var sc = niceScale(max, 4);
    var y = function (v) { return m.t + ph - (v / sc.max) * ph; };
    var g = svgEl("g", {}, box.svg);
    for (var v = 0; v <= sc.max + 1e-9; v += sc.step) {
      svgEl("line", { x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v), "class": v === 0 ? "axis" : "grid" }, g);
      svgEl("text", { x: m.l - 8, y: y(v) + 4, "text-anchor": "end" }, g, compact(v));
    }
    svgEl("text", { x: m.l + pw, y: box.h - 2, "text-anchor": "end", "class": "axis-title" }, g, "window start (UTC)");
    svgEl("text", { x: 12, y: m.t + ph / 2, "text-anchor": "middle", "class": "axis-title", transform: "rotate(-90 12 " + (m.t + ph / 2) + ")" }, g, "amount");
    if (!data.length) { finish(box, "No closed windows yet"); return; }
    var slots = Math.max(data.length, 8);
    var slotW = pw / slots;
    var x0 = m.l + (slots - data.length) * slotW; // right-align so the newest window sits at the right edge
    var barW = Math.max(1.5, Math.min(18, slotW * 0.36));
    var gap = Math.min(2, barW * 0.15);
    var labelEvery = Math.max(1, Math.ceil(46 / slotW));
    var multiDay = data.length > 1 && new Date(ts(data[0].window_start)).getUTCDate() !== new Date(ts(data[data.length - 1].window_start)).getUTCDate();
    data.forEach(function (d, i) {
      var cx = x0 + slotW * (i + 0.5);
      var t = ts(d.window_start);
      var title = windowLabel(d.window_start, d.window_end) + " UTC (" + dayLabel(t) + ")\nRevenue " + money(d.revenue) +
        (d.refunds > 0 ? " (refunds " + money(d.refunds) + ")" : "") + "\nSpend " + money(d.spend) +
        "\nROAS " + roasText(ratio(d.revenue, d.refunds, d.spend)) + "\nConversions " + int(d.conversions);
      var grp = svgEl("g", {}, g);
      svgEl("title", {}, grp, title);
      svgEl("rect", { x: cx - slotW / 2, y: m.t, width: slotW, height: ph, fill: "transparent" }, grp);
      var rh = Math.max(0, y(0) - y(Math.max(0, d.revenue)));
      var sh = Math.max(0, y(0) - y(Math.max(0, d.spend)));
      svgEl("rect", { x: cx - barW - gap / 2, y: y(0) - rh, width: barW, height: rh, rx: Math.min(2, barW / 3), fill: "var(--revenue)" }, grp);
      svgEl("rect", { x: cx + gap / 2, y: y(0) - sh, width: barW, height: sh, rx: Math.min(2, barW / 3), fill: "var(--spend)" }, grp);
      if ((data.length - 1 - i) % labelEvery === 0) {
        var d0 = new Date(t);
        var lbl = (ts(d.window_end) - t >= 86400000) ? dayLabel(t)
          : (multiDay && d0.getUTCHours() === 0 && d0.getUTCMinutes() === 0 ? dayLabel(t) : hhmm(t));
        svgEl("text", { x: cx, y: m.t + ph + 15, "text-anchor": "middle" }, g, lbl);
      }
    });
    finish(box, null);
  }

  function renderIngestChart() {
    var box = chartBox("chart-ingest");
    var data = state.samples;
    var m = { l: 48, r: 34, t: 14, b: 34 };
    var pw = box.w - m.l - m.r, ph = box.h - m.t - m.b;
    var end = data.length ? data[data.length - 1].t : Date.now();
    // the axis spans the data (at least one minute), up to INGEST_SPAN_MS
    var span = data.length ? Math.min(INGEST_SPAN_MS, Math.max(60000, end - data[0].t)) : INGEST_SPAN_MS;
    var start = end - span;
    var x = function (t) { return m.l + ((t - start) / span) * pw; };
    var maxE = 0, maxR = 0;
    data.forEach(function (d) { maxE = Math.max(maxE, d.eps); maxR = Math.max(maxR, d.rej); });
    var se = niceScale(maxE, 4);
    var sr = niceScale(Math.max(maxR, 4), 4);
    if (sr.step < 1) sr = { step: 1, max: 4 };
    var ye = function (v) { return m.t + ph - (v / se.max) * ph; };
    var yr = function (v) { return m.t + ph - (v / sr.max) * ph; };
    var g = svgEl("g", {}, box.svg);
    for (var v = 0; v <= se.max + 1e-9; v += se.step) {
      svgEl("line", { x1: m.l, x2: m.l + pw, y1: ye(v), y2: ye(v), "class": v === 0 ? "axis" : "grid" }, g);
      svgEl("text", { x: m.l - 8, y: ye(v) + 4, "text-anchor": "end" }, g, compact(v));
    }
    var rticks = Math.round(sr.max / sr.step);
    for (var i = 0; i <= rticks; i++) {
      var rv = i * sr.step;
      svgEl("text", { x: m.l + pw + 8, y: yr(rv) + 4, "text-anchor": "start", fill: "var(--rejected)", style: "fill: var(--rejected); opacity: .8" }, g, compact(rv));
    }
    // x ticks back from the newest sample, labelled relative to it
    var tick = [10000, 15000, 30000, 60000, 120000].filter(function (st) { return span / st <= 6; })[0] || 300000;
    for (var back = 0; back <= span + 1; back += tick) {
      var tt = end - back, xx = x(tt);
      var secs = Math.round(back / 1000);
      var lbl = back === 0 ? hhmmss(tt) : "\u2212" + (secs % 60 === 0 ? secs / 60 + "m" : secs + "s");
      svgEl("line", { x1: xx, x2: xx, y1: m.t + ph, y2: m.t + ph + 4, "class": "axis" }, g);
      svgEl("text", { x: xx, y: m.t + ph + 16, "text-anchor": back === 0 ? "end" : back + tick > span + 1 && xx - m.l < 20 ? "start" : "middle" }, g, lbl);
    }
    svgEl("text", { x: 12, y: m.t + ph / 2, "text-anchor": "middle", "class": "axis-title", transform: "rotate(-90 12 " + (m.t + ph / 2) + ")" }, g, "events/s");
    svgEl("text", { x: box.w - 2, y: m.t + ph / 2, "text-anchor": "middle", "class": "axis-title", transform: "rotate(90 " + (box.w - 2) + " " + (m.t + ph / 2) + ")" }, g, "rejected");
    if (!data.length) { finish(box, "Waiting for stats\u2026"); return; }
    // rejected batches: bars per interval
    var bw = Math.max(1.5, Math.min(6, pw / (span / 1000) * 0.6));
    data.forEach(function (d) {
      if (d.rej > 0) {
        var r = svgEl("rect", { x: x(d.t) - bw / 2, y: yr(d.rej), width: bw, height: yr(0) - yr(d.rej), fill: "var(--rejected)", opacity: 0.85 }, g);
        svgEl("title", {}, r, hhmmss(d.t) + " UTC: " + int(d.rej) + " rejected batch" + (d.rej === 1 ? "" : "es"));
      }
    });
    // events/s: area + line; break the line where samples are more than 5 s apart
    var segs = [], cur = [];
    data.forEach(function (d, i) {
      if (i && d.t - data[i - 1].t > 5000) { segs.push(cur); cur = []; }
      cur.push(d);
    });
    segs.push(cur);
    segs.forEach(function (seg) {
      if (!seg.length) return;
      var line = seg.map(function (d, i) { return (i ? "L" : "M") + x(d.t).toFixed(1) + " " + ye(d.eps).toFixed(1); }).join(" ");
      if (seg.length === 1) {
        svgEl("circle", { cx: x(seg[0].t), cy: ye(seg[0].eps), r: 3, fill: "var(--rate)" }, g);
        return;
      }
      var area = line + " L" + x(seg[seg.length - 1].t).toFixed(1) + " " + ye(0) + " L" + x(seg[0].t).toFixed(1) + " " + ye(0) + " Z";
      svgEl("path", { d: area, fill: "var(--rate)", opacity: 0.1 }, g);
      svgEl("path", { d: line, fill: "none", stroke: "var(--rate)", "stroke-width": 2, "stroke-linejoin": "round", "stroke-linecap": "round" }, g);
    });
    var last = data[data.length - 1];
    svgEl("circle", { cx: x(last.t), cy: ye(last.eps), r: 3.5, fill: "#fff", stroke: "var(--rate)", "stroke-width": 2 }, g);
    finish(box, null);
  }

  function render() {
    var d = dirty;
    dirty = { table: false, windows: false, ingest: false, alerts: false, spread: false };
    if (d.table) {
      try { renderTable(); } catch (err) { console.error(err); }
      try { renderTiers(); } catch (err) { console.error(err); }
      try { renderKpis(); } catch (err) { console.error(err); }
    }
    try { renderPills(); } catch (err) { console.error(err); }
    try { renderFoot(); } catch (err) { console.error(err); }
    if (d.windows) try { renderWindowsChart(); } catch (err) { console.error(err); }
    if (d.ingest) try { renderIngestChart(); } catch (err) { console.error(err); }
    if (d.alerts) try { renderAlerts(); } catch (err) { console.error(err); }
    if (d.spread) try { renderSpread(); } catch (err) { console.error(err); }
    try { renderModelSwitch(); } catch (err) { console.error(err); }
  }

  function applyAlert(a) {
    if (!a || !a.id) return;
    // Pending alerts (open windows) are in /v1/alerts for scripts; the panel shows firing and resolved.
    if (a.state === "firing") alertState.firing.set(a.id, a);
    else if (a.state === "resolved") {
      alertState.firing.delete(a.id);
      alertState.resolved.unshift(a);
      if (alertState.resolved.length > 20) alertState.resolved.pop();
    }
  }
  function loadAlerts() {
    fetch(api("/v1/alerts"), { cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (a) {
        if (!a) return;
        alertState.rules = a.rules || [];
        alertState.firing = new Map();
        (a.firing || []).forEach(function (x) { alertState.firing.set(x.id, x); });
        alertState.resolved = (a.resolved || []).slice(0, 20);
        dirty.alerts = true;
        render();
      })
      .catch(function () {});
  }
  // Firing alerts first (oldest run first), then the latest resolved ones.
  function renderAlerts() {
    var card = $("alerts-card");
    card.hidden = alertState.rules.length === 0;
    if (card.hidden) return;
    var firing = [];
    alertState.firing.forEach(function (a) { firing.push(a); });
    firing.sort(function (a, b) { return ts(a.first_window_start) - ts(b.first_window_start) || (a.id < b.id ? -1 : 1); });
    var order = [];
    firing.concat(alertState.resolved).forEach(function (a) {
      var tr = document.createElement("tr");
      var key = a.creator != null ? a.creator : a.tier != null ? "all " + a.tier + " creators" : "(unattributed)";
      tr.setAttribute("data-alert", a.rule + "|" + key);
      var sc = td("state");
      var badge = document.createElement("span");
      badge.className = "badge " + a.state;
      badge.textContent = a.state;
      sc.appendChild(badge);
      var row = a.row || {};
      var roas = row.roas == null ? null : Number(row.roas);
      tr.replaceChildren(sc, td("rule", a.rule), td("key", key + (a.campaign != null ? " \u00b7 " + a.campaign : "")),
        td("since", hhmm(ts(a.first_window_start))), td("window", windowLabel(a.window_start, a.window_end)),
        td("num roas " + roasClass(roas), roasText(roas)));
      order.push(tr);
    });
    if (!order.length) order.push(emptyRow(6, "No alert has fired."));
    $("alerts-body").replaceChildren.apply($("alerts-body"), order);
    setText("alerts-meta", alertState.firing.size + " firing \u00b7 rules: " + alertState.rules.join("; "));
  }

  // ---- models (--models): the switch and the spread ------------------------------------------
  var switchModels = "";
  // Shown only when the server computes several models; the option of the shown model carries
  // the selected attribute (defaultSelected), so a DOM dump shows the choice too.
  function renderModelSwitch() {
    var wrap = $("model-switch-wrap"), select = $("model-switch");
    var several = state.models.length > 1;
    if (wrap.hidden === several) wrap.hidden = !several;
    if (!several) return;
    var key = state.models.join(",");
    if (key !== switchModels) {
      switchModels = key;
      select.replaceChildren.apply(select, state.models.map(function (m) {
        var o = document.createElement("option");
        o.value = m;
        o.textContent = m;
        return o;
      }));
    }
    var shown = shownModel();
    Array.prototype.forEach.call(select.options, function (o) {
      if (o.defaultSelected !== (o.value === shown)) o.defaultSelected = o.value === shown;
    });
    if (select.value !== shown) select.value = shown;
  }

  function switchModel(model) {
    if (!model || model === shownModel()) return;
    chosenModel = model;
    setHashModel(model);
    // Forget the other model's rows at once; the chosen model's come with the snapshot.
    state.entries = new Map();
    state.previousRoas = new Map();
    rowNodes = new Map();
    state.loaded = false;
    document.body.setAttribute("data-loaded", "false");
    if (state.meta) state.meta.model = model;
    dirty.table = dirty.spread = true;
    render();
    resync();
  }
  $("model-switch").addEventListener("change", function (e) { switchModel(e.target.value); });

  var spreadState = { models: [], rows: [], loaded: false, loading: false, lastAt: 0, timer: null };
  function loadSpread() {
    if (state.models.length <= 1 || spreadState.loading) return;
    spreadState.loading = true;
    fetch(api("/v1/spread?limit=" + MAX_ROWS), { cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (sp) {
        if (!sp) return;
        spreadState.models = Array.isArray(sp.models) ? sp.models : [];
        spreadState.rows = Array.isArray(sp.rows) ? sp.rows : [];
        spreadState.loaded = true;
        dirty.spread = true;
        render();
      })
      .catch(function () {})
      .then(function () { spreadState.loading = false; spreadState.lastAt = Date.now(); });
  }
  // On row events: a reload of the spread, at most every SPREAD_THROTTLE_MS.
  function spreadSoon() {
    if (spreadState.timer || state.models.length <= 1) return;
    var wait = Math.max(300, spreadState.lastAt + SPREAD_THROTTLE_MS - Date.now());
    spreadState.timer = setTimeout(function () { spreadState.timer = null; loadSpread(); }, wait);
  }
  function modelClass(m) { return "m-" + String(m).replace(/[^A-Za-z0-9_-]/g, "_"); }
  function spreadText(v) { return v == null || !isFinite(Number(v)) ? DASH : moneyFmt.format(Number(v)); }

  var spreadHeadKey = "";
  function renderSpread() {
    var card = $("spread-card");
    card.hidden = state.models.length <= 1;
    if (card.hidden) return;
    var models = spreadState.models.length ? spreadState.models : state.models;
    var shown = shownModel();
    var table = $("spread");
    table.classList.toggle("no-campaign", !(state.meta && /campaign/.test(state.meta.by || "")));
    var headKey = models.join(",") + "|" + shown;
    if (headKey !== spreadHeadKey) {
      spreadHeadKey = headKey;
      var ths = [];
      function th(cls, text, title) {
        var c = document.createElement("th");
        c.className = cls;
        c.textContent = text;
        if (title) c.title = title;
        ths.push(c);
      }
      th("creator", "Creator");
      th("campaign", "Campaign");
      th("tier", "Tier");
      models.forEach(function (m) {
        th("num mroas " + modelClass(m) + (m === shown ? " shown" : ""), m, "ROAS under " + m + (m === shown ? " (the model shown above)" : ""));
      });
      th("lowest", "Lowest", "the lowest ROAS across the models, and its model");
      th("highest", "Highest", "the highest ROAS across the models, and its model");
      th("num spread", "Spread", "highest minus lowest ROAS");
      $("spread-head").replaceChildren.apply($("spread-head"), ths);
    }
    var columns = models.length + 6;
    var rows = spreadState.rows;
    var widest = 0;
    rows.forEach(function (r) { widest = Math.max(widest, num(r.spread)); });
    var order = rows.map(function (r) {
      var tr = document.createElement("tr");
      var creator = r.creator == null ? null : r.creator;
      var rollUp = rollUpOf(creator, r.tier);
      if (rollUp != null) tr.setAttribute("data-rollup", rollUp);
      else if (creator == null) tr.setAttribute("data-unattributed", "true");
      else tr.setAttribute("data-creator", creator);
      if (r.campaign != null) tr.setAttribute("data-campaign", r.campaign);
      var cells = [];
      var c = rollUp != null ? td("creator", "all " + rollUp + " creators")
        : td("creator" + (creator == null ? " unattributed" : ""), creator == null ? "(unattributed)" : creator);
      c.title = c.textContent;
      cells.push(c);
      var camp = td("campaign");
      if (r.campaign == null) { var nil = document.createElement("span"); nil.className = "nil"; nil.textContent = DASH; camp.appendChild(nil); }
      else { camp.textContent = r.campaign; camp.title = r.campaign; }
      cells.push(camp);
      var tc = td("tier");
      if (r.tier != null) tc.appendChild(tierBadge(r.tier)); else tc.textContent = DASH;
      cells.push(tc);
      var lowModel = r.lowest && r.lowest.model, highModel = r.highest && r.highest.model;
      models.forEach(function (m) {
        var v = r.roas && r.roas[m] != null ? Number(r.roas[m]) : null;
        var cls = "num mroas " + modelClass(m) + " " + roasClass(v) + (m === shown ? " shown" : "");
        if (num(r.spread) > 0 && m === lowModel) cls += " lo";
        if (num(r.spread) > 0 && m === highModel) cls += " hi";
        var cell = td(cls, roasText(v));
        cell.title = m + ": " + (v == null ? "no ROAS (no spend, or no row)" : roasText(v));
        cells.push(cell);
      });
      [["lowest", r.lowest], ["highest", r.highest]].forEach(function (pair) {
        var cell = td(pair[0]);
        var x = pair[1] || {};
        var v = document.createElement("span");
        v.className = "num";
        v.textContent = roasText(x.roas);
        cell.appendChild(v);
        cell.appendChild(document.createTextNode(" "));
        var m = document.createElement("span");
        m.className = "m";
        m.textContent = x.model == null ? "" : String(x.model);
        cell.appendChild(m);
        cells.push(cell);
      });
      var sc = td("num spread");
      var bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = (widest > 0 ? Math.max(2, Math.round(60 * num(r.spread) / widest)) : 2) + "px";
      var sv = document.createElement("span");
      sv.className = "v";
      sv.textContent = spreadText(r.spread);
      sc.appendChild(bar);
      sc.appendChild(sv);
      cells.push(sc);
      tr.replaceChildren.apply(tr, cells);
      return tr;
    });
    if (!order.length) {
      var tr = document.createElement("tr");
      var cell = td("empty-row", spreadState.loaded ? "No creator has a ROAS under two models yet." : "Loading\u2026");
      cell.colSpan = columns;
      tr.appendChild(cell);
      order.push(tr);
    }
    $("spread-body").replaceChildren.apply($("spread-body"), order);
    setText("spread-meta", spreadState.loaded
      ? intFmt.format(rows.length) + (rows.length === 1 ? " row" : " rows") + " \u00b7 " + models.length + " models \u00b7 widest spread first"
      : models.length + " models");
  }

  // ---- networking ---------------------------------------------------------------------------
  function showBanner(text) {
    var b = $("banner");
    b.textContent = text || "";
    b.classList.toggle("show", !!text);
  }

  var syncing = false, buffered = null, syncAgain = false;
  function resync() {
    if (syncing) { syncAgain = true; return; }
    syncing = true;
    buffered = [];
    var asked = chosenModel;
    var path = "/v1/roas?limit=100&sort=roas" + (asked ? "&model=" + encodeURIComponent(asked) : "");
    fetch(api(path), { cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (res) {
        if (res.status === 400 && asked) {
          // #model= names a model this server does not serve: show its default instead.
          if (chosenModel === asked) { chosenModel = null; setHashModel(null); }
          syncAgain = true;
          return null;
        }
        if (!res.ok) {
          var hint = res.status === 401 || res.status === 403 ? " \u2014 check the access token (open the page as /#token=\u2026)" : "";
          throw new Error("HTTP " + res.status + hint);
        }
        return res.json();
      })
      .then(function (snap) {
        var replay = buffered || [];
        buffered = null;
        // No answer to use, or an answer for a model the switch has since moved away from.
        if (!snap || asked !== chosenModel) { syncAgain = true; return; }
        applySnapshot(snap);
        replay.forEach(function (ev) {
          if (ev.type === "row") applyRow(ev.data); else if (ev.type === "alert") applyAlert(ev.data); else applyStats(ev.data);
        });
        loadAlerts();
        loadSpread();
        state.loaded = true;
        document.body.setAttribute("data-loaded", "true");
        showBanner(null);
        dirty.table = dirty.windows = dirty.ingest = dirty.spread = true;
        render();
      })
      .catch(function (err) {
        buffered = null;
        document.body.setAttribute("data-error", String(err && err.message || err));
        showBanner("Could not load /v1/roas: " + (err && err.message || err));
        dirty.table = true;
        render();
      })
      .then(function () {
        syncing = false;
        if (syncAgain) { syncAgain = false; resync(); }
      });
  }

  // Headless Chrome's --virtual-time-budget only advances while no request is pending, and an
  // EventSource request never ends; so in headless mode the stream is recycled: closed after its
  // second stats event, reopened (with a resync) a second later. Real browsers keep one connection.
  var HEADLESS = /HeadlessChrome/.test(navigator.userAgent);
  var source = null, retryDelay = 1000, retryTimer = null, statsSeen = 0, recycled = false;
  function onStreamEvent(type, e) {
    var data;
    try { data = JSON.parse(e.data); } catch (err) { return; }
    state.lastMessageAt = Date.now();
    if (HEADLESS && type === "stats" && ++statsSeen >= 2 && source) {
      source.close();
      source = null;
      recycled = true;
      retryTimer = setTimeout(connect, 1000);
    }
    if (buffered) buffered.push({ type: type, data: data });
    if (type === "row") {
      if (data && data.model != null) spreadSoon();
      if (data && data.model != null && data.model !== shownModel()) return; // another model's row
      applyRow(data);
      scheduleRender(data && data.final ? ["table", "windows"] : ["table"]);
    } else if (type === "alert") {
      applyAlert(data);
      scheduleRender(["alerts"]);
    } else {
      applyStats(data);
      scheduleRender(["ingest"]);
    }
  }
  function connect() {
    retryTimer = null;
    if (typeof EventSource === "undefined") { state.streamState = "disconnected"; return; }
    var es;
    try { es = new EventSource(api("/v1/stream")); } catch (err) { scheduleReconnect(); return; }
    source = es;
    statsSeen = 0;
    es.onopen = function () {
      if (source !== es) return;
      var wasDown = state.streamState === "disconnected" || recycled;
      recycled = false;
      state.streamState = "connected";
      state.lastMessageAt = Date.now();
      retryDelay = 1000;
      if (wasDown) resync(); // catch up on whatever happened while we were away
      scheduleRender([]);
    };
    es.addEventListener("row", function (e) { if (source === es) onStreamEvent("row", e); });
    es.addEventListener("alert", function (e) { if (source === es) onStreamEvent("alert", e); });
    es.addEventListener("stats", function (e) { if (source === es) onStreamEvent("stats", e); });
    es.onerror = function () {
      if (source !== es) return;
      es.close();
      source = null;
      state.streamState = "disconnected";
      scheduleRender([]);
      scheduleReconnect();
    };
  }
  function scheduleReconnect() {
    if (retryTimer) return;
    retryTimer = setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 15000);
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { scheduleRender(["windows", "ingest"]); }, 100);
  });
  window.addEventListener("hashchange", function () { location.reload(); });
  setInterval(resync, RESYNC_MS);
  setInterval(function () { renderPills(); }, 1000);
  setInterval(loadSpread, SPREAD_MS);

  render();
  resync();
  connect();
})();
