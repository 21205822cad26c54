// The charts page: Apache ECharts fed by /dash/api/charts (the team metrics' numbers).
(function () {
  "use strict";
  var root = document.querySelector(".charts");
  if (!root || !window.echarts) return;
  var charts = [];

  function chart(id, option) {
    var el = document.getElementById(id);
    if (!el) return null;
    var c = echarts.init(el, null, { renderer: "canvas" });
    c.setOption(option);
    charts.push(c);
    return c;
  }

  function empty(id, text) {
    var el = document.getElementById(id);
    if (el) { el.classList.add("no-data"); el.style.height = "auto"; el.textContent = text; }
  }

  function bars(names, series, yName, max) {
    return {
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 12, top: 32, bottom: 28, containLabel: true },
      xAxis: { type: "category", data: names, axisLabel: { interval: 0 } },
      yAxis: { type: "value", name: yName, max: max },
      series: series
    };
  }

  function draw(data) {
    var L = data.labels, p = data.platforms, names = p.map(function (x) { return x.name; });
    if (!p.length) {
      ["chart-acceptance", "chart-deadlines", "chart-time"].forEach(function (id) { empty(id, L.no_data); });
    } else {
      chart("chart-acceptance", bars(names, [
        { name: L.rate, type: "bar", data: p.map(function (x) { return x.acceptance_rate; }), itemStyle: { color: "#2ea121" }, label: { show: true, formatter: "{c}%" } }
      ], "%", 100));
      chart("chart-deadlines", bars(names, [
        { name: L.met, type: "bar", stack: "d", data: p.map(function (x) { return x.met; }), itemStyle: { color: "#3370ff" } },
        { name: L.missed, type: "bar", stack: "d", data: p.map(function (x) { return x.missed; }), itemStyle: { color: "#f54a45" } }
      ], L.count));
      chart("chart-time", bars(names, [
        { name: L.hours, type: "bar", data: p.map(function (x) { return x.avg_hours; }), itemStyle: { color: "#7f3bf5" }, label: { show: true } }
      ], L.hours));
    }
    if (!data.reasons.length) {
      empty("chart-reasons", L.no_data);
    } else {
      var categories = [], seen = {};
      data.reasons.forEach(function (r) { r.reasons.forEach(function (x) { if (!seen[x.reason]) { seen[x.reason] = 1; categories.push(x.reason); } }); });
      chart("chart-reasons", {
        tooltip: { trigger: "axis" }, legend: { top: 0 },
        grid: { left: 12, right: 16, top: 32, bottom: 12, containLabel: true },
        xAxis: { type: "value", name: L.count, minInterval: 1 },
        yAxis: { type: "category", data: categories },
        series: data.reasons.map(function (r) {
          var counts = {}; r.reasons.forEach(function (x) { counts[x.reason] = x.count; });
          return { name: r.name, type: "bar", data: categories.map(function (c) { return counts[c] || 0; }) };
        })
      });
    }
    if (data.roi) {  // campaign types along the axis, one bar per platform
      chart("chart-roi", bars(data.roi.types, data.roi.series.map(function (s) {
        return { name: s.name, type: "bar", data: s.values, label: { show: true } };
      }), L.roi));
    } else {
      var note = document.getElementById("roi-empty");
      document.getElementById("chart-roi").style.display = "none";
      note.hidden = false; note.textContent = data.roi_empty;
    }
    root.dataset.ready = "1";
  }

  fetch(root.dataset.feed, { credentials: "same-origin", headers: { "Accept": "application/json" } })
    .then(function (r) { return r.json().then(function (d) { if (!r.ok) throw new Error(d.detail && d.detail.message || r.statusText); return d; }); })
    .then(draw)
    .catch(function (err) {
      var box = document.getElementById("flash");
      if (box) { var d = document.createElement("div"); d.className = "flash refused"; d.setAttribute("role", "alert"); d.textContent = err.message; box.replaceChildren(d); }
      root.dataset.ready = "error";
    });

  var form = document.getElementById("chart-filters");
  if (form) form.addEventListener("change", function () { form.submit(); });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
