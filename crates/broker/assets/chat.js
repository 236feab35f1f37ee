// stompkit demo chat: a small STOMP 1.1/1.2 client over WebSocket, in plain JavaScript.
// It connects to /ws on the page's own host, subscribes to /topic/chat.<room> and sends
// JSON {name, text} messages. Everything shown comes from the broker (own messages too).
(function () {
  'use strict';

  var NUL = 0;
  var LF = 10;
  var CR = 13;
  var HEART_BEAT_MS = 10000; // what we offer and ask for in CONNECT
  var MAX_SHOWN = 500; // messages kept on screen
  var encoder = new TextEncoder();
  var decoder = new TextDecoder();

  // ---- frames --------------------------------------------------------------------------

  // STOMP 1.1 and 1.2 header escaping (1.2 adds \r). CONNECT and CONNECTED are never escaped.
  function escapeValue(value, version) {
    var out = String(value).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\c');
    return version === '1.2' ? out.replace(/\r/g, '\\r') : out.replace(/\r/g, '');
  }

  function unescapeValue(value) {
    return value.replace(/\\([\\nrc])/g, function (_, c) {
      return c === 'n' ? '\n' : c === 'r' ? '\r' : c === 'c' ? ':' : '\\';
    });
  }

  // One frame as a string; content-length is the body's length in UTF-8 bytes.
  function encodeFrame(command, headers, body, version) {
    var raw = command === 'CONNECT';
    var lines = [command];
    Object.keys(headers).forEach(function (name) {
      var value = headers[name];
      lines.push(raw ? name + ':' + value : escapeValue(name, version) + ':' + escapeValue(value, version));
    });
    if (body) lines.push('content-length:' + encoder.encode(body).length);
    return lines.join('\n') + '\n\n' + (body || '') + '\x00';
  }

  // Reads frames out of bytes that may hold several frames, part of one, or heart-beat EOLs.
  function FrameReader() {
    this.buffer = new Uint8Array(0);
  }

  FrameReader.prototype.push = function (bytes) {
    var joined = new Uint8Array(this.buffer.length + bytes.length);
    joined.set(this.buffer, 0);
    joined.set(bytes, this.buffer.length);
    this.buffer = joined;
    var frames = [];
    var frame;
    while ((frame = this.next()) !== null) frames.push(frame);
    return frames;
  };

  // The next complete frame (or {heartBeat: true}), or null when more bytes are needed.
  FrameReader.prototype.next = function () {
    var b = this.buffer;
    if (b.length === 0) return null;
    if (b[0] === LF) return this.consume(1, { heartBeat: true });
    if (b[0] === CR) return b.length < 2 ? null : this.consume(2, { heartBeat: true });
    var headEnd = -1;
    for (var i = 0; i + 1 < b.length; i++) {
      if (b[i] === LF && (b[i + 1] === LF || (b[i + 1] === CR && b[i + 2] === LF))) {
        headEnd = i;
        break;
      }
    }
    if (headEnd < 0) return null;
    var bodyStart = headEnd + (b[headEnd + 1] === LF ? 2 : 3);
    var lines = decoder.decode(b.subarray(0, headEnd)).split('\n').map(function (line) {
      return line.replace(/\r$/, '');
    });
    var command = lines.shift();
    var headers = {};
    lines.forEach(function (line) {
      var colon = line.indexOf(':');
      if (colon < 0) return;
      var name = line.slice(0, colon);
      var value = line.slice(colon + 1);
      if (command !== 'CONNECTED') {
        name = unescapeValue(name);
        value = unescapeValue(value);
      }
      if (!(name in headers)) headers[name] = value; // the first of repeated headers wins
    });
    var bodyEnd;
    if ('content-length' in headers) {
      if (!/^\d+$/.test(headers['content-length'])) throw new Error('bad content-length');
      bodyEnd = bodyStart + Number(headers['content-length']);
      if (b.length <= bodyEnd) return null;
    } else {
      bodyEnd = b.indexOf(NUL, bodyStart);
      if (bodyEnd < 0) return null;
    }
    var body = b.slice(bodyStart, bodyEnd);
    return this.consume(bodyEnd + 1, { command: command, headers: headers, body: body });
  };

  FrameReader.prototype.consume = function (count, value) {
    this.buffer = this.buffer.slice(count);
    return value;
  };

  // ---- connection ----------------------------------------------------------------------

  // A STOMP session that reconnects with backoff until stop(). Callbacks: onStatus(state,
  // text), onMessage(frame), onConnected(connection).
  function Connection(url, callbacks) {
    this.url = url;
    this.callbacks = callbacks;
    this.retryMs = 1000;
    this.stopped = false;
    this.open();
  }

  Connection.prototype.open = function () {
    var self = this;
    this.version = null;
    this.lastError = null;
    this.reader = new FrameReader();
    this.lastSeen = Date.now();
    this.status('connecting', 'Connecting to ' + this.url + ' ...');
    var ws;
    try {
      ws = new WebSocket(this.url, ['v12.stomp', 'v11.stomp']);
    } catch (error) {
      this.status('error', 'Cannot open ' + this.url + ': ' + error.message);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = function () {
      ws.send(encodeFrame('CONNECT', {
        'accept-version': '1.1,1.2',
        host: '/', // the default virtual host (stompkit ignores it; RabbitMQ behind a relay needs it)
        'heart-beat': HEART_BEAT_MS + ',' + HEART_BEAT_MS
      }));
    };
    ws.onmessage = function (event) {
      self.lastSeen = Date.now();
      var bytes = typeof event.data === 'string' ? encoder.encode(event.data) : new Uint8Array(event.data);
      var frames;
      try {
        frames = self.reader.push(bytes);
      } catch (error) {
        ws.close(1002, 'unreadable frame');
        return;
      }
      frames.forEach(function (frame) {
        if (!frame.heartBeat) self.handle(frame);
      });
    };
    ws.onclose = function (event) {
      self.closed(event);
    };
  };

  Connection.prototype.handle = function (frame) {
    if (frame.command === 'CONNECTED') {
      this.version = frame.headers.version || '1.0';
      this.retryMs = 1000;
      this.startHeartBeats(frame.headers['heart-beat']);
      var via = this.ws.protocol ? ' (' + this.ws.protocol + ')' : '';
      this.status('connected', 'Connected: STOMP ' + this.version + via + ' to ' + this.url);
      this.callbacks.onConnected(this);
    } else if (frame.command === 'MESSAGE') {
      this.callbacks.onMessage(frame);
    } else if (frame.command === 'ERROR') {
      this.lastError = 'broker error: ' + (frame.headers.message || decoder.decode(frame.body));
      this.status('error', this.lastError);
    }
  };

  // Heart-beats as negotiated: send every max(ours, theirs) and give up on the connection
  // when nothing arrived for twice the interval the broker promised (plus slack).
  Connection.prototype.startHeartBeats = function (header) {
    var self = this;
    var parts = (header || '0,0').split(',');
    var serverSends = parseInt(parts[0], 10) || 0;
    var serverWants = parseInt(parts[1], 10) || 0;
    if (serverWants > 0) {
      var every = Math.max(HEART_BEAT_MS, serverWants);
      this.sendTimer = setInterval(function () {
        if (self.ws.readyState === WebSocket.OPEN) self.ws.send('\n');
      }, every);
    }
    if (serverSends > 0) {
      var limit = 2 * Math.max(HEART_BEAT_MS, serverSends) + 1000;
      this.watchTimer = setInterval(function () {
        if (Date.now() - self.lastSeen > limit) self.ws.close(4000, 'no heart-beat');
      }, limit / 2);
    }
  };

  Connection.prototype.send = function (command, headers, body) {
    if (!this.version || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(encodeFrame(command, headers, body, this.version));
    return true;
  };

  Connection.prototype.closed = function (event) {
    clearInterval(this.sendTimer);
    clearInterval(this.watchTimer);
    this.version = null;
    if (this.stopped) return;
    // Back off politely (1 s doubling to 30 s, with jitter) so a restarted broker
    // is not stormed by every open page at once.
    var wait = Math.round(this.retryMs * (0.75 + Math.random() / 2));
    this.retryMs = Math.min(this.retryMs * 2, 30000);
    var why = this.lastError || event.reason || (event.code === 1006 ? 'connection lost' : 'closed (' + event.code + ')');
    this.status('retrying', 'Disconnected: ' + why + '. Retrying in ' + Math.max(1, Math.round(wait / 1000)) + ' s ...');
    var self = this;
    this.retryTimer = setTimeout(function () {
      self.open();
    }, wait);
  };

  Connection.prototype.stop = function () {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.send('DISCONNECT', {});
      this.ws.close(1000, 'bye');
    } else if (this.ws) {
      this.ws.close();
    }
  };

  Connection.prototype.status = function (state, text) {
    this.callbacks.onStatus(state, text);
  };

  // ---- page ----------------------------------------------------------------------------

  var $ = function (id) {
    return document.getElementById(id);
  };
  var me = Math.random().toString(36).slice(2, 10); // tells our own messages apart
  var connection = null;
  var room = null;
  var myName = '';

  function cleanRoom(text) {
    return text.trim().toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  }

  function cleanName(text) {
    return text.replace(/[\r\n]+/g, ' ').trim().slice(0, 40);
  }

  function setStatus(state, text) {
    var status = $('status');
    status.dataset.state = state;
    status.textContent = text;
    $('send').disabled = state !== 'connected';
  }

  function show(kind, who, text, time) {
    var list = $('messages');
    var nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    var item = document.createElement('li');
    item.className = kind;
    if (who) {
      var name = document.createElement('span');
      name.className = 'who';
      name.textContent = who;
      item.appendChild(name);
    }
    var body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    item.appendChild(body);
    var stamp = document.createElement('time');
    stamp.textContent = (time ? new Date(time) : new Date()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    item.appendChild(stamp);
    list.appendChild(item);
    while (list.children.length > MAX_SHOWN) list.removeChild(list.firstChild);
    if (nearBottom || kind === 'mine') list.scrollTop = list.scrollHeight;
  }

  // JSON chat messages from this page; anything else (e.g. `stompkit send`) as plain text.
  function received(frame) {
    var text = decoder.decode(frame.body);
    var data = null;
    if (/json/.test(frame.headers['content-type'] || '')) {
      try {
        data = JSON.parse(text);
      } catch (error) {
        data = null;
      }
    }
    if (data && typeof data.text === 'string') {
      var mine = data.from === me;
      if (data.type === 'join') {
        if (!mine) show('note', null, String(data.name) + ' joined', data.sent);
        return;
      }
      show(mine ? 'mine' : 'theirs', mine ? 'me' : String(data.name || '?'), data.text, data.sent);
    } else {
      show('theirs', 'anonymous', text);
    }
  }

  function publish(type, text) {
    var body = JSON.stringify({ type: type, from: me, name: myName, text: text, sent: Date.now() });
    return connection.send('SEND', { destination: '/topic/chat.' + room, 'content-type': 'application/json;charset=utf-8' }, body);
  }

  function join(event) {
    event.preventDefault();
    var name = cleanName($('name').value);
    var wanted = cleanRoom($('room').value);
    if (!name || !wanted) return;
    $('name').value = name;
    $('room').value = wanted;
    try {
      localStorage.setItem('stompkit-chat', JSON.stringify({ name: name, room: wanted }));
    } catch (error) {
      // private mode: nothing to remember
    }
    if (location.hash !== '#' + wanted) history.replaceState(null, '', '#' + wanted);
    if (connection) connection.stop();
    room = wanted;
    myName = name;
    var announced = false;
    $('messages').textContent = '';
    $('room-title').textContent = '#' + room;
    document.body.classList.add('joined');
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    connection = new Connection(url, {
      onStatus: setStatus,
      onMessage: received,
      onConnected: function (c) {
        c.send('SUBSCRIBE', { id: 'chat', destination: '/topic/chat.' + room });
        if (!announced) {
          announced = true;
          show('note', null, 'You joined #' + room + ' as ' + name);
          publish('join', '');
        }
        $('text').focus();
      }
    });
  }

  function say(event) {
    event.preventDefault();
    var text = $('text').value.trim();
    if (text && publish('chat', text)) $('text').value = '';
  }

  function restore() {
    var saved = {};
    try {
      saved = JSON.parse(localStorage.getItem('stompkit-chat') || '{}') || {};
    } catch (error) {
      saved = {};
    }
    $('name').value = saved.name || '';
    $('room').value = cleanRoom(location.hash.slice(1)) || saved.room || 'lobby';
  }

  $('join-form').addEventListener('submit', join);
  $('say-form').addEventListener('submit', say);
  window.addEventListener('pagehide', function () {
    if (connection) connection.stop();
  });
  restore();
  setStatus('idle', 'Pick a name and a room, then Join.');

  // For tests and the curious: the frame codec, and the current connection.
  window.stompkitChat = {
    encodeFrame: encodeFrame,
    FrameReader: FrameReader,
    connection: function () {
      return connection;
    }
  };
})();
