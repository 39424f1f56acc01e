/* One request in flight per polled callback.

   Why: Dash drops the answer of a callback request that a newer request of the same callback overtook. A
   dcc.Interval poll faster than the server's round trip (a busy server, a slow network) therefore never
   delivers anything: every answer is overtaken. A poll goes through a "<name>-tick" store instead: the
   interval calls `dash_clientside.poll.tick`, which bumps the store only when the last request carrying
   that tick has come back (or has been out for LOST_MS and is presumed lost). A failed request (server
   gone, 503) settles at once; only a request that hangs waits LOST_MS. Not shorter: an overloaded server
   answering a wall refresh in over a minute would otherwise get a second, then a third copy of it.
   The map's live poll (`poll.live`) starts once the map has drawn, and asks GET /live/idle before it ticks. */
(function () {
  var inFlight = {}, since = {}, LOST_MS = 300000;
  var TICK = /"([A-Za-z0-9_-]+-tick)\.data"/;
  var origFetch = window.fetch;
  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    var body = init && typeof init.body === "string" ? init.body : "";
    var m = url.indexOf("_dash-update-component") >= 0 ? body.match(TICK) : null;
    if (!m) { return origFetch.apply(this, arguments); }
    var tick = m[1];
    inFlight[tick] = true; since[tick] = Date.now();
    var done = function () { inFlight[tick] = false; };
    return origFetch.apply(this, arguments).then(
      function (r) { done(); return r; }, function (e) { done(); throw e; });
  };
  var asking = {}, started = {}, IDLE_URL = "/live/idle", MAX_URL = 6000, ASK_MS = 10000;
  function busy(out) { return out && inFlight[out] && Date.now() - (since[out] || 0) < LOST_MS; }
  function outputId() {
    var ctx = window.dash_clientside.callback_context;
    return ctx && ctx.outputs_list && ctx.outputs_list.id;
  }
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    poll: {
      tick: function (n, last) {
        return busy(outputId()) ? window.dash_clientside.no_update : (last || 0) + 1;
      },
      /* The map's live poll: first GET /live/idle with the cursor (a plain route answered from the server's
         snapshot of event ids, dashboard/live.py), and tick the Dash callback only when it does not say
         idle. No cursor yet, a cursor too long for a URL, or any failure: tick, as before. */
      live: function (n, last, cursor) {
        var out = outputId(), no = window.dash_clientside.no_update;
        if (busy(out) || asking[out]) { return no; }
        var next = (last || 0) + 1;
        if (!cursor) {
          // The first poll waits for the map's first paint (set by the panel gate, dashboard/map_page.py), or
          // 5 s: its answer would otherwise be drawn in the middle of the grids.
          started[out] = started[out] || Date.now();
          return window.cgztMapDrawn || Date.now() - started[out] > 5000 ? next : no;
        }
        var url = IDLE_URL + "?c=" + encodeURIComponent(JSON.stringify({low: cursor.low, seen: cursor.seen}));
        if (url.length > MAX_URL) { return next; }
        asking[out] = true;
        var ctl = window.AbortController ? new AbortController() : null;
        var timer = ctl && setTimeout(function () { ctl.abort(); }, ASK_MS);   // a hung ask must not stop the poll
        return origFetch(url, {credentials: "same-origin", cache: "no-store", signal: ctl ? ctl.signal : undefined,
                               headers: {"X-Requested-With": "fetch"}})
          .then(function (r) { return r.ok ? r.json() : {idle: false}; })
          .then(function (j) { return j && j.idle === true ? no : next; }, function () { return next; })
          .finally(function () { asking[out] = false; if (timer) { clearTimeout(timer); } });
      }
    }
  });
})();
