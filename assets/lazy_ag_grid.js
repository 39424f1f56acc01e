/* dash_ag_grid, loaded the first time a page renders a grid instead of at every page load.

   dashboard/scripts.py gives the bundle's script tag a type the browser neither fetches nor runs, so its
   1.3 MB are not parsed before the map draws. Until the bundle has run, `window.dash_ag_grid` is this stand-in:
   - its AgGrid loads the bundle on first render, then renders the real grid with the same props (the latest:
     a callback that wrote to the grid meanwhile changed the stand-in's props, which the real grid receives);
   - it has no `_dashprivate_isLazyComponentReady`, like the real AgGrid (which lazy-loads its own chunk
     with React.lazy): dash-renderer holds back every callback that touches a component whose readiness is a
     pending promise, and a load that failed or stalled would hold them for good (a language switch that
     never reached the page's chrome, seen once in CI);
   - getApiAsync waits for the bundle; getApi throws, as the real one does for a grid not yet mounted.
   A failed load is retried (the wall runs for days on a network that can drop a request).
   When the bundle assigns window.dash_ag_grid, the stand-in keeps its place (React would otherwise remount
   every grid once, seeing a new component type) and takes the real component's propTypes and defaults. */
(function () {
  'use strict';
  var tag = document.getElementById('cgzt-lazy-dash_ag_grid');
  if (!tag || window.dash_ag_grid) { return; }
  var real = null;      // the bundle's namespace, once it has run
  var loading = null;

  function load() {
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var s = document.createElement('script');
        s.src = tag.getAttribute('src');
        s.onload = function () {
          if (real) { resolve(real); } else { reject(new Error('dash_ag_grid: bundle ran without defining the grid')); }
        };
        s.onerror = function () {
          s.remove();
          loading = null;  // the next attempt makes a new request
          reject(new Error('dash_ag_grid: could not load ' + s.src));
        };
        document.head.appendChild(s);
      });
    }
    return loading;
  }

  function AgGrid(props) {
    var React = window.React;
    var state = React.useState(function () { return real && real.AgGrid; });
    var Real = state[0], setReal = state[1];
    React.useEffect(function () {
      if (Real) { return undefined; }
      var live = true, timer = null, wait = 1000;
      (function attempt() {
        load().then(function (ns) { if (live) { setReal(function () { return ns.AgGrid; }); } }, function (err) {
          console.warn(err.message + '; retrying in ' + wait / 1000 + ' s');
          if (live) { timer = setTimeout(attempt, wait); wait = Math.min(2 * wait, 30000); }
        });
      })();
      return function () { live = false; clearTimeout(timer); };
    }, []);
    if (Real) { return React.createElement(Real, props); }
    // Same box as the grid will have, so the page does not jump when it arrives.
    return React.createElement('div', {id: props.id, className: props.className, style: props.style});
  }

  var shown = {
    AgGrid: AgGrid,
    getApi: function (id) { throw new Error('dash_ag_grid: grid ' + id + ' is not loaded yet'); },
    getApiAsync: function (id) { return load().then(function (ns) { return ns.getApiAsync(id); }); }
  };
  Object.defineProperty(window, 'dash_ag_grid', {
    configurable: true,
    enumerable: true,
    get: function () { return shown; },
    set: function (ns) {
      real = ns;
      ['propTypes', 'defaultProps', 'dashPersistence', 'dashRenderType'].forEach(function (k) {
        if (ns.AgGrid[k] !== undefined) { AgGrid[k] = ns.AgGrid[k]; }
      });
      shown = Object.assign({}, ns, {AgGrid: AgGrid});
    }
  });
})();
