/* geo_comuna map runtime.
 *
 * Draws every themed layer from a spec that Python builds out of maps/styles.json (colour per
 * value, stroke, radius, tooltip and popup fields with their labels), from inline GeoJSON,
 * from inline geobuf (big layers in standalone files) or from vector tiles (big layers served).
 * Every feature property is escaped before it reaches the page: tooltips and popups are built
 * as text, never from HTML found in the data.
 *
 * window.GeoComuna.ready turns true once the page's scripts ran and every shown layer is
 * drawn; GeoComuna.readyAt is performance.now() then (used by tests and bench/bench_maps.py).
 */
(function () {
  "use strict";
  var G = (window.GeoComuna = window.GeoComuna || {});
  G.waiting = {};
  G.drawn = {};
  G.loaded = false;
  G.ready = false;
  /* A map narrower than this (px) is on a phone: its layer list and legend start folded. */
  var NARROW = 600;
  /* A map inside another page (an iframe: an embedded map, a report's) starts with both
   * folded too: open, they covered some 60 % of a 700 px frame. */
  var FRAMED = (function () {
    try { return window.self !== window.top; } catch (e) { return true; }
  })();
  G.readyAt = null;

  if (window.L && L.Control && L.Control.Layers) {
    // on a phone the layer list is made folded (a tap on its button opens it), whatever the
    // page asked: always open, it covered the title bar and the zoom buttons
    var makeLayers = L.Control.Layers.prototype.initialize;
    L.Control.Layers.prototype.initialize = function (base, overlays, options) {
      makeLayers.call(this, base, overlays, options);
      if (window.innerWidth < NARROW || FRAMED) { this.options.collapsed = true; }
    };
  }

  if (window.L && L.Map) {
    // the view a map is first fitted to (its commune, its features): printing fits it again
    // to the frame it has on paper, where the screen's view was cut to the frame
    var fitBounds = L.Map.prototype.fitBounds;
    L.Map.prototype.fitBounds = function (bounds, options) {
      if (!this.gcHome) { this.gcHome = [L.latLngBounds(bounds), L.extend({}, options)]; }
      return fitBounds.call(this, bounds, options);
    };
  }

  if (window.L && L.DomEvent && !L.DomEvent.fakeStop) {
    // Leaflet.VectorGrid 1.3 calls L.DomEvent.fakeStop, which Leaflet 1.8 removed
    L.DomEvent.fakeStop = function (e) { e._stopped = true; };
  }

  var ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  G.escape = function (value) {
    return String(value).replace(/[&<>"']/g, function (c) { return ENTITIES[c]; });
  };

  function words(lang) {
    return lang === "es"
      ? { yes: "Sí", no: "No",
          withheld: "—: habitantes de menos de 3 viviendas, o que una resta entre cifras " +
            "daría; solo los ven los usuarios de la comuna." }
      : { yes: "Yes", no: "No",
          withheld: "—: residents of fewer than 3 homes, or that a subtraction between " +
            "figures would give; shown to the commune's own users only." };
  }

  function show(field, value, lang) {
    if (value === null || value === undefined || value === "") { return "—"; }
    if (field.values && Object.prototype.hasOwnProperty.call(field.values, value)) {
      return field.values[value];
    }
    if (typeof value === "boolean") { return value ? words(lang).yes : words(lang).no; }
    if (Array.isArray(value)) {
      return value.map(function (v) {
        if (v && typeof v === "object") {
          var name = v.name || v.code || JSON.stringify(v);
          return v.share_pct !== undefined && v.share_pct !== null
            ? name + " (" + v.share_pct + " %)" : name;
        }
        return String(v);
      }).join(", ");
    }
    if (typeof value === "object") { return JSON.stringify(value); }
    var locale = lang === "es" ? "es-VE" : "en-US";
    if (typeof value === "number" && field.unit === "m") {  // 245,3 km; 85 m
      var km = Math.abs(value) >= 1000;
      return (km ? value / 1000 : value).toLocaleString(locale, { maximumFractionDigits: km ? 1 : 0 }) +
        (km ? " km" : " m");
    }
    if (typeof value === "number" && field.places !== undefined) {  // 0,2022 ha
      return value.toLocaleString(locale,
        { minimumFractionDigits: field.places, maximumFractionDigits: field.places });
    }
    if (typeof value === "number") {
      return value.toLocaleString(locale, { maximumFractionDigits: 2 });
    }
    var date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    if (date) { return day(+date[1], +date[2], +date[3], lang); }
    return String(value);
  }

  var MONTHS = {
    es: ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
         "septiembre", "octubre", "noviembre", "diciembre"],
    en: ["January", "February", "March", "April", "May", "June", "July", "August",
         "September", "October", "November", "December"],
  };

  /* A date as the pages and the report write it (5 de marzo de 2009, 5 March 2009): 2009-03-05
     in a Spanish popup read as a code. */
  function day(year, month, date, lang) {
    var name = (MONTHS[lang] || MONTHS.en)[month - 1];
    if (!name) { return year + "-" + month + "-" + date; }
    return lang === "es" ? date + " de " + name + " de " + year : date + " " + name + " " + year;
  }

  /* An HTML table of the chosen fields (all properties when the spec lists none). */
  G.table = function (spec, props, which) {
    props = props || {};
    var fields = spec.fields && spec.fields[which];
    if (!fields) {
      fields = Object.keys(props).filter(function (k) { return k !== "id"; })
        .map(function (k) {
          return { name: k, label: (spec.labels && spec.labels[k]) || k,
                   values: spec.values && spec.values[k] };
        });
      if (which === "tooltip") { fields = fields.slice(0, 3); }
    }
    var rows = [];
    if (props.gc_count !== undefined) {  // a summary cell of a big layer at low zoom
      rows.push("<tr><th>" + (spec.lang === "es" ? "Elementos en la celda" : "Features in cell") +
        "</th><td>" + G.escape(show({}, props.gc_count, spec.lang)) + "</td></tr>");
    }
    var withheld = false;
    fields.forEach(function (f) {
      var v = props[f.name];
      var empty = v === null || v === undefined || v === "";
      var residents = f.name.indexOf("residents") !== -1;
      // a field the feature has no value for is left out: features of two kinds in one layer
      // (a transformer site and a home) listed each other's fields as "—" (found from
      // outside); but a residents figure the public view withholds keeps its dash, which
      // says why
      if (empty && (which === "tooltip" || !residents)) { return; }
      withheld = withheld || (residents && (v === null || v === undefined));
      rows.push("<tr><th>" + G.escape(f.label) + "</th><td>" +
        G.escape(show(f, v, spec.lang)) + "</td></tr>");
    });
    if (withheld && which === "popup") {
      rows.push('<tr><td colspan="2" class="gc-withheld">' +
        G.escape(words(spec.lang).withheld) + "</td></tr>");
    }
    return '<table class="gc-' + which + '">' + rows.join("") + "</table>";
  };

  G.colorOf = function (spec, props) {
    if (!spec.by) { return spec.color || spec.fallback; }
    var v = props ? props[spec.by] : undefined;
    if (spec.ramp) {
      if (typeof v !== "number" || !spec.breaks || !spec.breaks.length) { return spec.fallback; }
      for (var i = 0; i < spec.breaks.length; i++) {
        if (v <= spec.breaks[i]) { return spec.ramp[Math.min(i, spec.ramp.length - 1)]; }
      }
      return spec.ramp[spec.ramp.length - 1];
    }
    return (v !== null && v !== undefined && spec.colors[v]) || spec.fallback;
  };

  G.pathStyle = function (spec, props, geometryType) {
    var key = props && spec.by ? props[spec.by] : undefined;
    var color = G.colorOf(spec, props);
    var s = spec.stroke || {};
    var weight = (spec.weights && spec.weights[key]) || s.weight || 1;
    var w = spec.width_by;
    if (w && props && typeof props[w.attribute] === "number" && w.hi > w.lo) {
      var t = Math.sqrt(Math.max(0, props[w.attribute] - w.lo) / (w.hi - w.lo));
      weight = w.min + (w.max - w.min) * Math.min(1, t);
    }
    var type = geometryType || spec.geometry || "";
    var line = type.indexOf("LineString") >= 0;
    return {
      // an area may carry its colour in its outline too (a sliver too thin for its fill)
      color: line ? color : ((spec.outline && spec.outline[key]) || s.color || "#333333"),
      weight: weight,
      opacity: s.opacity === undefined ? 1 : s.opacity,
      dashArray: (spec.dash && spec.dash[key]) || s.dash || null,
      fill: !line,
      fillColor: color,
      fillOpacity: spec.fill_opacity === undefined ? 0.6 : spec.fill_opacity,
      radius: (spec.radii && spec.radii[key]) || spec.radius || 5
    };
  };

  /* Can the pointer hover? On a touch screen a tap opened the tooltip and the popup at once,
     the tooltip left cut off under the popup: there only popups, which a tap opens. */
  function hovers() {
    return !window.matchMedia || window.matchMedia("(hover: hover)").matches;
  }

  function bindGeojson(spec, layer, props) {
    // Chromium puts every clickable shape in the tab order: a keyboard went through 145 of
    // them (popups they cannot open) before the zoom and the legend
    layer.on("add", function () {
      var shape = layer.getElement && layer.getElement();
      if (shape) { shape.setAttribute("tabindex", "-1"); }
    });
    if (hovers()) {
      layer.bindTooltip(function () { return G.table(spec, props, "tooltip"); }, { sticky: true });
    }
    layer.bindPopup(function () { return G.table(spec, props, "popup"); }, { maxWidth: 360 });
  }

  /* The hatch patterns areas may be filled with (spec.hatch: its colour): one hidden <svg>
   * of <pattern>s, which any SVG path of the page can use as fill="url(#...)". */
  function hatch(color) {
    var id = "gc-hatch-" + String(color).replace(/[^0-9a-zA-Z]/g, "");
    if (document.getElementById(id)) { return id; }
    var ns = "http://www.w3.org/2000/svg", holder = document.getElementById("gc-patterns");
    if (!holder) {
      holder = document.createElementNS(ns, "svg");
      holder.setAttribute("id", "gc-patterns");
      holder.setAttribute("width", "0");
      holder.setAttribute("height", "0");
      holder.setAttribute("aria-hidden", "true");
      holder.style.position = "absolute";
      holder.appendChild(document.createElementNS(ns, "defs"));
      document.body.appendChild(holder);
    }
    var pattern = document.createElementNS(ns, "pattern");
    pattern.setAttribute("id", id);
    pattern.setAttribute("patternUnits", "userSpaceOnUse");
    pattern.setAttribute("width", "9");
    pattern.setAttribute("height", "9");
    pattern.setAttribute("patternTransform", "rotate(45)");
    var line = document.createElementNS(ns, "line");
    line.setAttribute("x1", "0"); line.setAttribute("y1", "0");
    line.setAttribute("x2", "0"); line.setAttribute("y2", "9");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "2.5");
    pattern.appendChild(line);
    holder.firstChild.appendChild(pattern);
    return id;
  }

  /* A layer from GeoJSON (an object, inline in the page). spec.hatch fills areas with
   * stripes; spec.casing draws lines over a wider dark line, so pale colours stay visible
   * on any background. */
  G.geojson = function (spec, data) {
    var fill = spec.hatch ? "url(#" + hatch(spec.hatch) + ")" : null;
    var layer = L.geoJSON(data, {
      style: function (f) {
        var style = G.pathStyle(spec, f.properties, f.geometry && f.geometry.type);
        if (fill) { style.fillColor = fill; style.fillOpacity = 1; }
        return style;
      },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, G.pathStyle(spec, f.properties, "Point"));
      },
      onEachFeature: function (f, l) { bindGeojson(spec, l, f.properties); }
    });
    layer.gcId = spec.id;
    layer.on("add", function () { G.drawn[spec.id] = layer.getLayers().length; G.check(); });
    if (spec.casing) {
      var casing = L.geoJSON(data, {
        interactive: false,
        style: function (f) {
          var style = G.pathStyle(spec, f.properties, "LineString");
          return { color: spec.casing.color, weight: style.weight + spec.casing.extra,
                   opacity: spec.casing.opacity || 0.85, dashArray: null };
        }
      });
      layer.on("add", function (e) {
        casing.addTo(e.target._map);
        layer.bringToFront();
      });
      layer.on("remove", function () { casing.remove(); });
    }
    return layer;
  };

  /* Place and feature names (points with properties label and rank) as text on the map.
   * Where two overlap, the one with the lower spec.rank, then the lower feature rank, is
   * kept and the other hidden, as is a name under a control (legend, layer list); checked
   * again at every zoom and pan. */
  G.labelSets = [];
  G.labels = function (spec, data) {
    var group = L.layerGroup();
    group.gcId = spec.id;
    group.gcRank = spec.rank || 0;
    (data.features || []).forEach(function (f) {
      var c = f.geometry && f.geometry.coordinates;
      if (!c) { return; }
      var icon = L.divIcon({
        className: "gc-label gc-label-" + (f.properties.kind || spec.kind || "place"),
        html: "<span>" + G.escape(f.properties.label) + "</span>",
        iconSize: null
      });
      var marker = L.marker([c[1], c[0]], { icon: icon, interactive: false, keyboard: false });
      marker.gcRank = f.properties.rank || 0;
      group.addLayer(marker);
    });
    group.on("add", function (e) {
      var map = e.target._map || e.target;
      G.labelSets.push(group);
      if (!map.gcDeclutter) {
        map.gcDeclutter = function () { G.declutter(map); };
        map.on("zoomend moveend overlayadd overlayremove", map.gcDeclutter);
      }
      G.drawn[spec.id] = group.getLayers().length;
      setTimeout(map.gcDeclutter, 0);
    });
    group.on("remove", function () {
      G.labelSets = G.labelSets.filter(function (g) { return g !== group; });
    });
    return group;
  };

  G.declutter = function (map) {
    var markers = [];
    G.labelSets.forEach(function (g) {
      if (!map.hasLayer(g)) { return; }
      g.eachLayer(function (m) { markers.push([g.gcRank, m.gcRank, m]); });
    });
    markers.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    // the controls (legend, layer list, title bar) hide what lies under them
    var kept = Array.prototype.map.call(
      map.getContainer().querySelectorAll(".leaflet-control, .gc-bar"),
      function (c) { return c.getBoundingClientRect(); });
    if (document.querySelector(".gc-bar")) {
      kept.push(document.querySelector(".gc-bar").getBoundingClientRect());
    }
    markers.forEach(function (entry) {
      var el = entry[2].getElement();
      if (!el || !el.firstChild) { return; }
      el.style.visibility = "";
      var r = el.firstChild.getBoundingClientRect();
      var clash = kept.some(function (k) {
        return r.left < k.right + 2 && r.right + 2 > k.left &&
          r.top < k.bottom + 1 && r.bottom + 1 > k.top;
      });
      if (clash) { el.style.visibility = "hidden"; } else { kept.push(r); }
    });
  };

  /* The online basemap (only when the server names one, never in a standalone file): off
   * until asked for, so a map opened with no network requests nothing; when its tiles
   * cannot load, it is switched off again and a note says so. */
  G.basemap = function (map, url, options, text) {
    var layer = L.tileLayer(url, options), note = null;
    layer.on("tileerror", function () {
      if (!map.hasLayer(layer)) { return; }
      map.removeLayer(layer);
      if (!note) {
        note = L.control({ position: "bottomright" });
        note.onAdd = function () {
          var div = L.DomUtil.create("div", "gc-note leaflet-control");
          div.textContent = text.offline;
          div.setAttribute("role", "status");
          return div;
        };
        note.addTo(map);
      }
    });
    return layer;
  };

  function bindTiled(spec, layer) {
    var tip = L.tooltip({ sticky: true });
    layer.on("click", function (e) {
      L.popup({ maxWidth: 360 }).setLatLng(e.latlng)
        .setContent(G.table(spec, e.layer.properties, "popup")).openOn(layer._map);
    });
    if (!hovers()) { return; }
    layer.on("mouseover", function (e) {
      tip.setLatLng(e.latlng).setContent(G.table(spec, e.layer.properties, "tooltip"));
      layer._map.openTooltip(tip);
    });
    layer.on("mouseout", function () { layer._map.closeTooltip(tip); });
  }

  /* A layer loaded from the server is waited for until it has loaded, or failed to: a
   * hillshade refused (a 429, say) left the map waiting for it, never ready (found in CI). */
  function track(spec, layer) {
    layer.gcId = spec.id;
    function settled(drawn) {
      return function () { delete G.waiting[spec.id]; G.drawn[spec.id] = drawn; G.check(); };
    }
    layer.on("add", function () { G.waiting[spec.id] = true; });
    layer.on("remove", function () { delete G.waiting[spec.id]; G.check(); });
    layer.on("load", settled(true));
    layer.on("error", settled(false));
  }

  function tiledStyle(spec, geometryType) {
    return function (props) { return G.pathStyle(spec, props, geometryType); };
  }

  /* Big layers, served: vector tiles from GET /tiles/{layer}/{z}/{x}/{y}.pbf (ST_AsMVT). */
  G.tiles = function (spec, url) {
    var styles = {};
    styles[spec.layer] = tiledStyle(spec, spec.geometry);
    var layer = L.vectorGrid.protobuf(url, {
      rendererFactory: L.canvas.tile, interactive: true, vectorTileLayerStyles: styles,
      maxNativeZoom: 18, maxZoom: 22
    });
    track(spec, layer);
    bindTiled(spec, layer);
    return layer;
  };

  /* Inline geobuf (base64), decoded in the browser. */
  G.geobuf = function (b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return geobuf.decode(new Pbf(bytes));
  };

  /* Big layers, standalone: decoded geobuf cut into tiles in the browser, drawn on canvas. */
  G.sliced = function (spec, data) {
    var layer = L.vectorGrid.slicer(data, {
      rendererFactory: L.canvas.tile, interactive: true,
      vectorTileLayerStyles: { sliced: tiledStyle(spec, spec.geometry) },
      maxZoom: 22, indexMaxZoom: 5, tolerance: 2
    });
    track(spec, layer);
    bindTiled(spec, layer);
    return layer;
  };

  /* A value computed on first use, then kept (e.g. geobuf decoded only when needed). */
  G.later = function (make) {
    var value, done = false;
    return function () {
      if (!done) { value = make(); done = true; }
      return value;
    };
  };

  /* Very big areas or lines, standalone: a pre-drawn picture (info.image, info.bounds) at
   * every zoom, and the vector features, decoded from data() and sliced, only from
   * info.detail_zoom on, where they are big enough to tell apart and click. */
  G.overview = function (spec, info, data) {
    var group = L.layerGroup(), detail = null, map = null, shown = false;
    var picture = L.imageOverlay(info.image, info.bounds, { interactive: false });
    track(spec, picture);
    group.gcId = spec.id;
    group.addLayer(picture);
    function zoomed() {
      var near = !!map && map.getZoom() >= info.detail_zoom;
      if (near && !detail) {
        detail = G.sliced(spec, data());  // slicing takes seconds: the picture stays till then
        detail.on("load", function () { shown = true; zoomed(); });
      }
      if (near && !group.hasLayer(detail)) { group.addLayer(detail); }
      // once the features are drawn, the picture under them would only double the colour
      picture.setOpacity(near && shown ? 0 : 1);
    }
    group.on("add", function (e) { map = e.target._map; map.on("zoomend", zoomed); zoomed(); });
    group.on("remove", function () { if (map) { map.off("zoomend", zoomed); } });
    return group;
  };

  /* A layer built on its first display: a hidden big layer costs nothing until asked for. */
  G.lazy = function (spec, make) {
    var group = L.layerGroup(), inner = null;
    group.gcId = spec.id;
    group.on("add", function () {
      if (!inner) { inner = make(); group.addLayer(inner); }
    });
    return group;
  };

  G.image = function (spec, url, bounds, opacity) {
    var layer = L.imageOverlay(url, bounds, { opacity: opacity, interactive: false });
    track(spec, layer);
    return layer;
  };

  /* The legend control: one section per themed layer, shown while the layer is on. */
  /* The legend folds away behind its button; the choice lasts while the page is open in
   * this tab (sessionStorage, per page), and a small map starts folded. */
  G.legend = function (map, html, words) {
    var control = L.control({ position: "bottomleft" });
    var key = "gc-legend-folded:" + location.pathname + location.search;
    function remembered() {
      try { return window.sessionStorage.getItem(key); } catch (e) { return null; }
    }
    function remember(folded) {
      try { window.sessionStorage.setItem(key, folded ? "1" : "0"); } catch (e) { /* none */ }
    }
    control.onAdd = function () {
      var div = L.DomUtil.create("div", "gc-legend leaflet-control");
      var button = L.DomUtil.create("button", "gc-legend-toggle", div);
      button.type = "button";
      var body = L.DomUtil.create("div", "gc-legend-body", div);
      body.innerHTML = html;  // built and escaped by Python (geo_comuna/maps/elements.py)
      function fold(folded) {
        div.classList.toggle("gc-folded", folded);
        button.textContent = folded ? words.show : words.hide;
        button.setAttribute("aria-expanded", folded ? "false" : "true");
      }
      var saved = remembered();
      // folded at first on a small screen (a phone): open, it covered most of the map
      var size = map.getSize();
      fold(saved === null ? size.y < 480 || size.x < NARROW || FRAMED : saved === "1");
      L.DomEvent.on(button, "click", function () {
        var folded = !div.classList.contains("gc-folded");
        fold(folded);
        remember(folded);
        if (map.gcDeclutter) { map.gcDeclutter(); }  // names it uncovered, or now covers
      });
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    control.addTo(map);
    map.gcLegend = control;
    function toggle(layer, on) {
      if (!layer || !layer.gcId) { return; }
      var section = control.getContainer().querySelector('[data-gc-layer="' + layer.gcId + '"]');
      if (section) { section.classList.toggle("gc-off", !on); }
    }
    map.eachLayer(function (l) { toggle(l, true); });
    map.on("overlayadd", function (e) { toggle(e.layer, true); });
    map.on("overlayremove", function (e) { toggle(e.layer, false); });
    map.on("layeradd", function (e) { toggle(e.layer, true); });
    return control;
  };

  /* A commune's first view fitted again into what the open panels leave of the map: the
   * layer list (right) and the legend (left) covered part of it, the title bar its top. In
   * quarter zoom steps, it may come out a little smaller; not when the map would keep less
   * than a third of its width. The country's map (gcWhole false) stays as it was fitted. */
  function clearOfPanels(map) {
    if (!map.gcHome || !map.gcHome[1].gcWhole || FRAMED || onPaper) { return; }
    var frame = map.getContainer().getBoundingClientRect();
    function box(selector, within) {
      var e = (within || document).querySelector(selector);
      return e ? e.getBoundingClientRect() : null;
    }
    var bar = box(".gc-bar"), layers = box(".leaflet-control-layers-expanded", map.getContainer());
    var note = box(".gc-note", map.getContainer());
    var legend = box(".gc-legend:not(.gc-folded)", map.getContainer());
    var top = bar ? Math.max(0, bar.bottom - frame.top) : 0;
    var right = Math.max(layers ? frame.right - layers.left : 0, note ? frame.right - note.left : 0);
    var left = legend ? legend.right - frame.left : 0;
    if (frame.width - right - left < frame.width / 3) { return; }
    if (!top && !right && !left) { return; }
    var options = L.extend({}, map.gcHome[1], { animate: false });
    options.paddingTopLeft = [left + 8, top + 8];
    options.paddingBottomRight = [right + 8, 8];
    delete options.padding;
    fitBounds.call(map, map.gcHome[0], options);
  }

  G.check = function () {
    if (G.ready || !G.loaded || Object.keys(G.waiting).length) { return; }
    leafletMaps().forEach(clearOfPanels);
    G.ready = true;
    // two frames: what was added is painted
    requestAnimationFrame(function () {
      requestAnimationFrame(function () {
        G.readyAt = performance.now();
        document.documentElement.setAttribute("data-gc-ready", "true");
      });
    });
  };

  /* Leaflet's own controls fitted to the page: their titles in its language (Leaflet's are
     English), and on a phone the right-hand ones (the folded layer list, a note) under the
     title bar. */
  G.fitControls = function () {
    var es = document.documentElement.lang === "es";
    var narrow = window.innerWidth < NARROW;
    var toggles = document.querySelectorAll(".leaflet-control-layers-toggle");
    Array.prototype.forEach.call(toggles, function (link) { label(link, es ? "Capas" : "Layers"); });
    leafletMaps().forEach(function (v) {
      var zoom = v.zoomControl;
      if (zoom) {
        label(zoom._zoomInButton, es ? "Acercar" : "Zoom in");
        label(zoom._zoomOutButton, es ? "Alejar" : "Zoom out");
      }
      var credits = v.attributionControl;
      if (credits && es && typeof credits.options.prefix === "string") {
        credits.setPrefix(credits.options.prefix.replace(
          "A JavaScript library for interactive maps",
          "Una biblioteca JavaScript para mapas interactivos"));
      }
      var bar = document.querySelector(".gc-bar");
      if (narrow && bar && v._controlCorners) {  // the right-hand controls under the bar
        v._controlCorners.topright.style.top = bar.offsetTop + bar.offsetHeight + "px";
      }
    });
  };

  /* Printing. Over the map, the legend hid a third of it: on paper it goes under the map, in
   * columns. The map is fitted again to its first view at its size on paper (print styles,
   * geo_comuna_maps.css), and both are put back after. Chromium tells a page (and each of
   * its frames: a report's maps) before it prints, and again as its print styles apply. */
  function leafletMaps() {
    // folium names each map a global; reading some globals throws (localStorage, in the
    // frame of a report opened from a disk: found from outside, the map never got ready)
    return Object.keys(window).map(function (name) {
      try { return window[name]; } catch (e) { return null; }
    }).filter(function (v) { return v instanceof L.Map; });
  }
  var onPaper = false;
  function legendsUnder() {
    if (onPaper) { return; }
    onPaper = true;
    leafletMaps().forEach(function (map) {
      var frame = map.getContainer();
      if (map.gcLegend) {
        var box = map.gcLegend.getContainer();
        map.gcLegendPlace = [box.parentNode, box.nextSibling];  // back there after (the scale)
        box.classList.add("gc-legend-printed");
        frame.parentNode.insertBefore(box, frame.nextSibling);
      }
      // a note on the map ("Results per sector: ...") under it too: on paper it hid the
      // commune's boundary (found from outside)
      map.gcNotesPlace = Array.prototype.map.call(frame.querySelectorAll(".gc-note"), function (n) {
        return [n, n.parentNode, n.nextSibling];
      });
      map.gcNotesPlace.forEach(function (place) {
        place[0].classList.add("gc-note-printed");
        frame.parentNode.insertBefore(place[0], frame.nextSibling);
      });
    });
  }
  function fitPaper() {
    leafletMaps().forEach(function (map) {
      if (!map.gcScreen) { map.gcScreen = [map.getCenter(), map.getZoom()]; }
      map.invalidateSize({ animate: false, pan: false });
      if (map.gcHome) { map.fitBounds(map.gcHome[0], L.extend({}, map.gcHome[1], { animate: false })); }
    });
  }
  function backOnScreen() {
    if (!onPaper) { return; }
    onPaper = false;
    leafletMaps().forEach(function (map) {
      if (map.gcLegend && map.gcLegendPlace) {
        var box = map.gcLegend.getContainer();
        box.classList.remove("gc-legend-printed");
        map.gcLegendPlace[0].insertBefore(box, map.gcLegendPlace[1]);
      }
      (map.gcNotesPlace || []).forEach(function (place) {
        place[0].classList.remove("gc-note-printed");
        place[1].insertBefore(place[0], place[2]);
      });
      delete map.gcNotesPlace;
      map.invalidateSize({ animate: false, pan: false });
      if (map.gcScreen) {
        map.setView(map.gcScreen[0], map.gcScreen[1], { animate: false });
        delete map.gcScreen;
      }
    });
  }
  window.addEventListener("beforeprint", legendsUnder);
  window.addEventListener("afterprint", backOnScreen);
  if (window.matchMedia) {
    var printMedia = window.matchMedia("print");
    var printing = function (e) {
      if (e.matches) { legendsUnder(); fitPaper(); } else if (onPaper) { backOnScreen(); }
    };
    if (printMedia.addEventListener) { printMedia.addEventListener("change", printing); }
    else if (printMedia.addListener) { printMedia.addListener(printing); }
  }

  function label(element, text) {
    if (!element) { return; }
    element.title = text;
    element.setAttribute("aria-label", text);
  }

  /* Called by the last script of the page. */
  G.done = function () { G.fitControls(); G.loaded = true; G.check(); };
})();
