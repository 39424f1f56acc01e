/* One request in flight per polled callback.

   Why: Dash drops the answer of a callback request that a newer request of the same callback overtook. A
   dcc.Interval poll faster than the server's round trip (a busy server, a slow network) therefore never
   delivers anything: every answer is overtaken. A poll goes through a "<name>-tick" store instead: the
   interval calls `dash_clientside.poll.tick`, which bumps the store only when the last request carrying
   that tick has come back (or has been out for LOST_MS and is presumed lost). A failed request (server
   gone, 503) settles at once; only a request that hangs waits LOST_MS. Not shorter: an overloaded server
   answering a wall refresh in over a minute would otherwise get a second, then a third copy of it.
   (The map page's live cases are pushed, not polled: assets/live_stream.js.) */
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
  function busy(out) { return out && inFlight[out] && Date.now() - (since[out] || 0) < LOST_MS; }
  function outputId() {
    var ctx = window.dash_clientside.callback_context;
    return ctx && ctx.outputs_list && ctx.outputs_list.id;
  }
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    poll: {
      tick: function (n, last) {
        return busy(outputId()) ? window.dash_clientside.no_update : (last || 0) + 1;
      }
    }
  });
})();
