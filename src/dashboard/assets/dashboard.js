// The dashboard page's script. It fetches the JSON data routes every few
// seconds and renders tables and uPlot charts. Every value from the server is
// put into the page with textContent or as chart data, never as HTML, so
// names and comments cannot inject markup.
"use strict";

(() => {
  const BASE = "/_portico/dashboard";
  const REFRESH_INTERVAL_MS = 5000;

  /**
   * Chart definitions: which metrics each chart draws and how values read.
   * Sparse charts have gaps where no request came, so each value gets a
   * marker: a minute with traffic between empty minutes has no line to draw.
   */
  const CHARTS = [
    { id: "chart-requests", metrics: ["Requests"], colors: ["#2563eb"], bars: true, format: formatCount },
    { id: "chart-cache-hit-rate", metrics: ["CacheHitRate"], colors: ["#15803d"], percent: true, sparse: true, format: formatPercent },
    {
      id: "chart-error-rates",
      metrics: ["4xxErrorRate", "5xxErrorRate", "TotalErrorRate"],
      colors: ["#d97706", "#dc2626", "#6b7280"],
      percent: true,
      sparse: true,
      format: formatPercent,
    },
    { id: "chart-bytes", metrics: ["BytesDownloaded"], colors: ["#7c3aed"], format: formatBytes },
    { id: "chart-origin-latency", metrics: ["OriginLatency"], colors: ["#0891b2"], sparse: true, format: formatMilliseconds },
  ];

  const state = {
    range: "hour",
    selectedDistributionId: "",
    distributions: [],
    charts: new Map(),
    refreshing: false,
  };

  // Read by the browser test and handy in the developer console.
  window.porticoDashboard = { state, lastSeries: undefined, refreshCount: 0 };

  function formatCount(value) {
    if (value === null || value === undefined) return "–";
    return Math.round(value).toLocaleString("en-US");
  }

  function formatPercent(value) {
    if (value === null || value === undefined) return "–";
    return `${value.toFixed(1)} %`;
  }

  function formatMilliseconds(value) {
    if (value === null || value === undefined) return "–";
    return `${value.toFixed(value < 10 ? 1 : 0)} ms`;
  }

  function formatBytes(value) {
    if (value === null || value === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let scaled = value;
    let unit = 0;
    while (Math.abs(scaled) >= 1024 && unit < units.length - 1) {
      scaled /= 1024;
      unit++;
    }
    return `${scaled.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
  }

  function formatAge(nowMs, thenMs) {
    const seconds = Math.max(0, Math.round((nowMs - thenMs) / 1000));
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return `${Math.floor(seconds / 86400)} d ago`;
  }

  function formatTime(ms) {
    return new Date(ms).toLocaleString();
  }

  /** Creates an element with optional class and text; text always goes through textContent. */
  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function cell(row, text, className) {
    const td = element("td", className, text);
    row.append(td);
    return td;
  }

  function badge(text) {
    let kind = "badge-progress";
    if (text === "Deployed" || text === "Completed" || text === "live") kind = "badge-ok";
    if (text === "Disabled") kind = "badge-off";
    return element("span", `badge ${kind}`, text);
  }

  async function fetchJson(path) {
    const response = await fetch(`${BASE}/api/${path}`, {
      credentials: "same-origin",
      headers: { accept: "application/json" },
    });
    const contentType = response.headers.get("content-type") || "";
    // An ended session is redirected to the login page, which is HTML.
    if (response.redirected || !contentType.startsWith("application/json")) {
      window.location.assign(`${BASE}/login`);
      throw new Error("the session has ended");
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(`${path}: ${response.status} ${body.error || ""}`);
    }
    return response.json();
  }

  function renderDistributions(data, edges) {
    const tbody = document.querySelector("#distributions tbody");
    tbody.replaceChildren();
    document.getElementById("distributions-empty").hidden = data.distributions.length > 0;
    for (const distribution of data.distributions) {
      const row = element("tr");
      row.dataset.distributionId = distribution.id;
      cell(row, distribution.id, "mono");

      const status = cell(row, "");
      status.append(badge(distribution.status));
      if (!distribution.enabled) status.append(" ", badge("Disabled"));

      const names = cell(row, "");
      names.append(element("span", "mono", distribution.domainName));
      for (const alias of distribution.aliases) names.append(element("span", "sub mono", alias));

      const origins = cell(row, "");
      for (const origin of distribution.origins) {
        const line = element("span", "sub");
        line.append(element("span", "mono", origin.domainName + origin.originPath));
        line.append(` (${origin.kind === "s3" ? "S3" : "custom"}, ${origin.id})`);
        origins.append(line);
      }

      const inSync = edges.filter((edge) => edge.appliedVersions[distribution.id] === distribution.configVersion).length;
      const version = cell(row, `v${distribution.configVersion}`);
      version.append(element("span", "sub", `${inSync} of ${edges.length} edges applied`));

      cell(row, distribution.comment, "comment");
      cell(row, formatTime(distribution.lastModifiedMs));
      tbody.append(row);
    }
  }

  function renderEdges(data, distributions) {
    const tbody = document.querySelector("#edges tbody");
    tbody.replaceChildren();
    document.getElementById("edges-empty").hidden = data.edges.length > 0;
    const currentVersions = new Map(distributions.map((distribution) => [distribution.id, distribution.configVersion]));
    for (const edge of data.edges) {
      const row = element("tr");
      row.dataset.edgeId = edge.edgeId;
      cell(row, edge.edgeId, "mono");
      cell(row, "").append(badge("live"));
      const seen = cell(row, formatAge(data.nowMs, edge.lastSeenAtMs));
      seen.title = formatTime(edge.lastSeenAtMs);
      const versions = cell(row, "");
      for (const [distributionId, version] of Object.entries(edge.appliedVersions)) {
        const current = currentVersions.get(distributionId);
        const behind = current !== undefined && version < current;
        const text = `${distributionId}: v${version}${behind ? ` (current v${current})` : ""}`;
        versions.append(element("span", behind ? "sub mono behind" : "sub mono", text));
      }
      tbody.append(row);
    }
  }

  function renderInvalidations(data) {
    const tbody = document.querySelector("#invalidations tbody");
    tbody.replaceChildren();
    document.getElementById("invalidations-empty").hidden = data.invalidations.length > 0;
    for (const invalidation of data.invalidations) {
      const row = element("tr");
      cell(row, invalidation.distributionId, "mono");
      cell(row, invalidation.id, "mono");
      cell(row, "").append(badge(invalidation.status));
      const shown = invalidation.paths.slice(0, 3).join(" ");
      const more = invalidation.paths.length > 3 ? ` and ${invalidation.paths.length - 3} more` : "";
      cell(row, shown + more, "mono");
      cell(row, formatAge(data.nowMs, invalidation.createTimeMs)).title = formatTime(invalidation.createTimeMs);
      tbody.append(row);
    }
  }

  function renderDistributionSelect(distributions) {
    const select = document.getElementById("distribution-select");
    const ids = distributions.map((distribution) => distribution.id);
    if (!ids.includes(state.selectedDistributionId)) state.selectedDistributionId = ids[0] || "";
    const current = [...select.options].map((option) => option.value).join(",");
    if (current !== ids.join(",")) {
      select.replaceChildren();
      for (const distribution of distributions) {
        const label = distribution.comment ? `${distribution.id} · ${distribution.comment}` : distribution.id;
        const option = element("option", undefined, label.length > 60 ? `${label.slice(0, 59)}…` : label);
        option.value = distribution.id;
        select.append(option);
      }
    }
    select.value = state.selectedDistributionId;
  }

  function chartWidth(figure) {
    return Math.max(300, figure.clientWidth);
  }

  function makeChart(definition, figure, data) {
    const series = [{}];
    definition.metrics.forEach((metricName, index) => {
      series.push({
        label: metricName,
        stroke: definition.colors[index],
        width: 2,
        fill: definition.bars ? `${definition.colors[index]}99` : undefined,
        paths: definition.bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined,
        spanGaps: false,
        points: { show: definition.sparse === true, size: 6, fill: definition.colors[index] },
        value: (_chart, value) => definition.format(value),
      });
    });
    const options = {
      width: chartWidth(figure),
      height: 200,
      series,
      scales: definition.percent ? { y: { range: [0, 100] } } : { y: { range: (_chart, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{}, { size: 70, values: (_chart, ticks) => ticks.map((tick) => definition.format(tick)) }],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    };
    return new uPlot(options, data, figure);
  }

  function renderCharts(seriesData) {
    window.porticoDashboard.lastSeries = seriesData;
    for (const definition of CHARTS) {
      const figure = document.getElementById(definition.id);
      const data = [seriesData.timestamps, ...definition.metrics.map((metricName) => seriesData.metrics[metricName])];
      const values = data[1].filter((value) => value !== null);
      // Exposed for tests and for a quick look in the element inspector.
      figure.dataset.distributionId = seriesData.distributionId;
      figure.dataset.range = seriesData.range;
      figure.dataset.total = String(values.reduce((sum, value) => sum + value, 0));
      figure.dataset.points = String(values.length);

      let chart = state.charts.get(definition.id);
      if (chart === undefined) {
        chart = makeChart(definition, figure, data);
        state.charts.set(definition.id, chart);
      } else {
        chart.setData(data);
      }
    }
  }

  function clearCharts() {
    for (const definition of CHARTS) {
      const figure = document.getElementById(definition.id);
      figure.dataset.total = "0";
      figure.dataset.points = "0";
    }
  }

  async function refresh() {
    if (state.refreshing) return;
    state.refreshing = true;
    const errorBanner = document.getElementById("error");
    try {
      const [distributions, edges, invalidations] = await Promise.all([
        fetchJson("distributions"),
        fetchJson("edges"),
        fetchJson("invalidations"),
      ]);
      state.distributions = distributions.distributions;
      renderDistributions(distributions, edges.edges);
      renderEdges(edges, distributions.distributions);
      renderInvalidations(invalidations);
      renderDistributionSelect(distributions.distributions);
      if (state.selectedDistributionId) {
        const query = new URLSearchParams({ distributionId: state.selectedDistributionId, range: state.range });
        renderCharts(await fetchJson(`series?${query}`));
      } else {
        clearCharts();
      }
      errorBanner.hidden = true;
      document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()}, every ${REFRESH_INTERVAL_MS / 1000} s`;
      window.porticoDashboard.refreshCount++;
      document.body.dataset.refreshCount = String(window.porticoDashboard.refreshCount);
    } catch (error) {
      errorBanner.textContent = `Refresh failed: ${error.message}`;
      errorBanner.hidden = false;
    } finally {
      state.refreshing = false;
    }
  }

  function start() {
    fetchJson("session")
      .then((session) => {
        document.getElementById("who").textContent = session.accessKeyId;
      })
      .catch(() => {});

    document.getElementById("distribution-select").addEventListener("change", (event) => {
      state.selectedDistributionId = event.target.value;
      void refresh();
    });
    for (const button of document.querySelectorAll(".range-buttons button")) {
      button.addEventListener("click", () => {
        state.range = button.dataset.range;
        for (const other of document.querySelectorAll(".range-buttons button")) {
          other.classList.toggle("active", other === button);
        }
        void refresh();
      });
    }
    window.addEventListener("resize", () => {
      for (const definition of CHARTS) {
        const chart = state.charts.get(definition.id);
        if (chart) chart.setSize({ width: chartWidth(document.getElementById(definition.id)), height: 200 });
      }
    });

    void refresh();
    setInterval(() => void refresh(), REFRESH_INTERVAL_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
