/* dash_ag_grid, loaded the first time a page needs a grid instead of at every page load.

   dashboard/scripts.py gives the bundle's script tag a type the browser neither fetches nor runs, so its
   1.3 MB are not parsed before the map draws. Until the bundle has run, `window.dash_ag_grid` is this stand-in:
   - its AgGrid loads the bundle on first render and then renders the real grid with the same props;
   - dash-renderer asks a component whether it is ready (`_dashprivate_isLazyComponentReady`) before it
     applies a callback's output to it: the stand-in's answer loads the bundle and waits for the real one;
   - getApiAsync waits for the bundle; getApi throws, as the real one does for a grid not yet mounted.
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
          loading = null;  // a later render tries again
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
      if (!Real) { load().then(function (ns) { setReal(function () { return ns.AgGrid; }); }, console.error); }
    }, []);
    if (Real) { return React.createElement(Real, props); }
    // Same box as the grid will have, so the page does not jump when it arrives.
    return React.createElement('div', {id: props.id, className: props.className, style: props.style});
  }
  Object.defineProperty(AgGrid, '_dashprivate_isLazyComponentReady', {
    get: function () {
      return real ? real.AgGrid._dashprivate_isLazyComponentReady
        : load().then(function (ns) { return ns.AgGrid._dashprivate_isLazyComponentReady; });
    }
  });

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
      ['propTypes', 'defaultProps', 'dashPersistence'].forEach(function (k) {
        if (ns.AgGrid[k] !== undefined) { AgGrid[k] = ns.AgGrid[k]; }
      });
      shown = Object.assign({}, ns, {AgGrid: AgGrid});
    }
  });
})();
