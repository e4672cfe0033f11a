// Draws the page from the JSON blob #page-data. Charts are Vega-Lite specs drawn by the inlined vega-embed;
// the tables (sorting, family filter, protocol switch) are plain DOM code written here: what they need is a
// few dozen lines, and no small table library works offline without its own build step or styling to undo.
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('page-data').textContent);
  var first = D.protocols.filter(function (p) { return p.id === D.default_protocol; })[0] || D.protocols[0];
  var state = { protocol: first.id, family: '', showPaper: true, qMethod: null, qIndex: 0 };
  var sorts = {};  // table id -> {key, dir}

  function h(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v == null || v === false) return;
        if (k === 'text') e.textContent = v;
        else if (k === 'cls') e.className = v;
        else e.setAttribute(k, v === true ? '' : v);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c == null) continue;
      (Array.isArray(c) ? c : [c]).forEach(function (x) {
        if (x != null) e.appendChild(typeof x === 'string' ? document.createTextNode(x) : x);
      });
    }
    return e;
  }
  function fmt(v, d) {
    if (v == null) return '–';
    var t = Number(v).toFixed(d == null ? 2 : d);
    return /^-0(\.0*)?$/.test(t) ? t.slice(1) : t;  // no "-0.00" for a value that rounds to zero
  }
  function big(v) { return v == null ? '–' : Math.round(v).toLocaleString('en-US'); }
  function proto() { return D.protocols.filter(function (p) { return p.id === state.protocol; })[0]; }
  function visibleRows() {
    return D.rows.filter(function (r) { return !state.family || r.family === state.family; });
  }
  function cell(r, key) { return (r.cells[state.protocol] || {})[key] || null; }
  function cellText(c) {
    if (!c) return '–';
    return c.std != null ? fmt(c.mean) + ' ± ' + fmt(c.std) : fmt(c.mean);
  }
  function cellTitle(c, key, name) {
    if (!c) return name + ', ' + key + ': no value in results.csv';
    var s = name + ', ' + key + ': ' + cellText(c);
    if (c.lo != null && c.hi != null) {
      s += '\n95% bootstrap interval over ' + key.split(' ')[0] + ' instances: [' + fmt(c.lo) + ', ' + fmt(c.hi) + ']';
      if (c.n > 1) s += ' (bounds averaged over ' + c.n + ' seeds)';
    } else {
      s += '\nno bootstrap interval for this protocol in results.csv';
    }
    if (c.n > 1) s += '\nmean ± std over ' + c.n + ' seeds';
    return s;
  }

  // ---------- generic sortable table ----------
  // columns: {key, label, num, value(row), text(row), title(row), cls, thCls}
  function renderTable(id, columns, rows, opts) {
    opts = opts || {};
    var table = document.getElementById(id);
    var st = sorts[id] || (sorts[id] = { key: null, dir: -1 });
    var data = rows.slice();
    if (st.key) {
      var col = columns.filter(function (c) { return c.key === st.key; })[0];
      if (col) {
        data.sort(function (a, b) {
          var x = col.value(a), y = col.value(b);
          var xm = x == null || x === '', ym = y == null || y === '';
          if (xm || ym) return xm === ym ? 0 : (xm ? 1 : -1);  // missing values last in either direction
          if (col.num) return st.dir * (x - y);
          return st.dir * String(x).localeCompare(String(y));
        });
      }
    }
    var tops = {};
    if (opts.bold) {
      columns.forEach(function (c) {
        if (!c.bold) return;
        var vals = data.map(function (r) { return c.value(r); }).filter(function (v) { return v != null; });
        if (vals.length > 1) tops[c.key] = Math.max.apply(null, vals);
      });
    }
    var trh = h('tr');
    columns.forEach(function (c) {
      var sorted = st.key === c.key;
      var btn = h('button', { type: 'button', 'data-col': c.key,
                               'aria-label': 'sort by ' + c.label + (sorted && st.dir < 0 ? ', ascending' : ', descending') },
                  c.label, h('span', { cls: 'arrow', 'aria-hidden': 'true' },
                             sorted ? (st.dir < 0 ? ' ▼' : ' ▲') : ' ↕'));
      btn.addEventListener('click', function () {
        if (st.key === c.key) st.dir = -st.dir;
        else { st.key = c.key; st.dir = c.num ? -1 : 1; }
        renderTable(id, columns, rows, opts);
        var again = table.querySelector('th button[data-col="' + c.key.replace(/"/g, '\\"') + '"]');
        if (again) again.focus();
      });
      trh.appendChild(h('th', { scope: 'col', cls: (c.thCls || c.cls || '') + (c.num ? '' : ' txt'),
                                'aria-sort': sorted ? (st.dir < 0 ? 'descending' : 'ascending') : null,
                                title: c.help || null }, btn));
    });
    var tbody = h('tbody');
    data.forEach(function (r) {
      var tr = h('tr', opts.rowAttrs ? opts.rowAttrs(r) : null);
      columns.forEach(function (c, k) {
        var v = c.value(r);
        var cls = (c.cls || '') + (c.num ? '' : ' txt');
        if (opts.bold && c.bold && v != null && tops[c.key] != null && Math.abs(v - tops[c.key]) < 1e-9) cls += ' top';
        var td = h(k === 0 ? 'th' : 'td', { cls: cls, 'data-col': c.key, 'data-value': v == null ? '' : v,
                                            scope: k === 0 ? 'row' : null,
                                            title: c.title ? c.title(r) : null,
                                            tabindex: c.title ? '0' : null });
        var content = c.text ? c.text(r) : (v == null ? '–' : String(v));
        if (typeof content === 'string') td.textContent = content; else td.appendChild(content);
        tr.appendChild(td);
      });
      if (opts.hide && opts.hide(r)) tr.hidden = true;
      tbody.appendChild(tr);
    });
    table.replaceChildren(h('thead', null, trh), tbody);
  }

  // ---------- leaderboard ----------
  function sigBadge(r) {
    var s = r.sig[state.protocol];
    if (!s) return null;
    if (s.best) return h('span', { cls: 'badge best', title: 'the best method by test mAP' }, 'best');
    if (s.ns) return h('span', { cls: 'badge ns', title: 'not significantly different from the best by test mAP (p = ' +
                                  fmt(s.p, 3) + ' ≥ ' + D.sig_level + ')' }, '≈ best');
    return null;
  }
  function pText(r) {
    var s = r.sig[state.protocol];
    if (!s) return '–';
    if (s.best) return 'best';
    if (s.floor && s.p < s.floor) return '< ' + fmt(s.floor, 3);
    return fmt(s.p, 3);
  }
  function leaderboard() {
    var cols = [
      { key: 'Method', label: 'Method', value: function (r) { return r.name; },
        text: function (r) { return h('span', null, r.name, sigBadge(r)); },
        title: function (r) { return r.name + ' (registry name ' + r.method + ', family ' + r.family + ')'; } },
      { key: 'Family', label: 'Family', value: function (r) { return r.family; } },
      { key: 'seeds', label: 'seeds', num: true, value: function (r) { return r.seeds; },
        title: function (r) { return 'seeds ' + r.seed_list.join(', '); } }
    ];
    D.splits.forEach(function (split) {
      D.metrics.forEach(function (met) {
        var key = split + ' ' + met;
        cols.push({ key: key, label: key, num: true, bold: true,
                    value: function (r) { var c = cell(r, key); return c ? c.mean : null; },
                    text: function (r) { return cellText(cell(r, key)); },
                    title: function (r) { return cellTitle(cell(r, key), key, r.name); } });
      });
    });
    cols.push({ key: 'p vs best', label: 'p vs best (test mAP)', num: true,
                help: 'paired bootstrap test against the best method by test mAP (largest p over seeds)',
                value: function (r) { var s = r.sig[state.protocol]; return s ? s.p : null; }, text: pText });
    D.splits.forEach(function (split) {
      D.metrics.forEach(function (met, k) {
        var key = split + ' ' + met;
        cols.push({ key: 'paper ' + key, label: 'paper ' + key, num: true,
                    cls: 'paper' + (split === D.splits[0] && k === 0 ? ' first-paper' : ''),
                    help: "the paper's Table " + D.paper_table + ' on the real RefAVA, for reference only',
                    value: function (r) { return r.paper[key]; }, text: function (r) { return fmt(r.paper[key]); } });
      });
    });
    renderTable('leaderboard', cols, D.rows, {
      bold: true,
      rowAttrs: function (r) {
        var s = r.sig[state.protocol];
        return { 'data-method': r.method, 'data-family': r.family,
                 cls: s ? (s.best ? 'best' : (s.ns ? 'ns' : 'sig')) : null };
      },
      hide: function (r) { return state.family && r.family !== state.family; }
    });
    var p = proto();
    var sigNote = D.rows.some(function (r) { return r.sig[state.protocol]; }) ? '' :
      ' No significance test for this protocol in results.csv (the run tests the weighted test mAP).';
    document.getElementById('protocol-note').textContent = 'Protocol: ' + p.note + '. mIoU: mean over instances of ' +
      'the key-frame box IoU. All values in percent; cells are mean ± std over seeds. Columns headed "paper" are the ' +
      "numbers of the paper's Table " + D.paper_table + ' on the real RefAVA, for reference only: not comparable with ' +
      'runs on other data or with tiny configs.' + sigNote;
  }

  // ---------- charts ----------
  var narrow = window.matchMedia && window.matchMedia('(max-width: 600px)').matches;  // a phone: wrap legends
  function embed(id, specName, rows, extra) {
    var target = document.getElementById(id);
    if (!window.vegaEmbed) { target.textContent = 'charts unavailable: the Vega library did not load'; return; }
    var spec = JSON.parse(JSON.stringify(D.specs[specName]));
    spec.datasets = Object.assign({ rows: rows }, extra || {});
    // legends above the plot: beside it they squeeze (or, at phone width, clip) the plotting area
    var legend = { orient: 'top', direction: 'horizontal' };
    if (narrow) legend.columns = 3;
    spec.config = Object.assign({}, spec.config || {}, { font: 'system-ui, sans-serif', legend: legend });
    if (!rows.length) { target.textContent = 'no values to show'; return; }
    vegaEmbed(target, spec, { actions: false, renderer: 'svg' }).catch(function (e) {
      target.textContent = 'chart error: ' + e;
    });
  }
  function charts() {
    var rows = visibleRows();
    var anyInterval = false;
    ['mAP', 'mIoU'].forEach(function (met) {
      var pts = [];
      rows.forEach(function (r) {
        D.splits.forEach(function (split) {
          var c = cell(r, split + ' ' + met);
          if (!c) return;
          if (c.lo != null) anyInterval = true;
          pts.push({ name: r.name, split: split, value: c.mean, lo: c.lo == null ? c.mean : c.lo,
                     hi: c.hi == null ? c.mean : c.hi,
                     label: cellText(c) + (c.lo != null ? '  [' + fmt(c.lo) + ', ' + fmt(c.hi) + ']' : '') });
        });
      });
      embed(met === 'mAP' ? 'chart-map' : 'chart-miou', 'dot_interval', pts);
    });
    document.getElementById('chart-note').textContent = 'Protocol: ' + proto().label + '.' +
      (anyInterval ? '' : ' results.csv holds no intervals for this protocol: dots only.');
  }

  // ---------- breakdowns ----------
  function groups() {
    var rows = visibleRows(), pts = [], any = false;
    rows.forEach(function (r) {
      var g = ((r.groups[state.protocol] || {}).test) || {};
      D.groups.forEach(function (k) {
        if (g[k]) { any = true; pts.push({ name: r.name, group: k, value: g[k].mean, label: cellText(g[k]) }); }
      });
    });
    document.getElementById('groups-note').textContent = any ? 'Protocol: ' + proto().label + '; test split.' :
      'results.csv holds no group mAP for the ' + proto().label + ' protocol.';
    embed('chart-groups', 'groups', pts);
    var cols = [{ key: 'Method', label: 'Method', value: function (r) { return r.name; } }];
    D.splits.forEach(function (split) {
      D.groups.forEach(function (k) {
        var get = function (r) { return (((r.groups[state.protocol] || {})[split]) || {})[k] || null; };
        cols.push({ key: split + ' ' + k, label: split + ' mAP ' + k, num: true, bold: true,
                    value: function (r) { var c = get(r); return c ? c.mean : null; },
                    text: function (r) { return cellText(get(r)); } });
      });
    });
    renderTable('groups-table', cols, rows, { bold: true, rowAttrs: function (r) { return { 'data-method': r.method }; } });
  }
  function people() {
    var rows = visibleRows(), pts = [];
    rows.forEach(function (r) {
      var bins = D.people_bins.filter(function (b) { return r.people.test[b].mAP; });
      bins.forEach(function (b, k) {
        var c = r.people.test[b].mAP;
        pts.push({ name: r.name, bin: b.replace('p', ''), value: c.mean,
                   label: cellText(c) + ' (' + fmt(r.people.test[b].n, 0) + ' instances)' });
      });
    });
    embed('chart-people', 'people', pts);
    var cols = [{ key: 'Method', label: 'Method', value: function (r) { return r.name; } }];
    ['mAP', 'mIoU'].forEach(function (met) {
      D.people_bins.forEach(function (b) {
        var get = function (r) { return r.people.test[b][met]; };
        cols.push({ key: met + ' ' + b, label: met + ' ' + b.replace('p', '') + (b === 'p1' ? ' person' : ' people'),
                    num: true, bold: true,
                    value: function (r) { var c = get(r); return c ? c.mean : null; },
                    text: function (r) { return cellText(get(r)); },
                    title: function (r) { return r.name + ': ' + fmt(r.people.test[b].n, 0) + ' test instances with ' +
                                                 b.replace('p', '') + ' people'; } });
      });
    });
    renderTable('people-table', cols, rows, { bold: true, rowAttrs: function (r) { return { 'data-method': r.method }; } });
  }
  function swap() {
    var rows = visibleRows(), pts = [];
    rows.forEach(function (r) {
      var s = r.swap.test;
      [['drop_mAP', 'mAP'], ['drop_mIoU', 'mIoU']].forEach(function (m) {
        if (s[m[0]] != null) pts.push({ name: r.name, metric: m[1], value: s[m[0]], label: fmt(s[m[0]]),
                                        tx: Math.max(0, s[m[0]]), tag: m[1] + ' ' + fmt(s[m[0]]) });
      });
    });
    embed('chart-swap', 'swap', pts, { zero: [{ x: 0 }] });
    var num = function (key, label, get, d) {
      return { key: key, label: label, num: true, value: get, text: function (r) { return fmt(get(r), d); } };
    };
    var cols = [{ key: 'Method', label: 'Method', value: function (r) { return r.name; } },
      num('n', 'swapped instances', function (r) { return r.swap.test.n; }, 0),
      num('mAP', 'test mAP (weighted)', function (r) { var c = (r.cells.weighted || r.cells[state.protocol])['test mAP']; return c ? c.mean : null; }),
      num('swap_mAP', 'mAP swapped', function (r) { return r.swap.test.mAP; }),
      num('drop_mAP', 'mAP drop', function (r) { return r.swap.test.drop_mAP; }),
      num('swap_mIoU', 'mIoU swapped', function (r) { return r.swap.test.mIoU; }),
      num('drop_mIoU', 'mIoU drop', function (r) { return r.swap.test.drop_mIoU; }),
      num('drop_AUROC', 'AUROC drop', function (r) { return r.swap.test.drop_AUROC; })];
    renderTable('swap-table', cols, rows, { rowAttrs: function (r) { return { 'data-method': r.method }; } });
  }

  // ---------- per-class heat map ----------
  function heatmap() {
    var pc = D.per_class, table = document.getElementById('heatmap');
    var note = document.getElementById('heatmap-note');
    var rows = visibleRows().filter(function (r) { return pc.ap[r.method]; });
    if (!rows.length) {
      note.textContent = 'Per-class AP needs predictions/*.npz beside results.csv; none found for these methods.';
      table.replaceChildren();
      return;
    }
    note.textContent = 'AP (%) per AVA class on the ' + pc.split + ' split (mean over seeds), one column per class ' +
      '(1–80). Hover or focus a cell for the class name. Hatched cells: the class has no positive instance in the split, ' +
      'so it has no AP. Colour: viridis from 0 (dark) to the largest AP shown (yellow); the number is the AP.' + (pc.missing.length ? ' No predictions for: ' + pc.missing.join(', ') + '.' : '');
    var stops = D.colormap.map(function (c) {
      return [1, 3, 5].map(function (i) { return parseInt(c.slice(i, i + 2), 16); });
    });
    var top = 0;
    rows.forEach(function (r) { pc.ap[r.method].forEach(function (v) { if (v != null && v > top) top = v; }); });
    top = top || 100;
    var colour = function (t) {  // linear between the colour map's stops
      var x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
      return 'rgb(' + [0, 1, 2].map(function (k) { return Math.round(stops[i][k] + f * (stops[i + 1][k] - stops[i][k])); })
        .join(',') + ')';
    };
    var grp = h('tr', null, h('th', { cls: 'row' }, ''));
    var k = 0;
    while (k < D.classes.length) {
      var g = D.classes[k].group, n = 0;
      while (k + n < D.classes.length && D.classes[k + n].group === g) n++;
      grp.appendChild(h('th', { colspan: n, cls: 'grp', scope: 'colgroup' }, g));
      k += n;
    }
    var head = h('tr', null, h('th', { cls: 'row', scope: 'col' }, 'method \\ class'));
    D.classes.forEach(function (c, j) {
      var pos = pc.positives ? pc.positives[j] : null;
      head.appendChild(h('th', { scope: 'col', 'data-class': c.id,
                                 title: c.id + ': ' + c.name + ' (' + c.group + ')' +
                                        (pos != null ? ', ' + pos + ' positives in ' + pc.split : '') }, String(c.id)));
    });
    var body = h('tbody');
    rows.forEach(function (r) {
      var tr = h('tr', { 'data-method': r.method }, h('th', { cls: 'row', scope: 'row' }, r.name));
      pc.ap[r.method].forEach(function (v, j) {
        var c = D.classes[j];
        if (v == null) {
          tr.appendChild(h('td', { cls: 'na', title: r.name + ' · ' + c.name + ': no positive in ' + pc.split }, '·'));
          return;
        }
        var t = Math.max(0, Math.min(1, v / top));
        var bg = colour(t);
        tr.appendChild(h('td', { style: 'background:' + bg + ';color:' + (t > 0.6 ? '#000' : '#fff'),
                                 title: r.name + ' · ' + c.id + ' ' + c.name + ' (' + c.group + '): AP ' + fmt(v, 1) },
                         String(Math.round(v))));
      });
      body.appendChild(tr);
    });
    table.replaceChildren(h('thead', null, grp, head), body);
  }

  // ---------- cost ----------
  function cost() {
    var rows = visibleRows();
    var tm = function (r) { var c = (r.cells.weighted || r.cells[state.protocol])['test mAP']; return c ? c.mean : null; };
    var num = function (key, label, get, f) {
      return { key: key, label: label, num: true, value: get, text: function (r) { return f(get(r)); } };
    };
    var cols = [{ key: 'Method', label: 'Method', value: function (r) { return r.name; } },
      { key: 'Family', label: 'Family', value: function (r) { return r.family; } },
      num('params', 'tiny params', function (r) { return r.cost.params; }, big),
      num('trainable', 'tiny trainable', function (r) { return r.cost.trainable_params; }, big),
      num('cps', 'tiny train clips/s', function (r) { return r.cost.clips_per_s; }, function (v) { return fmt(v, 0); }),
      num('ttrain', 'train time (s)', function (r) { return r.cost.train_time_s; }, function (v) { return fmt(v, 1); }),
      num('teval', 'eval time (s)', function (r) { return r.cost.eval_time_s; }, function (v) { return fmt(v, 1); }),
      num('fullp', 'full params (M)', function (r) { return r.cost.full_params_M; }, function (v) { return fmt(v, 1); }),
      num('fullf', 'full GFLOPs/clip', function (r) { return r.cost.full_gflops_per_clip; }, function (v) { return fmt(v, 1); }),
      num('testmap', 'test mAP (weighted)', tm, function (v) { return fmt(v); })];
    renderTable('cost-table', cols, rows, { rowAttrs: function (r) { return { 'data-method': r.method }; } });
    var pts = rows.filter(function (r) { return r.cost.clips_per_s && tm(r) != null; }).map(function (r) {
      return { name: r.name, family: r.family, speed: r.cost.clips_per_s, value: tm(r), label: fmt(tm(r)) };
    });
    embed('chart-scatter', 'scatter', pts);
  }

  // ---------- qualitative ----------
  function qualitative() {
    var q = D.qualitative, body = document.getElementById('qual-body');
    if (!q.available) {
      body.replaceChildren(h('p', { cls: 'note', id: 'qual-unavailable' }, q.reason));
      return;
    }
    if (!state.qMethod) state.qMethod = q.default;
    var select = h('select', { id: 'qual-method' });
    q.methods.forEach(function (m) {
      var r = D.rows.filter(function (x) { return x.method === m; })[0];
      select.appendChild(h('option', { value: m, selected: m === state.qMethod }, r ? r.name : m));
    });
    select.addEventListener('change', function () { state.qMethod = select.value; draw(); });
    var prev = h('button', { type: 'button', id: 'qual-prev' }, '◀ previous');
    var next = h('button', { type: 'button', id: 'qual-next' }, 'next ▶');
    var counter = h('span', { id: 'qual-counter', 'aria-live': 'polite' });
    prev.addEventListener('click', function () { state.qIndex = (state.qIndex + q.examples.length - 1) % q.examples.length; draw(); });
    next.addEventListener('click', function () { state.qIndex = (state.qIndex + 1) % q.examples.length; draw(); });
    var stage = h('div', { cls: 'qual' });
    body.replaceChildren(
      h('p', { cls: 'hint' }, q.examples.length + ' instances of the ' + q.split + ' split (seed ' + q.seed + '), the same for ' +
        'every method. ', h('span', { cls: 'legend-swatch truth' }), 'true box (solid), ',
        h('span', { cls: 'legend-swatch pred' }), 'predicted box (dashed). Actions: ✓ true positive, ✗ false positive, ' +
        '○ missed true action.'),
      h('div', { cls: 'qual-nav' }, h('label', { cls: 'ctl' }, 'Method ', select), prev, counter, next), stage);
    function rect(b, cls, colour, dash) {
      var r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      r.setAttribute('x', b[0]); r.setAttribute('y', b[1]);
      r.setAttribute('width', Math.max(0, b[2] - b[0])); r.setAttribute('height', Math.max(0, b[3] - b[1]));
      r.setAttribute('fill', 'none'); r.setAttribute('stroke', colour); r.setAttribute('stroke-width', '3');
      r.setAttribute('vector-effect', 'non-scaling-stroke'); r.setAttribute('class', cls);
      if (dash) r.setAttribute('stroke-dasharray', '7 4');
      return r;
    }
    function draw() {
      var ex = q.examples[state.qIndex], p = ex.pred[state.qMethod];
      counter.textContent = 'example ' + (state.qIndex + 1) + ' of ' + q.examples.length;
      var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
      svg.setAttribute('viewBox', '0 0 1 1'); svg.setAttribute('preserveAspectRatio', 'none');
      svg.setAttribute('aria-hidden', 'true');
      svg.appendChild(rect(ex.gt_box, 'truth', '#1aa31a', false));
      if (p) svg.appendChild(rect(p.box, 'pred', '#d62728', true));
      var fig = h('figure', null, h('img', { src: ex.img, width: ex.w, height: ex.h,
                                             alt: 'key frame of ' + ex.key + ' with the true and the predicted box' }), svg);
      var list = h('ul');
      (p ? p.top : []).forEach(function (a) {
        list.appendChild(h('li', { cls: a.true ? 'tp' : 'fp' }, (a.true ? '✓ ' : '✗ ') + a.name + ' (score ' + fmt(a.score, 2) +
                                                                 ', ' + (a.true ? 'true positive' : 'false positive') + ')'));
      });
      (p ? p.missed : []).forEach(function (a) { list.appendChild(h('li', { cls: 'missed' }, '○ ' + a + ' (missed)')); });
      var cap = h('div', { cls: 'caption' },
        h('p', { cls: 'sentence' }, '“' + ex.text + '”'),
        h('p', null, 'True actions: ' + ex.true.join(', ')),
        p ? h('p', null, 'Box IoU: ' + fmt(p.iou, 1) + '%. Top predicted actions:') : h('p', null, 'no prediction'),
        list, h('p', { cls: 'note' }, 'instance ' + ex.key));
      stage.replaceChildren(fig, cap);
    }
    draw();
  }

  // ---------- provenance ----------
  function provenance() {
    var P = D.provenance, body = document.getElementById('prov-body');
    var dl = h('dl', { cls: 'prov' });
    function item(k, v) { dl.appendChild(h('dt', null, k)); dl.appendChild(h('dd', null, v)); }
    item('command', h('code', null, P.command));
    item('suite', D.suite + ' (' + D.title + ')');
    ['config_set', 'data', 'data_generator', 'data_digest', 'epochs', 'device'].forEach(function (k) {
      if (P.run[k] != null) item(k.replace('_', ' '), String(P.run[k]));
    });
    item('seeds', P.seeds.join(', '));
    item('instances scored', Object.keys(P.n_instances).map(function (s) { return s + ' ' + P.n_instances[s]; }).join(', '));
    item('results.csv modified', P.results_csv_modified);
    item('page generated', P.page_generated);
    item('page built with', Object.keys(P.page_built_with).map(function (k) { return k + ' ' + P.page_built_with[k]; }).join(', '));
    var rest = Object.keys(P.run).filter(function (k) {
      return ['config_set', 'data', 'data_generator', 'data_digest', 'epochs', 'device'].indexOf(k) < 0;
    });
    var kids = [dl];
    if (rest.length) {
      var t = h('table', { cls: 'data', id: 'prov-run' },
        h('thead', null, h('tr', null, h('th', { cls: 'txt', scope: 'col' }, 'column'),
                          h('th', { cls: 'txt', scope: 'col' }, 'value'))),
        h('tbody', null, rest.map(function (k) {
          return h('tr', null, h('td', { cls: 'txt' }, k), h('td', { cls: 'txt' }, String(P.run[k])));
        })));
      kids.push(h('h3', null, 'Provenance columns of results.csv (one value for the whole run)'), h('div', { cls: 'scroll' }, t));
    }
    var oc = D.other_columns;
    if (oc.columns.length) {
      var tbl = h('table', { cls: 'data', id: 'other-columns' },
        h('thead', null, h('tr', null, ['method', 'split', 'seed'].concat(oc.columns).map(function (c) {
          return h('th', { scope: 'col', cls: 'txt' }, c);
        }))),
        h('tbody', null, oc.rows.map(function (r) {
          return h('tr', null, ['method', 'split', 'seed'].concat(oc.columns).map(function (c) {
            var v = r[c];
            return h('td', { cls: 'txt' }, v == null ? '–' : (typeof v === 'number' ? String(Math.round(v * 1e4) / 1e4) : String(v)));
          }));
        })));
      kids.push(h('details', null, h('summary', null, 'More columns of results.csv, row by row (' + oc.columns.length + ')'),
                  h('div', { cls: 'scroll' }, tbl)));
    }
    body.replaceChildren.apply(body, kids);
  }

  // ---------- controls ----------
  function controls() {
    var fs = document.getElementById('protocol-switch');
    D.protocols.forEach(function (p) {
      var input = h('input', { type: 'radio', name: 'protocol', value: p.id, id: 'protocol-' + p.id,
                               checked: p.id === state.protocol });
      input.addEventListener('change', function () { if (input.checked) { state.protocol = p.id; update(); } });
      fs.appendChild(h('label', { for: 'protocol-' + p.id }, input, ' ' + p.label));
    });
    var sel = document.getElementById('family-filter');
    D.families.forEach(function (f) { sel.appendChild(h('option', { value: f }, f)); });
    sel.addEventListener('change', function () { state.family = sel.value; update(); });
    var paper = document.getElementById('show-paper');
    paper.addEventListener('change', function () {
      document.getElementById('leaderboard').classList.toggle('hide-paper', !paper.checked);
    });
    document.querySelectorAll('.sig-level').forEach(function (e) { e.textContent = String(D.sig_level); });
    document.getElementById('title').textContent = 'RAVAR-Bench — ' + D.title;
    var P = D.provenance;
    document.getElementById('subtitle').textContent = D.rows.length + ' methods · seeds ' + P.seeds.join(', ') +
      (P.run.config_set ? ' · config set ' + P.run.config_set : '') + (P.run.data ? ' · data ' + P.run.data : '');
  }

  function accessibility() {
    // a title shows on mouse hover only; keyboard and touch users read the same text in #cell-detail
    var detail = document.getElementById('cell-detail');
    var show = function (e) {
      var c = e.target.closest && e.target.closest('#leaderboard tbody [title]');
      if (c) detail.textContent = c.getAttribute('title').replace(/\n/g, ' · ');
    };
    document.getElementById('leaderboard').addEventListener('focusin', show);
    document.getElementById('leaderboard').addEventListener('click', show);
    var list = document.getElementById('class-list');
    D.classes.forEach(function (c) { list.appendChild(h('li', { value: c.id }, c.name + ' (' + c.group + ')')); });
  }

  function update() {
    leaderboard(); charts(); groups(); people(); swap(); heatmap(); cost();
  }
  controls();
  accessibility();
  update();
  qualitative();
  provenance();
  document.body.setAttribute('data-ready', '1');
})();
