// The example page: sign in, the organization's posts, kept live by atr.
// Plain JavaScript, no build step; the client is the global AtrClient.
(function () {
  'use strict';
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var session = null;     // { token, user, organization }
  var client = null;      // the AtrClient
  var posts = new Map();  // id → post
  var loading = null;     // events that arrive while the list loads, replayed after it

  // --- the API ---------------------------------------------------------------
  function api(method, path, body) {
    var headers = { 'content-type': 'application/json' };
    if (session) headers.authorization = 'Bearer ' + session.token;
    return fetch('/api' + path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (json) {
          if (res.status === 401 && session && path !== '/session') signOut('Your session has expired; sign in again.');
          if (!res.ok) { var err = new Error(json.error || res.statusText); err.status = res.status; throw err; }
          return json;
        });
      });
  }

  // --- signing in and out ----------------------------------------------------
  $('#sign-in-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var form = e.target;
    $('#sign-in-error').textContent = '';
    api('POST', '/session', { email: form.email.value, password: form.password.value })
      .then(function (s) {
        sessionStorage.setItem('atr-example-session', JSON.stringify(s));
        start(s);
      })
      .catch(function (err) { $('#sign-in-error').textContent = err.status === 401 ? 'Wrong email or password.' : err.message; });
  });

  $('#sign-out').addEventListener('click', function () { signOut(); });

  function signOut(message) {
    if (client) client.close();
    client = null;
    session = null;
    sessionStorage.removeItem('atr-example-session');
    posts.clear();
    render();
    $('#board').hidden = true;
    $('#who').hidden = true;
    $('#sign-in').hidden = false;
    $('#sign-in-error').textContent = message || '';
  }

  function start(s) {
    session = s;
    $('#sign-in').hidden = true;
    $('#board').hidden = false;
    $('#who').hidden = false;
    $('#who-name').textContent = s.user.name + ' (' + s.user.email + ')';
    $('#who-org').textContent = s.organization.name;
    // Snapshot then subscribe: the list comes with the position it reflects,
    // and the client starts from there, so nothing written in between is lost.
    loadPosts().then(function (snapshot) { if (session === s) connect(snapshot); });
  }

  // --- live ------------------------------------------------------------------
  function setStatus(state, text) {
    var el = $('#status');
    el.dataset.state = state;
    el.textContent = text;
  }

  function connect(snapshot) {
    var base = location.origin.replace(/^http/, 'ws');
    var s = session;
    var positions = {};
    if (snapshot && snapshot.position) positions[snapshot.scope] = snapshot.position;
    client = new AtrClient({
      positions: positions,
      url: function () { return base + '/ws/organization/' + s.organization.id + '?token=' + encodeURIComponent(s.token); },
      // A browser cannot see why a handshake failed (401, 403 or a server
      // that is down all look like close 1006): ask the API before retrying.
      shouldReconnect: function (info) {
        if (info.wasOpen) return true;
        return api('GET', '/organization').then(function () {
          // The API takes our token but the websocket does not open: a proxy, or an origin the server does not allow.
          if (info.failures >= 3) setStatus('offline', 'no live updates — retrying');
          return true;
        }, function (err) {
          if (err.status === 401 || err.status === 403) return false;
          if (info.failures >= 3) setStatus('offline', 'server unreachable — retrying');
          return true;
        });
      },
      onRefused: function () { signOut('The server refused the live connection; sign in again.'); },
    });
    client.on('atr.ready', function () {
      setStatus('live', 'live');
      // Without a position the server cannot replay: catch up by reloading.
      if (!snapshot || !snapshot.position) loadPosts();
    });
    // After a reconnect the server replays what this page missed; when its
    // history no longer reaches back that far it says so, and we reload.
    client.on('atr.reset', function () { loadPosts(); });
    client.on('close', function (info) { if (!info.refused && info.failures < 3) setStatus('reconnecting', 'reconnecting…'); });
    client.on('post.created', function (e) { handle(e); });
    client.on('post.updated', function (e) { handle(e); });
    client.on('post.destroyed', function (e) { handle(e); });
  }

  // Loads the list; events that arrive meanwhile are applied again on top of it.
  // Resolves to { scope, position } from the response headers (see GET /api/posts).
  function loadPosts() {
    var buffered = loading = [];
    var snapshot = {};
    return fetch('/api/posts', { headers: { authorization: 'Bearer ' + session.token } }).then(function (res) {
      if (res.status === 401) { signOut('Your session has expired; sign in again.'); throw new Error('signed out'); }
      if (!res.ok) throw new Error(res.statusText);
      snapshot = { scope: res.headers.get('Atr-Scope'), position: res.headers.get('Atr-Position') };
      return res.json();
    }).then(function (list) {
      if (loading !== buffered) return snapshot;
      loading = null;
      posts.clear();
      list.forEach(function (p) { posts.set(p.id, p); });
      buffered.forEach(function (e) { apply(e); });
      render();
      return snapshot;
    }, function (err) { loading = null; console.warn('could not load posts', err); return snapshot; });
  }

  function mine(e) { return e.actor && session && e.actor.id === session.user.id; }

  var seen = 0;
  function handle(e) {
    // How many events this page got: tests and curious readers can look.
    document.documentElement.dataset.eventsSeen = String(++seen);
    if (!mine(e)) notify(e);
    if (loading) loading.push(e);
    apply(e);
    render(e.action !== 'destroyed' ? e.record.id : undefined);
  }

  // An update of a post we do not have is an arrival (it may have moved here).
  function apply(e) {
    if (e.action === 'destroyed') posts.delete(e.record.id);
    else posts.set(e.record.id, Object.assign({}, posts.get(e.record.id), e.record));
  }

  var VERBS = { created: 'posted', updated: 'edited', destroyed: 'deleted' };
  function notify(e) {
    var who = e.actor ? e.actor.name : 'Someone';
    var known = posts.get(e.record.id);
    var title = e.record.title || (known && known.title) || ('post #' + e.record.id);
    var toast = document.createElement('div');
    toast.className = 'toast';
    toast.dataset.action = e.action;
    toast.textContent = who + ' ' + VERBS[e.action] + ' “' + title + '”';
    $('#toasts').prepend(toast);
    setTimeout(function () { toast.classList.add('fade'); }, 6000);
    setTimeout(function () { toast.remove(); }, 6500);
  }

  // --- rendering ---------------------------------------------------------------
  var editing = new Set();

  function render(flashId) {
    var list = $('#posts');
    var sorted = Array.from(posts.values()).sort(function (a, b) { return b.id - a.id; });
    var existing = new Map();
    Array.prototype.forEach.call(list.children, function (li) { existing.set(Number(li.dataset.id), li); });
    existing.forEach(function (li, id) { if (!posts.has(id)) li.remove(); });
    sorted.forEach(function (post, i) {
      var li = existing.get(post.id) || build(post.id);
      fill(li, post);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
      if (post.id === flashId) { li.classList.remove('flash'); void li.offsetWidth; li.classList.add('flash'); }
    });
    $('#count').textContent = '(' + posts.size + ')';
    $('#empty').hidden = posts.size > 0;
  }

  function build(id) {
    var li = $('#post-template').content.firstElementChild.cloneNode(true);
    li.dataset.id = String(id);
    $('.edit', li).addEventListener('click', function () {
      var post = posts.get(id);
      var form = $('.editor', li);
      form.title.value = post.title;
      form.body.value = post.body;
      editing.add(id);
      form.hidden = false;
      $('.view', li).hidden = true;
    });
    $('.cancel', li).addEventListener('click', function () { stopEditing(li, id); });
    $('.editor', li).addEventListener('submit', function (e) {
      e.preventDefault();
      var form = e.target;
      api('PATCH', '/posts/' + id, { title: form.title.value, body: form.body.value })
        .then(function (post) { posts.set(post.id, post); stopEditing(li, id); render(); })
        .catch(function (err) { alert(err.message); });
    });
    $('.delete', li).addEventListener('click', function () {
      api('DELETE', '/posts/' + id)
        .then(function () { posts.delete(id); render(); })
        .catch(function (err) { if (err.status === 404) { posts.delete(id); render(); } else alert(err.message); });
    });
    return li;
  }

  function stopEditing(li, id) {
    editing.delete(id);
    $('.editor', li).hidden = true;
    $('.view', li).hidden = false;
  }

  function fill(li, post) {
    $('.title', li).textContent = post.title;
    $('.body', li).textContent = post.body;
    $('.meta', li).textContent = 'Updated ' + new Date(post.updated_at).toLocaleString();
  }

  $('#new-post').addEventListener('submit', function (e) {
    e.preventDefault();
    var form = e.target;
    $('#post-error').textContent = '';
    api('POST', '/posts', { title: form.title.value, body: form.body.value })
      .then(function (post) { posts.set(post.id, post); form.reset(); render(post.id); })
      .catch(function (err) { $('#post-error').textContent = err.message; });
  });

  // --- boot --------------------------------------------------------------------
  var saved = sessionStorage.getItem('atr-example-session');
  if (saved) {
    try { start(JSON.parse(saved)); } catch (e) { signOut(); }
  }
})();
