/* 城管一张图: style and drawing functions for dash-leaflet layers, referenced from Python through
   dash_extensions.javascript.Namespace("cgzt", "map"). Hand-written (never assign()) so the assets folder
   stays read-only in production. Every function reads its parameters from the layer's hideout. */
(function () {
  "use strict";
  /* Restyle in place. dash-leaflet clears and re-adds every feature of a GeoJSON layer whose `hideout` prop
     changes: for the 6,535 grid polygons that was the largest piece of a filter change in the browser. A
     style-only change of the grids or setbacks (the server's restyle-<pane> stores, map_page._place) comes
     here instead: its hideout stands in for the props' one in every style call of that layer, resetStyle
     hovers included, and the features stay. A layer that gets new props (a new url, a new layer) has a new
     hideout object, which ends the stand-in. */
  var standIns = new WeakMap(), seen = {}, pending = {};
  function prop(ctx, k) { return ctx && (ctx[k] !== undefined ? ctx[k] : (ctx.props && ctx.props[k])); }
  function hideout(ctx) {
    var h = prop(ctx, "hideout") || {}, pane = prop(ctx, "pane");
    if (pane) {
      var url = prop(ctx, "url"), p = pending[pane], s = seen[pane];
      if (!s || s.base !== h || s.url !== url) { seen[pane] = { base: h, url: url }; }  /* once a layer */
      if (p) { delete pending[pane]; if (p.url === url && !standIns.has(h)) { standIns.set(h, p.hideout); } }
    }
    return standIns.get(h) || h;
  }
  function restyle(pane, url, h) {
    var s = seen[pane];
    if (!s || s.url !== url) { pending[pane] = { url: url, hideout: h }; return; }  /* features still loading */
    standIns.set(s.base, h);
    (window.cgztMaps || []).forEach(function (m) {
      m.eachLayer(function (l) { if (l instanceof L.GeoJSON && l.options.pane === pane) { l.resetStyle(); } });
    });
  }

  /* Every map is remembered so tests and tools can read Leaflet's own state; the zoom is mirrored into
     a class on the container so boundary labels appear as you zoom in (pure CSS, no re-render). */
  window.cgztMaps = window.cgztMaps || [];
  function labelShown(level, z) { return level === "district" ? z >= 10 && z < 14 : z >= 13; }
  function hook() {
    if (!window.L || !window.L.Map || window.L.__cgztHooked) { return !!(window.L && window.L.__cgztHooked); }
    window.L.__cgztHooked = true;
    L.Map.addInitHook(function () {
      var map = this;
      window.cgztMaps.push(map);
      function zoomClass() {
        var c = map.getContainer(), z = Math.round(map.getZoom());
        c.classList.toggle("cgzt-show-district", labelShown("district", z));
        c.classList.toggle("cgzt-show-street", labelShown("street", z));
        map.eachLayer(function (l) { if (l.cgztLabel) { l.cgztLabel(z); } });
      }
      map.whenReady(zoomClass);
      map.on("zoomend", zoomClass);
    });
    return true;
  }
  /* dash-leaflet's bundle may define window.L after this file runs: wait for it. */
  if (!hook()) { var poll = setInterval(function () { if (hook()) { clearInterval(poll); } }, 5); }

  /* Canvas marker with a shape per major class: circle, square, triangle, diamond. */
  var ShapeMarker = null;
  function shapeMarker(latlng, opts) {
    if (!ShapeMarker) { ShapeMarker = makeShapeMarker(); }
    return new ShapeMarker(latlng, opts);
  }
  function makeShapeMarker() { return L.CircleMarker.extend({
    options: { shape: "circle" },
    _updatePath: function () {
      var r = this._renderer;
      if (!r._ctx || this.options.shape === "circle") { return L.CircleMarker.prototype._updatePath.call(this); }
      if (!r._drawing || this._empty()) { return; }
      var p = this._point, ctx = r._ctx, s = Math.max(Math.round(this._radius), 1);
      ctx.beginPath();
      if (this.options.shape === "square") { ctx.rect(p.x - s, p.y - s, 2 * s, 2 * s); }
      else if (this.options.shape === "triangle") {
        ctx.moveTo(p.x, p.y - 1.2 * s); ctx.lineTo(p.x + 1.1 * s, p.y + 0.8 * s); ctx.lineTo(p.x - 1.1 * s, p.y + 0.8 * s); ctx.closePath();
      } else { ctx.moveTo(p.x, p.y - 1.3 * s); ctx.lineTo(p.x + 1.3 * s, p.y); ctx.lineTo(p.x, p.y + 1.3 * s); ctx.lineTo(p.x - 1.3 * s, p.y); ctx.closePath(); }
      r._fillStroke(ctx, this);
    }
  }); }
  var SHAPES = ["circle", "square", "triangle", "diamond"];

  function band(v, bands) {
    if (v === undefined || v === null) { return -1; }
    var i = 0;
    while (i < bands.length && v >= bands[i]) { i++; }
    return Math.max(i - 1, 0);
  }

  window.cgzt = Object.assign({}, window.cgzt, {
    map: {
      restyle: restyle,
      gridStyle: function (feature, ctx) {
        var h = hideout(ctx), v = (h.values || {})[feature.properties.code];
        if (v === undefined && h.missing !== undefined) { v = h.missing; }
        var i = band(v, h.bands || []), sel = h.selected === feature.properties.code;
        /* Outside the drilled-into area (scope = a district or street code prefix): a faint outline only. */
        if (h.scope && String(feature.properties.code).indexOf(h.scope) !== 0) {
          return { weight: 0.3, color: h.line || "#5b6b7f", opacity: 0.4, fillColor: "#1a2230", fillOpacity: 0.08 };
        }
        return { weight: sel ? 3 : 0.5, color: sel ? "#ffd400" : (h.line || "#5b6b7f"), opacity: 0.9,
                 fillColor: i < 0 ? (h.empty || "#2a3442") : h.colors[i], fillOpacity: i < 0 ? 0.25 : 0.7 };
      },
      gridHover: function () { return { weight: 3, color: "#ffffff", opacity: 1 }; },
      boundaryStyle: function (feature, ctx) {
        var h = hideout(ctx), lvl = feature.properties.level, dark = h.dark !== false;
        if (lvl === "city") { return { weight: 3, color: dark ? "#7fd3ff" : "#0b4f8a", fill: false }; }
        if (lvl === "district") { return { weight: 2, color: dark ? "#4fb3ff" : "#1769aa", fill: false }; }
        return { weight: 1, color: dark ? "#9fb4cc" : "#5b7088", dashArray: "4 3", fill: false };
      },
      boundaryEach: function (feature, layer, ctx) {
        var p = feature.properties, lang = hideout(ctx).lang;
        if (p.level === "city") { return; }
        /* A label is a permanent tooltip: a DOM node placed (with a forced layout) at every move. It is made
           the first time its level shows at the map's zoom (zoomClass), not for all ~150 streets at load,
           where it cost the first paint about 60 ms; once made, CSS hides and shows it. */
        layer.cgztLabel = function (z) {
          if (layer.getTooltip() || !labelShown(p.level, z)) { return; }
          /* Below the area's centre, not on it: the cases layer puts its count circle (up to 56 px) there. */
          layer.bindTooltip(lang === "en" ? (p.name_en || p.name) : p.name,
            { permanent: true, direction: "bottom", offset: L.point(0, 24),
              className: "cgzt-label cgzt-label-" + p.level, interactive: false });
        };
        layer.once("add", function () { layer.cgztLabel(Math.round(layer._map.getZoom())); });
      },
      setbackStyle: function (feature, ctx) {
        var h = hideout(ctx), p = feature.properties, key;
        if (h.by === "use") { key = (p.uses || "").split(/[,;]/)[0]; } else { key = p.mode; }
        var c = (h.colors || {})[key] || "#c678dd";
        var uses = (p.uses || "").split(/[,;]/), out = false;
        if (h.modes && h.modes.indexOf(p.mode) < 0) { out = true; }
        if (h.uses && !uses.some(function (u) { return h.uses.indexOf(u) >= 0; })) { out = true; }
        if (out) { return { weight: 0.5, color: "#556", fillColor: "#556", fillOpacity: 0.08, opacity: 0.4 }; }
        if (h.uses) { key = uses.filter(function (u) { return h.uses.indexOf(u) >= 0; })[0]; c = (h.colors || {})[key] || c; }
        return { weight: 1, color: c, fillColor: c, fillOpacity: 0.55 };
      },
      berthPoint: function (feature, latlng, ctx) {
        var h = hideout(ctx), s = feature.properties.s, c = (h.colors || {})[s] || "#888";
        var off = h.states && h.states.indexOf(s) < 0;  /* not in the chosen states: faded, still clustered */
        return L.circleMarker(latlng, { radius: off ? 2.5 : 4, weight: off ? 0 : 1, color: "#10161f", fillColor: c,
                                        fillOpacity: off ? 0.15 : 0.95, pane: ctx && ctx.pane });
      },
      berthCluster: function (feature, latlng, index, ctx) {
        var n = feature.properties.point_count, size = n < 100 ? 30 : (n < 1000 ? 38 : 46);
        var icon = L.divIcon({ html: "<div><span>" + feature.properties.point_count_abbreviated + "</span></div>",
                               className: "cgzt-cluster", iconSize: L.point(size, size) });
        return L.marker(latlng, { icon: icon });
      },
      casePoint: function (feature, latlng, ctx) {
        var h = hideout(ctx), p = feature.properties;
        if (p.count !== undefined) {
          var n = p.count, size = Math.round(22 + Math.min(34, 5 * Math.sqrt(n)));
          var cls = "cgzt-agg" + (p.overdue > 0 ? " cgzt-agg-overdue" : "");
          var name = String(p.name || p.code || "").replace(/[<>&"]/g, "");
          var icon = L.divIcon({ html: "<div title=\"" + name + "\"><span>" + n + "</span>" + (p.overdue > 0 ? "<i>" + p.overdue + "</i>" : "") + "</div>",
                                 className: cls, iconSize: L.point(size, size) });
          return L.marker(latlng, { icon: icon, pane: ctx && ctx.pane });
        }
        var majors = h.majors || [], k = majors.indexOf(p.major_code);
        var fill = (h.status_colors || {})[p.status] || "#aaa";
        return shapeMarker(latlng, { shape: SHAPES[(k < 0 ? 0 : k) % SHAPES.length],
          radius: p.priority === "urgent" ? 7 : 5.5, fillColor: fill, fillOpacity: 0.95,
          color: p.overdue ? "#ff2d2d" : "#0b0f14", weight: p.overdue ? 3 : 1, pane: ctx && ctx.pane });
      }
    }
  });
})();
