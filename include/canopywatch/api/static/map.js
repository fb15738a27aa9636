/* canopywatch web map: alerts (vector tiles), AOI outlines, scene COG tiles, a date slider,
   a legend, alert details on click and a chart of alerted hectares per AOI. */
(function () {
  "use strict";
  const STATUS_COLOURS = ["match", ["get", "status"],
    "high", "#d7191c", "low", "#fdae61", "withdrawn", "#8c8c8c", "plantation_harvest", "#7b3294",
    "#fdae61"];
  const DAY_MS = 86400000;
  const origin = window.location.origin;

  function apiKey() {
    const match = window.location.hash.match(/key=([^&]+)/);
    if (match) {
      sessionStorage.setItem("canopywatch-api-key", decodeURIComponent(match[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem("canopywatch-api-key") || "";
  }
  let key = apiKey();
  const headers = () => (key ? { "X-API-Key": key } : {});
  const status = (text) => { document.getElementById("status").textContent = text; };

  async function getJson(path) {
    const reply = await fetch(origin + path, { headers: headers() });
    if (reply.status === 401 || reply.status === 403) {
      document.getElementById("key-box").hidden = false;
      throw new Error("an API key is needed (" + reply.status + ")");
    }
    if (!reply.ok) throw new Error(path + ": HTTP " + reply.status);
    return reply.json();
  }

  document.getElementById("key-box").addEventListener("submit", (event) => {
    event.preventDefault();
    key = document.getElementById("key-input").value.trim();
    sessionStorage.setItem("canopywatch-api-key", key);
    window.location.reload();
  });

  const map = new maplibregl.Map({
    container: "map",
    style: { version: 8, sources: {}, layers: [
      { id: "background", type: "background", paint: { "background-color": "#1d2b1f" } }] },
    center: [0, 0],
    zoom: 1,
    attributionControl: { customAttribution: "Contains modified Copernicus Sentinel data" },
    transformRequest: (url) => (url.startsWith(origin) ? { url, headers: headers() } : { url }),
  });
  map.addControl(new maplibregl.NavigationControl(), "top-left");
  map.addControl(new maplibregl.ScaleControl(), "bottom-left");
  window.cwMap = map;
  window.cwState = { ready: false, error: null };

  function bboxOf(features) {
    let b = [180, 90, -180, -90];
    const visit = (c) => {
      if (typeof c[0] === "number") {
        b = [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])];
      } else c.forEach(visit);
    };
    features.forEach((f) => visit(f.geometry.coordinates));
    return b;
  }

  function chart(name, rows) {
    const byMonth = new Map();
    rows.forEach((r) => {
      const entry = byMonth.get(r.period_start) || {};
      entry[r.status] = (entry[r.status] || 0) + r.hectares;
      byMonth.set(r.period_start, entry);
    });
    const months = [...byMonth.keys()].sort();
    const w = 290, h = 110, pad = 22;
    const totals = months.map((m) => Object.values(byMonth.get(m)).reduce((a, b) => a + b, 0));
    const max = Math.max(0.01, ...totals);
    const bw = months.length ? (w - pad) / months.length : 0;
    const order = ["high", "low", "plantation_harvest", "withdrawn"];
    const colour = { high: "#d7191c", low: "#fdae61", withdrawn: "#8c8c8c", plantation_harvest: "#7b3294" };
    let bars = "";
    months.forEach((m, i) => {
      let y = h - pad;
      order.forEach((s) => {
        const v = byMonth.get(m)[s] || 0;
        if (!v) return;
        const bh = (v / max) * (h - 2 * pad);
        y -= bh;
        bars += `<rect x="${pad + i * bw + 1}" y="${y}" width="${Math.max(1, bw - 2)}" height="${bh}"` +
          ` fill="${colour[s] || "#999"}"><title>${m} ${s}: ${v.toFixed(2)} ha</title></rect>`;
      });
      if (i === 0 || i === months.length - 1) {
        bars += `<text x="${pad + i * bw}" y="${h - 6}" font-size="9">${m.slice(0, 7)}</text>`;
      }
    });
    const div = document.createElement("div");
    div.className = "chart";
    div.dataset.aoi = name;
    div.innerHTML = `<div><b>${name}</b> (${totals.reduce((a, b) => a + b, 0).toFixed(2)} ha)</div>` +
      `<svg width="${w}" height="${h}" role="img"><text x="2" y="12" font-size="9">${max.toFixed(1)} ha</text>` +
      `<line x1="${pad}" y1="${h - pad}" x2="${w}" y2="${h - pad}" stroke="#999"/>${bars}</svg>`;
    document.getElementById("charts").appendChild(div);
  }

  function setScene(sceneId) {
    if (map.getLayer("scene")) map.removeLayer("scene");
    if (map.getSource("scene")) map.removeSource("scene");
    if (!sceneId) return;
    const style = document.getElementById("ndvi-toggle").checked ? "ndvi" : "truecolor";
    map.addSource("scene", { type: "raster", tileSize: 256,
      tiles: [`${origin}/cog/tiles/${sceneId}/{z}/{x}/{y}.png?style=${style}`] });
    map.addLayer({ id: "scene", type: "raster", source: "scene" }, "aoi-outline");
  }

  function popup(event) {
    const feature = event.features[0];
    const id = feature.properties.alert_id;
    const box = new maplibregl.Popup().setLngLat(event.lngLat).setHTML("loading…").addTo(map);
    getJson(`/alerts/${encodeURIComponent(id)}`).then((alert) => {
      const p = alert.properties;
      const row = (k, v) => `<tr><td>${k}</td><td>${v}</td></tr>`;
      box.setHTML(`<table>${row("alert", p.alert_id)}${row("date", (p.alert_date || "").slice(0, 10))}` +
        row("confirmed", (p.confirmed_date || "—").slice(0, 10)) +
        row("hectares", Number(p.area_ha).toFixed(2)) + row("confidence", Number(p.confidence).toFixed(2)) +
        row("status", p.status) + row("model version", p.model_version) +
        row("scene ids", (p.scene_ids || []).join("<br>") || "—") + "</table>");
    }).catch((e) => box.setHTML(String(e)));
  }

  map.on("load", async () => {
    try {
      const areas = await getJson("/aois");
      map.addSource("aois", { type: "geojson", data: areas });
      map.addLayer({ id: "aoi-outline", type: "line", source: "aois",
        paint: { "line-color": "#00e5ff", "line-width": 2 } });
      map.addSource("alerts", { type: "vector", tiles: [`${origin}/tiles/alerts/{z}/{x}/{y}.pbf`],
        minzoom: 0, maxzoom: 16 });
      map.addLayer({ id: "alerts-fill", type: "fill", source: "alerts", "source-layer": "alerts",
        paint: { "fill-color": STATUS_COLOURS,
          "fill-opacity": ["interpolate", ["linear"], ["get", "confidence"], 0, 0.3, 1, 0.9] } });
      map.addLayer({ id: "alerts-line", type: "line", source: "alerts", "source-layer": "alerts",
        paint: { "line-color": STATUS_COLOURS, "line-width": 1.5 } });
      map.on("click", "alerts-fill", popup);
      map.on("mouseenter", "alerts-fill", () => { map.getCanvas().style.cursor = "pointer"; });
      map.on("mouseleave", "alerts-fill", () => { map.getCanvas().style.cursor = ""; });

      if (areas.features.length) {
        const b = bboxOf(areas.features);
        map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 30, animate: false });
      }
      // the date slider: alerts dated up to the chosen day
      const stats = await Promise.all(areas.features.map((f) =>
        getJson(`/aois/${encodeURIComponent(f.id)}/stats?period=month`)));
      stats.forEach((s) => chart(s.aoi, s.rows));
      const days = [];
      stats.forEach((s) => s.rows.forEach((r) => days.push(Date.parse(r.period_start) / DAY_MS)));
      const slider = document.getElementById("date-slider");
      const today = Math.floor(Date.now() / DAY_MS);
      const first = days.length ? Math.min(...days) : today - 365;
      slider.min = String(first);
      slider.max = String(today);
      slider.value = String(today);
      const applyDate = () => {
        const day = Number(slider.value);
        document.getElementById("date-label").textContent = new Date(day * DAY_MS).toISOString().slice(0, 10);
        const filter = ["<=", ["get", "alert_day"], day];
        map.setFilter("alerts-fill", filter);
        map.setFilter("alerts-line", filter);
      };
      slider.addEventListener("input", applyDate);
      applyDate();
      // scenes with a COG over the areas, least cloudy first
      if (areas.features.length) {
        const b = bboxOf(areas.features);
        const found = await getJson(`/collections/scenes/items?bbox=${b.join(",")}&limit=1000` +
          "&properties=acquired_at,cloud_cover,cog_key,aoi_id");
        const select = document.getElementById("scene-select");
        const withCog = found.features.filter((i) => i.properties.cog_key)
          .sort((a, b2) => (a.properties.cloud_cover ?? 100) - (b2.properties.cloud_cover ?? 100));
        withCog.forEach((i) => {
          const option = document.createElement("option");
          option.value = i.id;
          option.textContent = `${i.properties.acquired_at.slice(0, 10)} ${i.properties.aoi_id}` +
            ` (${Math.round(i.properties.cloud_cover ?? 0)}% cloud)`;
          select.appendChild(option);
        });
        if (withCog.length) { select.value = withCog[0].id; setScene(withCog[0].id); }
        select.addEventListener("change", () => setScene(select.value));
        document.getElementById("ndvi-toggle").addEventListener("change", () => setScene(select.value));
      }
      status(`${areas.features.length} area(s)`);
      map.once("idle", () => { window.cwState.ready = true; });
    } catch (error) {
      window.cwState.error = String(error);
      status(String(error));
    }
  });
})();
