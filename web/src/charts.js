// Charts drawn with Chart.js (only the parts the console uses, so the bundle stays small). Every
// chart also has its numbers in a table next to it, for screen readers and for copying.

import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement,
  PointElement, Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);
Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
Chart.defaults.color = "#1f2937";
Chart.defaults.animation = false; // no motion; screenshots and tests see the final picture

// Okabe-Ito colours, distinguishable with colour-vision deficiencies, all readable on white.
export const palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#6B5B95", "#4B5563"];

// stackedBars draws one metric per bucket, stacked by series (deployments).
export function stackedBars(canvas, { labels, series, unit, format }) {
  return new Chart(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.label, data: s.values, backgroundColor: palette[i % palette.length], borderWidth: 0,
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true } },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: unit }, ticks: { callback: (v) => format(v) } },
      },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12 } },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${format(c.parsed.y)}` } },
      },
    },
  });
}

// budgetLine draws the cumulative cost of the billing period, its forecast to the period's end,
// and the 80 % and 100 % lines of the budget.
export function budgetLine(canvas, { labels, cumulative, forecast, limit }) {
  const flat = (v) => labels.map(() => v);
  return new Chart(canvas, {
    type: "line",
    data: {
      labels,
      datasets: [
        { label: "Cost so far", data: cumulative, borderColor: "#0072B2", backgroundColor: "#0072B2", pointRadius: 0, borderWidth: 2.5 },
        { label: "Forecast", data: forecast, borderColor: "#0072B2", borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5 },
        { label: "80 % of budget", data: flat(limit * 0.8), borderColor: "#B45309", borderDash: [2, 3], pointRadius: 0, borderWidth: 1.5 },
        { label: "Budget", data: flat(limit), borderColor: "#B91C1C", pointRadius: 0, borderWidth: 1.5 },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
        y: { beginAtZero: true, ticks: { callback: (v) => "$" + Number(v).toLocaleString("en-US") } },
      },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12 } },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: $${Number(c.parsed.y).toFixed(2)}` } },
      },
    },
  });
}
