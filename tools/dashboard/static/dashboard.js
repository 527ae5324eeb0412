// The dashboard page: polls /api/charts and draws each chart with Chart.js (vendored, see vendor/).
// After each refresh every <figure data-chart> carries what its chart shows, for people and tests alike:
// data-labels and data-values (the Chart.js datasets' numbers, JSON), data-requests (AWS requests the
// read took) and #status data-refreshes (completed refreshes).
"use strict";

const hourLabel = (iso) => iso.slice(11, 16);
const num = (text) => Number(text);

// chart name -> how its rows become Chart.js data
const SPECS = {
  orders: {
    type: "bar",
    data: (rows) => ({
      labels: rows.map((r) => hourLabel(r.hour)),
      datasets: [
        { label: "orders", data: rows.map((r) => r.orders), yAxisID: "y" },
        { label: "revenue", data: rows.map((r) => num(r.revenue)), type: "line", yAxisID: "y1" },
      ],
    }),
    options: { scales: { y: { beginAtZero: true }, y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } },
    note: (c) => `${c.totals.orders} orders, revenue ${c.totals.revenue}, ${c.totals.items_sold} items`,
  },
  views: {
    type: "bar",
    data: (rows) => ({ labels: rows.map((r) => hourLabel(r.hour)), datasets: [{ label: "views", data: rows.map((r) => r.views) }] }),
    note: (c) => `${c.totals.views} views`,
  },
  top: {
    type: "bar",
    data: (rows) => ({ labels: rows.map((r) => r.product_id), datasets: [{ label: "views", data: rows.map((r) => r.views) }] }),
    options: { indexAxis: "y" },
    note: (c) => (c.rows.length ? `#1 ${c.rows[0].product_id} with ${c.rows[0].views} views` : "no views"),
  },
  windows: {
    type: "bar",
    data: (rows) => ({
      labels: rows.map((r) => hourLabel(r.window_start)),
      datasets: [{ label: "orders (Flink)", data: rows.map((r) => num(r.values.orders ?? 0)) }],
    }),
    note: (c) => (c.rows.length ? `${c.rows.length} windows` : "no windows: run 'pipeline analytics run'"),
  },
  "bad-rows": {
    type: "bar",
    data: (rows) => ({ labels: rows.map((r) => hourLabel(r.hour)), datasets: [{ label: "bad rows", data: rows.map((r) => r.bad_rows) }] }),
    note: (c) => `${c.totals.bad_rows} bad rows (CloudWatch)`,
  },
  lag: {
    type: "bar",
    data: (rows) => ({
      labels: rows.map((r) => r.shard || hourLabel(r.at)),
      datasets: [{ label: "iterator age (ms)", data: rows.map((r) => r.iterator_age_ms) }],
    }),
    note: (c) => (c.runtime ? `runtime ${c.runtime.state}: ${c.runtime.events} events, ${c.runtime.bad_rows} bad rows` : c.source),
  },
};

const charts = {};
let refreshes = 0;

function draw(name, chart) {
  const figure = document.querySelector(`figure[data-chart="${name}"]`);
  const spec = SPECS[name];
  if (!figure || !spec) return;
  const data = spec.data(chart.rows);
  if (!charts[name]) {
    charts[name] = new Chart(figure.querySelector("canvas"), {
      type: spec.type,
      data,
      options: { animation: false, responsive: true, maintainAspectRatio: false, ...(spec.options || {}) },
    });
  } else {
    charts[name].data = data;
    charts[name].update("none");
  }
  const shown = charts[name].data;
  figure.dataset.labels = JSON.stringify(shown.labels);
  figure.dataset.values = JSON.stringify(shown.datasets.map((d) => d.data));
  figure.dataset.requests = String(chart.requests);
  figure.querySelector(".note").textContent = `${spec.note(chart)} · ${chart.requests} request(s): ${chart.source}`;
}

async function refresh() {
  const status = document.getElementById("status");
  const day = new URLSearchParams(location.search).get("day");
  let wait = 5;
  try {
    const response = await fetch(day ? `/api/charts?day=${encodeURIComponent(day)}` : "/api/charts", { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    wait = body.refresh_s;
    for (const [name, chart] of Object.entries(body.charts)) draw(name, chart);
    refreshes += 1;
    status.className = "";
    status.textContent = `${body.day} (UTC) · read at ${body.read_at} · refreshes every ${wait} s`;
    status.dataset.refreshes = String(refreshes);
    status.dataset.readAt = body.read_at;
  } catch (error) {
    status.className = "error";
    status.textContent = `cannot read the charts: ${error.message}`;
  }
  setTimeout(refresh, wait * 1000);
}

refresh();
