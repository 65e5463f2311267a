/* The report's page: an index of domains (rendered in the HTML), and one domain at a time
   (#domain=<id>), whose data is parsed and whose charts are drawn only when it is opened. */
(function () {
  "use strict";

  var COLOR = {
    own: "#2563eb", competitor: "#ea580c", third_party: "#94a3b8",
    visibility: "#2563eb", mentions: "#059669", citations: "#9333ea", previous: "#0f172a"
  };
  var TYPE_LABEL = { own: "Own site", competitor: "Competitors", third_party: "Third parties" };
  var PRINT_WIDTH = 690;
  var FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif", size: 12, color: "#0f172a" };
  var CONFIG = { displayModeBar: false, responsive: true };

  var index = JSON.parse(document.getElementById("report-index").textContent);
  var position = {};
  index.forEach(function (entry, n) { position[entry.id] = n; });
  var parsed = {};
  var drawn = [];

  function domainData(id) {
    if (!(id in position)) { return null; }
    if (!parsed[id]) {
      parsed[id] = JSON.parse(document.getElementById("domain-data-" + position[id]).textContent);
    }
    return parsed[id];
  }

  // --- small helpers -------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }
  function fmt(value, digits) {
    return value === null || value === undefined ? "n/a" : Number(value).toFixed(digits === undefined ? 1 : digits);
  }
  function count(value) {
    return value === null || value === undefined ? "n/a" : Number(value).toLocaleString("en-US");
  }
  function signed(value, unit) {
    if (value === null || value === undefined) { return "n/a"; }
    var text = (value > 0 ? "+" : value < 0 ? "\u2212" : "\u00b1") + Math.abs(value).toFixed(1);
    return text + (unit || "");
  }
  function trendClass(value) { return value > 0 ? "up" : value < 0 ? "down" : ""; }
  function baseLayout(height, extra) {
    var layout = {
      height: height, font: FONT, paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
      margin: { l: 60, r: 20, t: 10, b: 45 }, hoverlabel: { font: { size: 12 } },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" }
    };
    Object.keys(extra || {}).forEach(function (key) { layout[key] = extra[key]; });
    return layout;
  }
  function axisTitle(text) { return { text: text, font: { size: 12, color: "#334155" } }; }

  function card(title, note, wide) {
    var section = el("section", { "class": "card" + (wide ? " wide" : "") }, [el("h3", { text: title })]);
    if (note) { section.appendChild(el("p", { "class": "note", text: note })); }
    return section;
  }
  function chartDiv(section, name) {
    var div = el("div", { "class": "chart", "data-chart": name });
    section.appendChild(div);
    return div;
  }
  function empty(section, text) {
    section.appendChild(el("p", { "class": "empty", text: text || "No data loaded for this section." }));
  }
  function plot(div, traces, layout) {
    Plotly.newPlot(div, traces, layout, CONFIG);
    drawn.push(div);
  }

  // --- charts --------------------------------------------------------------------------------
  function trendChart(section, trend) {
    if (!trend.dates.length) { return empty(section); }
    var div = chartDiv(section, "trend");
    var line = function (y, name, color, axis, unit, digits) {
      return {
        type: "scatter", mode: "lines+markers", x: trend.dates, y: y, name: name, yaxis: axis,
        connectgaps: false, line: { color: color, width: 2 }, marker: { color: color, size: 4 },
        hovertemplate: "%{x|%a %d %b %Y}: %{y:" + digits + "}" + unit + "<extra>" + name + "</extra>"
      };
    };
    plot(div, [
      line(trend.visibility, "Visibility (%)", COLOR.visibility, "y", "%", ".1f"),
      line(trend.mentions, "Mentions (count per day)", COLOR.mentions, "y2", "", ",d"),
      line(trend.citations, "Citations (count per day)", COLOR.citations, "y2", "", ",d")
    ], baseLayout(430, {
      xaxis: { type: "date", anchor: "y2", showgrid: false, title: axisTitle("Day (UTC)") },
      yaxis: { domain: [0.47, 1], title: axisTitle("Visibility (%)"), rangemode: "tozero", gridcolor: "#eef2f7", zeroline: false },
      yaxis2: { domain: [0, 0.36], title: axisTitle("Per day (count)"), rangemode: "tozero", gridcolor: "#eef2f7", zeroline: false },
      hovermode: "x unified"
    }));
  }

  function shareOfVoiceChart(section, sov) {
    if (!sov) { return empty(section); }
    var div = chartDiv(section, "share_of_voice");
    var labels = sov.brands.map(function (b) { return b.own ? b.name + " (you)" : b.name; });
    var top = Math.max.apply(null, sov.brands.map(function (b) { return Math.max(b.sov || 0, b.previous || 0); }));
    var column = top * 1.1 + 1;
    var bar = function (own) {
      var picked = sov.brands.map(function (b) { return b.own === own; });
      var pick = function (values) { return values.filter(function (_, n) { return picked[n]; }); };
      return {
        type: "bar", orientation: "h", name: own ? "Own brand" : "Competitors",
        y: pick(labels), x: pick(sov.brands.map(function (b) { return b.sov; })),
        marker: { color: own ? COLOR.own : "#fdba74" },
        hovertemplate: "%{y}: %{x:.2f}% share of voice<extra></extra>"
      };
    };
    var traces = [bar(true), bar(false)];
    if (sov.previous_snapshot) {
      traces.push({
        type: "scatter", mode: "markers", name: "Previous snapshot (" + sov.previous_snapshot + ")",
        y: labels, x: sov.brands.map(function (b) { return b.previous; }),
        marker: { symbol: "line-ns-open", size: 18, line: { width: 2.5, color: COLOR.previous }, color: COLOR.previous },
        hovertemplate: "%{y}: %{x:.2f}% on " + sov.previous_snapshot + "<extra></extra>"
      });
    }
    // the numbers in a column of their own, clear of the bars and the previous markers
    traces.push({
      type: "scatter", mode: "text", showlegend: false, hoverinfo: "skip", y: labels,
      x: labels.map(function () { return column; }), textposition: "middle right", cliponaxis: false,
      text: sov.brands.map(function (b) {
        var change = b.change === null ? (sov.previous_snapshot ? "new" : "") : signed(b.change, " pp");
        return "<b>" + fmt(b.sov) + "%</b>" + (change ? "  " + change : "");
      }),
      textfont: { color: "#334155" }
    });
    plot(div, traces, baseLayout(90 + 34 * sov.brands.length, {
      barmode: "overlay", margin: { l: 150, r: 20, t: 10, b: 45 },
      xaxis: { title: axisTitle("Share of voice (% of brand mentions)"), range: [0, column * 1.45], gridcolor: "#eef2f7",
               ticksuffix: "%", tickvals: niceTicks(column) },
      yaxis: { type: "category", categoryorder: "array", categoryarray: labels, autorange: "reversed", automargin: true }
    }));
  }

  // gridlines only under the bars, not under the column of numbers
  function niceTicks(limit) {
    var step = limit > 60 ? 20 : limit > 30 ? 10 : limit > 12 ? 5 : limit > 6 ? 2 : 1;
    var ticks = [];
    for (var t = 0; t <= limit; t += step) { ticks.push(t); }
    return ticks;
  }

  function assistantsChart(section, assistants) {
    if (!assistants) { return empty(section); }
    var div = chartDiv(section, "assistants");
    var names = assistants.channels.map(function (c) { return c.channel; });
    var positions = assistants.channels.map(function (c) { return c.position; });
    plot(div, [
      {
        type: "bar", orientation: "h", name: "Visibility (%)", y: names,
        x: assistants.channels.map(function (c) { return c.visibility; }),
        marker: { color: COLOR.visibility }, text: assistants.channels.map(function (c) { return fmt(c.visibility) + "%"; }),
        textposition: "outside", cliponaxis: false, hovertemplate: "%{y}: %{x:.2f}% visibility<extra></extra>"
      },
      {
        type: "scatter", mode: "markers+text", name: "Average position", y: names, x: positions,
        xaxis: "x2", marker: { color: COLOR.competitor, size: 10 }, cliponaxis: false,
        text: positions.map(function (p) { return p === null ? "n/a" : fmt(p); }), textposition: "middle right",
        hovertemplate: "%{y}: average position %{x:.2f}<extra></extra>"
      }
    ], baseLayout(90 + 30 * names.length, {
      margin: { l: 105, r: 20, t: 10, b: 45 },
      xaxis: { domain: [0, 0.56], title: axisTitle("Visibility (%)"), rangemode: "tozero", gridcolor: "#eef2f7", ticksuffix: "%",
               range: [0, Math.max.apply(null, assistants.channels.map(function (c) { return c.visibility || 0; })) * 1.3 + 1] },
      xaxis2: { domain: [0.66, 1], anchor: "y", title: axisTitle("Average position (1 = first)"), gridcolor: "#eef2f7",
                range: [0, Math.max.apply(null, positions.map(function (p) { return p || 0; })) * 1.3 + 1] },
      yaxis: { type: "category", categoryorder: "array", categoryarray: names, autorange: "reversed", automargin: true }
    }));
  }

  function sourcesCharts(section, sources) {
    if (!sources) { return empty(section); }
    var pair = el("div", { "class": "pair" });
    section.appendChild(pair);
    var kinds = Object.keys(TYPE_LABEL);
    var split = chartDiv(pair, "sources_split");
    plot(split, [{
      type: "pie", hole: 0.55, sort: false, direction: "clockwise",
      labels: kinds.map(function (kind) { return TYPE_LABEL[kind]; }),
      values: kinds.map(function (kind) { return sources.by_type[kind]; }),
      marker: { colors: kinds.map(function (kind) { return COLOR[kind]; }) },
      texttemplate: "%{percent:.1%}", textposition: "inside",
      hovertemplate: "%{label}: %{percent:.1%} of citations (%{value:,d})<extra></extra>"
    }], baseLayout(300, {
      margin: { l: 10, r: 10, t: 10, b: 10 },
      legend: { orientation: "h", x: 0.5, xanchor: "center", y: -0.02, yanchor: "top" },
      annotations: [{ text: "% of<br>citations", showarrow: false, font: { size: 12, color: "#64748b" } }]
    }));
    var hosts = chartDiv(pair, "sources_hosts");
    var labels = sources.hosts.map(function (h) { return h.host; });
    plot(hosts, Object.keys(TYPE_LABEL).map(function (kind) {
      var rows = sources.hosts.filter(function (h) { return h.type === kind; });
      return {
        type: "bar", orientation: "h", name: TYPE_LABEL[kind], y: rows.map(function (h) { return h.host; }),
        x: rows.map(function (h) { return h.citations; }), marker: { color: COLOR[kind] },
        text: rows.map(function (h) { return count(h.citations); }), textposition: "outside", cliponaxis: false,
        customdata: rows.map(function (h) { return [h.urls, h.competitor ? " (" + h.competitor + ")" : ""]; }),
        hovertemplate: "%{y}%{customdata[1]}: %{x:,d} citations over %{customdata[0]} URL(s)<extra></extra>"
      };
    }), baseLayout(Math.max(300, 80 + 26 * labels.length), {
      barmode: "overlay", showlegend: false, margin: { l: 150, r: 30, t: 6, b: 45 },
      xaxis: { title: axisTitle("Citations (count)"), rangemode: "tozero", gridcolor: "#eef2f7",
               range: [0, Math.max.apply(null, sources.hosts.map(function (h) { return h.citations || 0; })) * 1.18 + 1] },
      yaxis: { type: "category", categoryorder: "array", categoryarray: labels, autorange: "reversed", automargin: true }
    }));
  }

  function fanoutSection(section, fanout) {
    if (!fanout.length) { return empty(section); }
    var div = chartDiv(section, "fanout");
    var names = fanout.map(function (c) { return c.channel; });
    plot(div, [{
      type: "bar", orientation: "h", name: "Fan-out queries issued", y: names,
      x: fanout.map(function (c) { return c.emissions; }), marker: { color: "#6366f1" },
      text: fanout.map(function (c) { return count(c.emissions) + " (" + count(c.distinct_queries) + " distinct)"; }),
      textposition: "outside", cliponaxis: false,
      hovertemplate: "%{y}: %{x:,d} queries issued<extra></extra>"
    }], baseLayout(80 + 26 * names.length, {
      showlegend: false, margin: { l: 105, r: 30, t: 6, b: 45 },
      xaxis: { title: axisTitle("Fan-out queries issued (count)"), rangemode: "tozero", gridcolor: "#eef2f7",
               range: [0, Math.max.apply(null, fanout.map(function (c) { return c.emissions || 0; })) * 1.3 + 1] },
      yaxis: { type: "category", categoryorder: "array", categoryarray: names, autorange: "reversed", automargin: true }
    }));
    var grid = el("div", { "class": "fanout-grid" });
    fanout.forEach(function (channel) {
      var top = Math.max.apply(null, channel.queries.map(function (q) { return q.emissions; }));
      var list = el("ol", {}, channel.queries.map(function (q) {
        return el("li", {}, [el("div", { "class": "bar" }, [
          el("i", { style: "width:" + Math.round(60 * q.emissions / top) + "px" }),
          el("b", { text: count(q.emissions) }),
          el("span", { text: q.query, title: q.prompts + " prompt(s)" })
        ])]);
      }));
      grid.appendChild(el("div", {}, [
        el("h4", {}, [channel.channel + " ", el("span", { text: "top " + channel.queries.length + " of " + count(channel.distinct_queries) + " queries, times issued" })]),
        list
      ]));
    });
    section.appendChild(grid);
  }

  // --- views ---------------------------------------------------------------------------------
  function kpi(label, value, unit, detail, detailClass) {
    return el("div", { "class": "kpi" }, [
      el("div", { "class": "label", text: label }),
      el("div", { "class": "value" }, [value, el("small", { text: unit })]),
      el("div", { "class": "detail " + (detailClass || ""), text: detail })
    ]);
  }

  function showDomain(id) {
    var domain = domainData(id);
    var view = document.getElementById("domain-view");
    if (!domain) { location.hash = ""; return; }
    drawn.forEach(function (div) { Plotly.purge(div); });
    drawn = [];
    view.textContent = "";
    var n = position[id];
    var step = el("span", { "class": "step" });
    if (n > 0) { step.appendChild(el("a", { href: "#domain=" + encodeURIComponent(index[n - 1].id), text: "\u2039 " + index[n - 1].name })); }
    if (n < index.length - 1) { step.appendChild(el("a", { href: "#domain=" + encodeURIComponent(index[n + 1].id), text: index[n + 1].name + " \u203a" })); }
    view.appendChild(el("nav", { "class": "crumbs" }, [el("a", { href: "#", text: "\u2190 All domains" }), el("span", { "class": "muted", text: (n + 1) + " of " + index.length }), step]));
    var head = el("div", { "class": "domain-head" }, [el("h2", { text: domain.name })]);
    if (domain.website) { head.appendChild(el("span", { text: domain.website })); }
    head.appendChild(el("span", { "class": "muted small", text: "id " + domain.id }));
    head.appendChild(el("span", { "class": "muted small", text: "data as of " + (domain.newest_generated_at || "n/a") }));
    view.appendChild(head);

    var s = domain.summary;
    var sov = domain.share_of_voice;
    var best = domain.assistants && domain.assistants.channels[0];
    view.appendChild(el("div", { "class": "kpis" }, [
      kpi("Visibility, " + (s.visibility_day || "latest day"), fmt(s.visibility), " %",
          signed(s.visibility_change_7d, " pp") + " vs 7 days before", trendClass(s.visibility_change_7d)),
      kpi("Share of voice, own brand", fmt(s.sov), " %",
          (s.sov_rank ? "rank " + s.sov_rank + " of " + s.brands + ", " : "") + signed(s.sov_change, " pp") + " vs previous snapshot",
          trendClass(s.sov_change)),
      kpi("Citations, latest snapshot", count(s.citations), "",
          fmt(s.own_citations_pct) + "% to the own site"),
      kpi("Most visible assistant", best ? best.channel : "n/a", "",
          best ? fmt(best.visibility) + "% visibility, position " + fmt(best.position) : "")
    ]));

    var grid = el("div", { "class": "grid" });
    view.appendChild(grid);
    var trend = card("Visibility trend",
      "Daily visibility (%, left) with mentions and citations per day (count, below). A day without data is a gap, not a zero.", true);
    var sovCard = card("Share of voice against competitors",
      sov ? "Snapshot " + sov.snapshot + " (" + sov.days + "-day window); change in percentage points (pp) vs " + (sov.previous_snapshot || "no previous snapshot") + "." : "");
    var assistants = card("By assistant",
      domain.assistants ? "Visibility (%) and average position in the answers (1 = first, lower is better); snapshot " + domain.assistants.snapshot + " (" + domain.assistants.days + "-day window)." : "");
    var sources = card("Most-cited sources",
      domain.sources ? "Citations by source (% of citations: own site, competitors', third parties'), and the " + domain.sources.hosts.length + " most-cited of " + domain.sources.total_hosts + " hosts (count); snapshot " + domain.sources.snapshot + " (" + domain.sources.days + "-day window)." : "", true);
    var fanout = card("Top fan-out queries per assistant",
      "The search queries each assistant issued while answering the tracked prompts (times issued, every emission loaded).", true);
    [trend, sovCard, assistants, sources, fanout].forEach(function (c) { grid.appendChild(c); });

    document.getElementById("index-view").hidden = true;
    view.hidden = false;
    window.scrollTo(0, 0);
    trendChart(trend, domain.trend);
    shareOfVoiceChart(sovCard, sov);
    assistantsChart(assistants, domain.assistants);
    sourcesCharts(sources, domain.sources);
    fanoutSection(fanout, domain.fanout);
    document.title = domain.name + " \u2013 AIclicks report";
    document.body.setAttribute("data-view", "domain");
  }

  function showIndex() {
    drawn.forEach(function (div) { Plotly.purge(div); });
    drawn = [];
    document.getElementById("domain-view").hidden = true;
    document.getElementById("domain-view").textContent = "";
    document.getElementById("index-view").hidden = false;
    document.title = "AIclicks report";
    document.body.setAttribute("data-view", "index");
  }

  function route() {
    var match = /^#domain=(.+)$/.exec(location.hash);
    if (match) { showDomain(decodeURIComponent(match[1])); } else { showIndex(); }
  }

  // --- the index: filter and sort ------------------------------------------------------------
  var table = document.getElementById("domain-table");
  var body = table.tBodies[0];
  document.getElementById("domain-filter").addEventListener("input", function (event) {
    var needle = event.target.value.trim().toLowerCase();
    Array.prototype.forEach.call(body.rows, function (row) {
      row.hidden = needle !== "" && row.getAttribute("data-search").indexOf(needle) < 0;
    });
  });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
    var kind = th.getAttribute("data-sort");
    if (kind === "none") { th.style.cursor = "default"; return; }
    th.addEventListener("click", function () {
      var descending = th.getAttribute("data-order") !== "desc";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) { other.removeAttribute("data-order"); });
      th.setAttribute("data-order", descending ? "desc" : "asc");
      var key = function (row) {
        var value = row.cells[column].getAttribute("data-value");
        return kind === "number" ? (value === "" ? -Infinity : Number(value)) : value;
      };
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var order = x < y ? -1 : x > y ? 1 : 0;
        return descending ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });

  // charts at paper width while printing, back to the window's width after
  window.addEventListener("beforeprint", function () {
    drawn.forEach(function (div) { Plotly.relayout(div, { width: PRINT_WIDTH }); });
  });
  window.addEventListener("afterprint", function () {
    drawn.forEach(function (div) { Plotly.relayout(div, { width: null, autosize: true }); Plotly.Plots.resize(div); });
  });

  window.addEventListener("hashchange", route);
  route();
}());
