// stompkit broker dashboard: plain JavaScript, no libraries, nothing from other sites.
// Every second it reads the admin API of the broker that served it (/api/overview,
// /api/queues, /api/connections) and shows the overview figures, a chart of the
// messages published and delivered per second (the overview's `history`), and the
// queues and connections, with purge and disconnect buttons (each asks to be
// clicked again to confirm). Everything shown is set as text, never as HTML.
(function () {
  'use strict';

  var POLL_MS = 1000;
  // The connections list can be long (one entry per client): asked for every fifth round,
  // and right after a change.
  var CONNECTIONS_EVERY = 5;
  var CONFIRM_MS = 4000; // how long a button waits for its confirming click
  var REQUEST_MS = 10000; // a request unanswered this long is given up (and retried by the next poll)
  var ACTION_ERROR_MS = 10000; // how long a failed purge or disconnect stays on show
  var CHART_WINDOW_MS = 5 * 60 * 1000; // the history covers the last five minutes
  var number = new Intl.NumberFormat('en-US');
  var rate = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

  function $(id) {
    return document.getElementById(id);
  }

  // ---- formatting ------------------------------------------------------------------------

  function formatBytes(n) {
    if (n < 1024) return number.format(n) + ' B';
    var units = ['KiB', 'MiB', 'GiB', 'TiB'];
    var value = n;
    var unit = -1;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return rate.format(value) + ' ' + units[unit];
  }

  function formatDuration(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + ' d ' + h + ' h';
    if (h > 0) return h + ' h ' + m + ' min';
    if (m > 0) return m + ' min ' + (s % 60) + ' s';
    return s + ' s';
  }

  function formatTime(ms) {
    var date = new Date(ms);
    return isNaN(date.getTime()) ? '-' : date.toLocaleString();
  }

  // ---- the API ---------------------------------------------------------------------------

  // One request, given up (an Error) when its answer takes longer than REQUEST_MS, so a
  // hung request never stops the polling.
  function request(path, options) {
    var controller = new AbortController();
    var timer = setTimeout(function () {
      controller.abort();
    }, REQUEST_MS);
    options.cache = 'no-store';
    options.signal = controller.signal;
    return fetch(path, options)
      .then(answer)
      .finally(function () {
        clearTimeout(timer);
      });
  }

  // GET `path` as JSON; a refusal is an Error carrying the answer's own message.
  function getJson(path) {
    return request(path, { headers: { Accept: 'application/json' } });
  }

  function answer(response) {
    if (response.status === 204) return null;
    return response.text().then(function (text) {
      var body = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch (e) {
        body = null;
      }
      if (!response.ok) {
        var why = body && body.error ? body.error : text || response.statusText;
        throw new Error(response.status + ': ' + why);
      }
      return body;
    });
  }

  function remove(path) {
    return request(path, { method: 'DELETE' });
  }

  // ---- the overview ----------------------------------------------------------------------

  function showOverview(o) {
    $('version').textContent = o.version;
    $('uptime').textContent = formatDuration(o.uptime_s);
    $('connections-count').textContent = number.format(o.connections);
    $('subscriptions-count').textContent = number.format(o.subscriptions);
    $('queues-count').textContent = number.format(o.queues);
    $('topics-count').textContent = number.format(o.topics);
    $('published').textContent = number.format(o.messages_published);
    $('delivered').textContent = number.format(o.messages_delivered);
    $('published-rate').textContent = rate.format(o.rates.published_per_s);
    $('delivered-rate').textContent = rate.format(o.rates.delivered_per_s);
    chart.history = o.history || [];
    drawChart();
  }

  // ---- the chart -------------------------------------------------------------------------

  var chart = { history: [], points: 0 };

  // A round upper bound for the y axis: 1, 2 or 5 times a power of ten.
  function niceMax(value) {
    if (!(value > 0)) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i += 1) {
      if (value <= steps[i] * power) return steps[i] * power;
    }
    return 10 * power;
  }

  function cssColor(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
  }

  function drawChart() {
    var canvas = $('chart');
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth;
    var height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    var g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    var history = chart.history;
    var end = history.length ? history[history.length - 1].t : Date.now();
    var start = end - CHART_WINDOW_MS;
    var max = niceMax(
      history.reduce(function (m, s) {
        return Math.max(m, s.published_per_s, s.delivered_per_s);
      }, 0),
    );
    var left = 48;
    var right = 8;
    var top = 8;
    var bottom = 20;
    var plotW = Math.max(1, width - left - right);
    var plotH = Math.max(1, height - top - bottom);
    var x = function (t) {
      return left + ((t - start) / CHART_WINDOW_MS) * plotW;
    };
    var y = function (v) {
      return top + plotH - (v / max) * plotH;
    };
    // Grid and axes: 0, half and the top; a tick per minute.
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = cssColor('--muted');
    g.strokeStyle = cssColor('--line');
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    [0, max / 2, max].forEach(function (v) {
      g.beginPath();
      g.moveTo(left, Math.round(y(v)) + 0.5);
      g.lineTo(left + plotW, Math.round(y(v)) + 0.5);
      g.stroke();
      g.fillText(rate.format(v), left - 6, y(v));
    });
    g.textBaseline = 'top';
    for (var minute = 5; minute >= 0; minute -= 1) {
      // The first label starts at the axis, the last one ends at the edge.
      g.textAlign = minute === 5 ? 'left' : minute === 0 ? 'right' : 'center';
      var tx = x(end - minute * 60000);
      g.fillText(minute === 0 ? 'now' : '-' + minute + ' min', tx, top + plotH + 5);
    }
    var drawn = 0;
    [
      ['published_per_s', cssColor('--published')],
      ['delivered_per_s', cssColor('--delivered')],
    ].forEach(function (series) {
      var key = series[0];
      g.strokeStyle = series[1];
      g.lineWidth = 2;
      g.beginPath();
      var started = false;
      history.forEach(function (s) {
        if (s.t < start) return;
        var px = x(s.t);
        var py = y(s[key]);
        if (started) {
          g.lineTo(px, py);
        } else {
          g.moveTo(px, py);
          started = true;
        }
        drawn += 1;
      });
      g.stroke();
    });
    chart.points = drawn;
    canvas.dataset.points = String(drawn);
    canvas.dataset.max = String(max);
    $('chart-range').textContent = history.length ? '(last ' + formatDuration(Math.min(CHART_WINDOW_MS, end - history[0].t) / 1000) + ')' : '';
  }

  // ---- tables ----------------------------------------------------------------------------

  // Keeps `tbody`'s rows in the order of `items`, one per key, updating cells in place
  // (so a button waiting for its confirming click keeps waiting).
  function syncRows(tbody, items, keyOf, makeRow, fillRow) {
    // Maps, not objects: a key such as `constructor` or `__proto__` is a queue name like any other.
    var existing = new Map();
    Array.prototype.forEach.call(tbody.rows, function (row) {
      existing.set(row.dataset.key, row);
    });
    var wanted = new Set();
    items.forEach(function (item, i) {
      var key = String(keyOf(item));
      wanted.add(key);
      var row = existing.get(key);
      if (!row) {
        row = makeRow(item);
        row.dataset.key = key;
      }
      fillRow(row, item);
      if (tbody.rows[i] !== row) tbody.insertBefore(row, tbody.rows[i] || null);
    });
    existing.forEach(function (row, key) {
      if (!wanted.has(key)) row.remove();
    });
  }

  // A row of cells with these class names (the last one holds the button).
  function makeCells(classes) {
    var row = document.createElement('tr');
    classes.forEach(function (name) {
      var cell = document.createElement('td');
      cell.className = name;
      row.appendChild(cell);
    });
    return row;
  }

  function setCell(row, name, text) {
    var cell = row.querySelector('td.' + name);
    if (cell.textContent !== text) cell.textContent = text;
  }

  // A button that acts on its second click within CONFIRM_MS; the first asks "sure?".
  function confirmButton(className, label, confirmLabel, act) {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = className;
    button.textContent = label;
    var timer = null;
    button.addEventListener('click', function () {
      if (button.dataset.confirm !== 'true') {
        button.dataset.confirm = 'true';
        button.textContent = confirmLabel;
        timer = setTimeout(function () {
          delete button.dataset.confirm;
          button.textContent = label;
        }, CONFIRM_MS);
        return;
      }
      clearTimeout(timer);
      delete button.dataset.confirm;
      button.disabled = true;
      button.textContent = label;
      act()
        .then(refresh)
        .catch(function (error) {
          showStatus('error', error.message);
          actionErrorUntil = Date.now() + ACTION_ERROR_MS;
        })
        .then(function () {
          button.disabled = false;
        });
    });
    return button;
  }

  var QUEUE_CELLS = ['name', 'ready num', 'unacked num', 'consumers num', 'bytes num', 'durable', 'actions'];

  function makeQueueRow(q) {
    var row = makeCells(QUEUE_CELLS);
    row.dataset.queue = q.name;
    var name = q.name;
    row.querySelector('td.actions').appendChild(
      confirmButton('purge', 'Purge', 'Purge: sure?', function () {
        return remove('/api/queues/' + encodeURIComponent(name) + '/contents').then(function (result) {
          showStatus('live', 'Purged ' + number.format(result ? result.purged : 0) + ' from ' + name + '.');
        });
      }),
    );
    return row;
  }

  function fillQueueRow(row, q) {
    setCell(row, 'name', q.name);
    setCell(row, 'ready', number.format(q.ready));
    setCell(row, 'unacked', number.format(q.unacked));
    setCell(row, 'consumers', number.format(q.consumers));
    setCell(row, 'bytes', formatBytes(q.bytes));
    setCell(row, 'durable', q.durable ? 'yes' : 'no');
  }

  var CONNECTION_CELLS = [
    'id num', 'peer', 'login', 'version', 'transport', 'subscriptions num',
    'messages-in num', 'messages-out num', 'pending num', 'since', 'actions',
  ];

  function makeConnectionRow(c) {
    var row = makeCells(CONNECTION_CELLS);
    row.dataset.connection = String(c.id);
    var id = c.id;
    row.querySelector('td.actions').appendChild(
      confirmButton('disconnect', 'Disconnect', 'Disconnect: sure?', function () {
        return remove('/api/connections/' + encodeURIComponent(id)).then(function () {
          showStatus('live', 'Disconnected connection ' + id + '.');
        });
      }),
    );
    return row;
  }

  function fillConnectionRow(row, c) {
    setCell(row, 'id', String(c.id));
    setCell(row, 'peer', c.peer);
    setCell(row, 'login', c.login === null ? '(anonymous)' : c.login);
    setCell(row, 'version', c.version);
    setCell(row, 'transport', c.transport);
    setCell(row, 'subscriptions', number.format(c.subscriptions));
    setCell(row, 'messages-in', number.format(c.messages_in));
    setCell(row, 'messages-out', number.format(c.messages_out));
    setCell(row, 'pending', formatBytes(c.pending_bytes));
    setCell(row, 'since', formatTime(c.connected_at));
  }

  function showQueues(queues) {
    syncRows($('queues').tBodies[0], queues, function (q) {
      return q.name;
    }, makeQueueRow, fillQueueRow);
    $('queues-empty').hidden = queues.length > 0;
  }

  function showConnections(connections) {
    syncRows($('connections').tBodies[0], connections, function (c) {
      return c.id;
    }, makeConnectionRow, fillConnectionRow);
    $('connections-empty').hidden = connections.length > 0;
  }

  // ---- status and polling ----------------------------------------------------------------

  function showStatus(state, text) {
    document.body.dataset.state = state;
    $('status').textContent = text;
  }

  var polls = 0;
  var inFlight = null;
  var actionErrorUntil = 0;

  // One round of questions (with the connections when `full`, or every fifth round);
  // resolves when the page shows their answers (or the error).
  function poll(full) {
    if (inFlight) return inFlight;
    var asks = [getJson('/api/overview'), getJson('/api/queues')];
    if (full || polls % CONNECTIONS_EVERY === 0) asks.push(getJson('/api/connections'));
    inFlight = Promise.all(asks)
      .then(function (answers) {
        showOverview(answers[0]);
        showQueues(answers[1]);
        if (answers.length > 2) showConnections(answers[2]);
        polls += 1;
        document.body.dataset.polls = String(polls);
        var stale = document.body.dataset.state !== 'live' || /^(Loading|Cannot)/.test($('status').textContent);
        // A failed purge or disconnect stays on show for a while.
        if (stale && Date.now() >= actionErrorUntil) {
          showStatus('live', 'Live: updated every second.');
        }
      })
      .catch(function (error) {
        showStatus('error', 'Cannot read the admin API (' + error.message + '); retrying ...');
      })
      .then(function () {
        inFlight = null;
      });
    return inFlight;
  }

  // A fresh round after a change (not one that started before it).
  function refresh() {
    return (inFlight || Promise.resolve()).then(function () {
      return poll(true);
    });
  }

  function loop() {
    poll(false).then(function () {
      setTimeout(loop, POLL_MS);
    });
  }

  window.addEventListener('resize', drawChart);
  window.stompkitAdmin = { poll: refresh, niceMax: niceMax, formatBytes: formatBytes, formatDuration: formatDuration };
  loop();
})();
