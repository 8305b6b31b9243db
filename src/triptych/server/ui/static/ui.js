/* triptych web UI: draws the charts of a page from the JSON the server embedded in it.
 * Each <canvas data-chart="ID"> reads <script type="application/json" id="ID">, one of
 *   {"kind": "lines", "x": "step", "y": "mse", "series": [{"label": "run a", "points": [[0, 1.5], ...]}]}
 *   {"kind": "parallel", "axes": ["alpha", "mse"], "series": [{"label": "run a", "values": [0.2, 1], "raw": ["0.1", "3298.9"]}]}
 * The JSON comes from Jinja's tojson (escaped for HTML); text reaches the page only through
 * Chart.js's canvas drawing, never as markup. */
(function () {
  "use strict";
  var palette = ["#2b5fab", "#d2691e", "#1b7a3d", "#b3261e", "#7b4fa0", "#00838f",
                 "#9a6200", "#c2185b", "#546e7a", "#6d4c41"];

  function lines(spec) {
    return {
      type: "line",
      data: {
        datasets: spec.series.map(function (s, i) {
          return {
            label: s.label,
            data: s.points.map(function (p) { return {x: p[0], y: p[1]}; }),
            borderColor: palette[i % palette.length],
            backgroundColor: palette[i % palette.length],
            pointRadius: s.points.length > 60 ? 0 : 2,
            borderWidth: 1.5,
            tension: 0
          };
        })
      },
      options: {
        animation: false, maintainAspectRatio: false, parsing: true,
        interaction: {mode: "nearest", intersect: false},
        scales: {
          x: {type: "linear", title: {display: true, text: spec.x}},
          y: {title: {display: true, text: spec.y}}
        },
        plugins: {legend: {display: spec.series.length > 1, position: "bottom"}}
      }
    };
  }

  function parallel(spec) {
    return {
      type: "line",
      data: {
        labels: spec.axes,
        datasets: spec.series.map(function (s, i) {
          return {
            label: s.label, data: s.values, raw: s.raw,
            borderColor: palette[i % palette.length],
            backgroundColor: palette[i % palette.length],
            pointRadius: 3, borderWidth: 2, tension: 0, spanGaps: false
          };
        })
      },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: {
          y: {min: 0, max: 1, title: {display: true, text: "normalised (min to max of the compared runs)"}},
          x: {grid: {color: "#9aa5b1", lineWidth: 1}}
        },
        plugins: {
          legend: {position: "bottom"},
          tooltip: {callbacks: {label: function (ctx) {
            var raw = ctx.dataset.raw[ctx.dataIndex];
            return ctx.dataset.label + ": " + (raw === null ? "-" : raw);
          }}}
        }
      }
    };
  }

  function category(spec) {
    var datasets = spec.series.map(function (s, i) {
      return {
        label: s.label, data: s.values,
        borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length],
        pointRadius: 2, borderWidth: 1.5, tension: 0, spanGaps: false
      };
    });
    if (spec.threshold !== null && spec.threshold !== undefined) {
      datasets.push({
        label: "threshold", data: spec.labels.map(function () { return spec.threshold; }),
        borderColor: "#b3261e", borderDash: [5, 4], borderWidth: 1, pointRadius: 0
      });
    }
    return {
      type: "line",
      data: {labels: spec.labels, datasets: datasets},
      options: {
        animation: false, maintainAspectRatio: false,
        interaction: {mode: "index", intersect: false},
        scales: {y: {title: {display: true, text: spec.y}}},
        plugins: {legend: {position: "bottom"}}
      }
    };
  }

  function bars(spec) {
    return {
      type: "bar",
      data: {
        labels: spec.labels,
        datasets: spec.series.map(function (s, i) {
          return {label: s.label, data: s.values, backgroundColor: palette[i % palette.length],
                  barPercentage: 1.0, categoryPercentage: 0.95};
        })
      },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: {x: {ticks: {maxRotation: 0, autoSkip: true, maxTicksLimit: 6}}},
        plugins: {legend: {display: false}}
      }
    };
  }

  var kinds = {lines: lines, parallel: parallel, category: category, bars: bars};

  function draw(root) {
    if (typeof Chart === "undefined") { return; }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) { return; }
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) { return; }
      var spec = JSON.parse(source.textContent);
      var build = kinds[spec.kind];
      if (!build) { return; }
      new Chart(canvas, build(spec));
      canvas.dataset.drawn = "1";
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select[data-autosubmit]")) { e.target.form.submit(); }
  });
  document.addEventListener("htmx:afterSwap", function (e) { draw(e.target); });
})();
