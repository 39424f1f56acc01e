/* Wall screen (dashboard/wall.py): the clock, the offline banner, the access gate, the tour and the
   urgent-case flight. Inert on every other page (everything checks for #wall-root first).

   Offline banner: the wall's callbacks poll every second. This wraps window.fetch and watches the
   responses of /_dash-update-component: two failures in a row (server down: the request rejects; store
   down: the callback answers 500) show the banner with the time of the last good answer; the next good
   answer hides it. Nothing accumulates: two numbers of state. */
(function () {
  "use strict";
  if (window.__wallInstalled) { return; }
  window.__wallInstalled = true;

  var state = { failures: 0, lastGood: null };
  window.__wallState = state;

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function hms(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }
  function ymd(d) { return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }

  function banner(on) {
    var el = document.getElementById("wall-banner");
    if (!el) { return; }
    if (on) {
      var t = document.getElementById("wall-banner-time");
      if (t) { t.textContent = state.lastGood ? ymd(state.lastGood) + " " + hms(state.lastGood) : "—"; }
    }
    el.classList.toggle("wall-banner-on", !!on);
  }

  function good() { state.failures = 0; state.lastGood = new Date(); banner(false); }
  function bad() { state.failures += 1; if (state.failures >= 2) { banner(true); } }

  var origFetch = window.fetch;
  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    if (url.indexOf("_dash-update-component") < 0 || !document.getElementById("wall-root")) {
      return origFetch.apply(this, arguments);
    }
    return origFetch.apply(this, arguments).then(
      function (r) { if (r.ok) { good(); } else { bad(); } return r; },
      function (e) { bad(); throw e; });
  };

  /* The clock: once a second, no server round trip. */
  setInterval(function () {
    var el = document.getElementById("wall-clock");
    if (el) { var d = new Date(); el.textContent = ymd(d) + " " + hms(d); }
  }, 1000);

  var holdUntil = 0;   // after an urgent case the tour waits, so the case stays in view
  var flip = false;

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    wall: {
      /* Either wall callback refusing the token blanks the screen and stops every poll. */
      gate: function (liveWhy, refreshWhy) {
        var nu = window.dash_clientside.no_update, why = liveWhy || refreshWhy;
        if (!why) { return [nu, nu, nu, nu, nu]; }
        return ["wall wall-revoked", why, true, true, true];
      },
      /* Tour stops (every N s) and urgent cases move the map. */
      move: function (n, urgent, tour, opts) {
        var nu = window.dash_clientside.no_update;
        var ctx = window.dash_clientside.callback_context;
        var trig = (ctx && ctx.triggered && ctx.triggered[0] && ctx.triggered[0].prop_id) || "";
        var en = opts && opts.lang === "en";
        if (trig.indexOf("wall-urgent") === 0 && urgent) {
          var every = (tour && tour.every) || 30;
          holdUntil = Date.now() + Math.max(every, 30) * 1000;
          flip = !flip;
          var text = (en ? "Urgent case " : "紧急案件 ") + urgent.code + " · " + (en ? urgent.name_en : urgent.name) +
            (urgent.address ? " · " + urgent.address : "");
          return [{ center: [urgent.lat, urgent.lon], zoom: 16, transition: "flyTo", options: { duration: 2 } },
                  nu, text, "wall-alert wall-alert-on wall-alert-" + (flip ? "a" : "b")];
        }
        if (trig.indexOf("wall-tour") !== 0 || !n || !tour || !tour.every || Date.now() < holdUntil) {
          return [nu, nu, nu, nu];
        }
        var stops = tour.stops || [], i = (n - 1) % (stops.length + 1);
        var stop = i < stops.length ? stops[i] : tour.home;
        if (!stop || !stop.bounds) { return [nu, nu, nu, nu]; }
        var label = i < stops.length ? (en ? "Tour · " : "巡览 · ") + stop.name : "";
        return [{ bounds: stop.bounds, transition: "flyToBounds", options: { duration: 2 } }, label, nu, nu];
      }
    }
  });
})();
