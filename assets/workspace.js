/* The case workspace's queue map (/cases): one circle per queued case, red rim when overdue, coloured by
   status with the same colours as the command map (passed in hideout). */
(function () {
  window.cgzt = Object.assign({}, window.cgzt);
  window.cgzt.ws = Object.assign({}, window.cgzt.ws, {
    point: function (feature, latlng, ctx) {
      var h = (ctx && ctx.hideout) || {}, p = feature.properties || {};
      var fill = (h.status_colors || {})[p.status] || "#aaa";
      return L.circleMarker(latlng, { radius: p.priority === "urgent" ? 8 : 6, fillColor: fill, fillOpacity: 0.95,
        color: p.overdue ? "#ff2d2d" : "#0b0f14", weight: p.overdue ? 3 : 1 }).bindTooltip(String(p.code || ""));
    }
  });
})();
