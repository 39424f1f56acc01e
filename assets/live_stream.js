/* The map page's live cases: markers in the map's "live" pane and the ticker, drawn from the server's push
   (GET /live/stream, Server-Sent Events, dashboard/live_stream.py). No Dash callback runs per event: the page
   holds one connection and draws each event itself.

   - The stream opens once the map has drawn its grids (window.cgztMapDrawn, set by the map page's panel
     gate) or 5 s after the ticker appeared, so its first answer is never drawn in the middle of the grids.
   - The latest state per case, newest first, at most KEEP; a case reported while the page watches is "new"
     (it pulses; urgent ones flash), as dashboard/live.py `merge` does for the wall.
   - The browser reconnects by itself when a stream ends (the server ends each after a few minutes) and
     resumes after the last event it had (Last-Event-ID). A refused stream (503: a busy server, the store
     down) is retried here with backoff, from the last event id this page saw.
   - Leaving the map page (the ticker leaves the document) closes the stream.
   - A click on a marker or a ticker row opens that case (openCase).
   The language follows the page's state (`window.cgztLive.lang`, called by a clientside callback). */
(function () {
  "use strict";
  var KEEP = 60, TICKER = 12, URL = "/live/stream", WAIT_MS = 5000;
  var cases = {}, meta = null, lang = "zh", layer = null, layerMap = null, es = null;
  var lastId = null, connected = false, seenAt = 0, retryMs = 1000, retryTimer = null;

  function ticker() { return document.getElementById("live-ticker"); }
  function map() { return (window.cgztMaps || [])[0]; }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]; });
  }
  function status(c) {
    var s = meta && meta.statuses[c.status];
    return {name: s ? s[lang] : c.status, colour: s ? s.colour : "#90a4ae"};
  }
  function newestFirst() {
    return Object.keys(cases).map(function (k) { return cases[k]; })
      .sort(function (a, b) { return b.event - a.event; });
  }

  function merge(rows, flash) {
    rows.forEach(function (r) {
      var old = cases[r.code];
      if (old && old.event >= r.event) { return; }   // a replay after a reconnect
      r.isNew = flash && (r.action === "report" || !!(old && old.isNew));
      cases[r.code] = r;
    });
    newestFirst().slice(KEEP).forEach(function (c) { delete cases[c.code]; });
  }

  function drawMarkers() {
    var m = map();
    if (!m || !window.L) { return; }
    if (!layer || layerMap !== m) { layer = L.layerGroup().addTo(m); layerMap = m; }
    layer.clearLayers();
    newestFirst().forEach(function (c) {
      var urgent = c.priority === "urgent" && c.isNew, st = status(c);
      var cls = "live-marker" + (c.isNew ? " live-new" : "") + (urgent ? " live-urgent" : "");
      layer.addLayer(L.marker([c.lat, c.lon], {
        pane: "live", title: c.code + " " + (lang === "en" ? c.name_en : c.name) + " · " + st.name,
        icon: L.divIcon({className: cls, iconSize: [18, 18], iconAnchor: [9, 9], popupAnchor: [0, -9],
                         html: '<span class="live-dot" style="background:' + esc(st.colour) + '"></span>'})})
        .on("click", function () { openCase(c.code, false); }));
    });
  }

  // A marker or ticker row opens its case in the side panel (the map page's live_clicked): the markers lie
  // above every other layer, so without this a click on one reached nothing. A ticker row also moves the map
  // to the case. The server checks the case against the user's scope; the page only names it.
  function openCase(code, fly) {
    var c = cases[code], dc = window.dash_clientside;
    if (!c || c.id == null || !dc || !dc.set_props) { return; }
    dc.set_props("live-click", {data: {id: c.id, code: c.code, fly: fly, t: Date.now()}});
  }
  document.addEventListener("click", function (e) {
    var row = e.target && e.target.closest && e.target.closest("#live-ticker .live-row");
    if (row) { openCase(row.getAttribute("data-code"), true); }
  });

  function drawTicker() {
    var el = ticker();
    if (!el) { return; }
    var rows = newestFirst().slice(0, TICKER).map(function (c) {
      var st = status(c);
      return '<li class="live-row' + (c.priority === "urgent" ? " live-row-urgent" : "") + '" data-code="' +
        esc(c.code) + '"><span class="live-time">' + esc(c.at) + '</span><span class="live-code">' +
        esc(c.code) + '</span><span class="live-class">' + esc(lang === "en" ? c.name_en : c.name) +
        '</span><span class="live-status" style="color:' + esc(st.colour) + '">' + esc(st.name) + '</span></li>';
    });
    el.innerHTML = rows.length && meta ? '<div class="live-head">' + esc(meta.title[lang]) + '</div>' +
      '<ul class="live-list">' + rows.join("") + '</ul>' : "";
  }

  function draw() { drawMarkers(); drawTicker(); }

  function close() {
    if (es) { es.close(); es = null; }
    clearTimeout(retryTimer); retryTimer = null;
  }

  function open() {
    var src = new EventSource(lastId == null ? URL : URL + "?after=" + encodeURIComponent(lastId));
    es = src;
    src.addEventListener("hello", function (e) { meta = JSON.parse(e.data); retryMs = 1000; });
    src.addEventListener("cases", function (e) {
      if (e.lastEventId) { lastId = e.lastEventId; }
      merge(JSON.parse(e.data), connected);   // the first answer of the page is context, not news
      connected = true;
      draw();
    });
    src.onerror = function () {
      // CONNECTING: the browser retries by itself (with Last-Event-ID). CLOSED: it was refused; retry here.
      if (src.readyState === EventSource.CLOSED && es === src) {
        es = null;
        retryTimer = setTimeout(function () { retryTimer = null; if (!es && ticker()) { open(); } },
                                retryMs + Math.random() * 1000);
        retryMs = Math.min(2 * retryMs, 30000);
      }
    };
  }

  function ensure() {
    var here = !!ticker();
    if (!here) {
      if (es || retryTimer || connected) {   // left the map page: start afresh when it comes back
        close(); cases = {}; lastId = null; connected = false; layer = null; layerMap = null;
      }
      seenAt = 0;
      return;
    }
    seenAt = seenAt || Date.now();
    if (!es && !retryTimer && map() && window.EventSource &&
        (window.cgztMapDrawn || Date.now() - seenAt > WAIT_MS)) { open(); }
  }
  setInterval(ensure, 250);

  window.cgztLive = {
    lang: function (l) { l = l === "en" ? "en" : "zh"; if (l !== lang) { lang = l; draw(); } }
  };
})();
