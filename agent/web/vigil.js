// vigil.js: Vigil's capture script for web applications. Plain JavaScript, no build step;
// the Vigil agent on the device serves it as /vigil.js.
//
//   <script src="http://127.0.0.1:7412/vigil.js"></script>
//   Vigil.start({session: "s-1", token: tokenFromYourServer});   // after sign-in
//   Vigil.onStatus(function (st) { ... st.trust, st.tier, st.reasons ... });
//   Vigil.authorize("transfer").then(function (d) { ... d.allow, d.explanation ... });
//   Vigil.onError(function (err) { ... err.reason ... });     // e.g. the agent restarted
//   Vigil.stop();                                                 // at sign-out
//
// Your server starts the session with the agent (StartSession, with the install secret) and
// hands the page the session token it returns: the token lets this script send the session's
// events, read its status and ask Authorize for it, nothing else. Decide privileged actions on
// your server too: a page can be tampered with.
//
// A web site served from elsewhere, which the device's owner lists (vigil agent --site ORIGIN),
// starts the session from its page instead, and has its server check signed decisions:
//
//   Vigil.start({session: "s-1", user: "alice"}).then(function (st) { ... st.siteKey ... });
//   Vigil.authorize("transfer", {nonce: nonceFromYourServer})
//     .then(function (d) { ... send d.attestation {payload, signature} to your server ... });
//   Vigil.end();                                                   // at sign-out
//
// Privacy: nothing typed in a password field, or inside an element marked data-vigil-ignore
// (or with autocomplete="one-time-code" / "cc-*"), is captured at all. Keys are reduced to what
// the typing features need: letters keep their identity; digits, punctuation and every other
// key are sent as their class only. The agent keeps raw events in memory for the current window
// only and stores feature summaries.
(function (global) {
  "use strict";

  var script = document.currentScript;
  var endpoint = script ? new URL(script.src).origin : "http://127.0.0.1:7412";
  var FLUSH_MS = 250, MAX_BATCH = 2000, MAX_HOLD_MS = 5000;

  var state = null; // {session, token, keys, pointer, held, timer, sent}
  var statusListeners = [], errorListeners = [];

  function now(e) {
    // High-resolution event time in ms since the epoch.
    return performance.timeOrigin + (e && e.timeStamp ? e.timeStamp : performance.now());
  }

  // Fields that were ever of type password, so that a show-password toggle (type switched to
  // text) does not bring their typing back into capture.
  var wasSecret = typeof WeakSet === "function" ? new WeakSet() : null;

  function secretField(el) {
    if (el.tagName !== "INPUT") return false;
    if (el.type === "password" || el.type === "hidden") {
      if (wasSecret) wasSecret.add(el);
      return true;
    }
    return !!(wasSecret && wasSecret.has(el));
  }

  // secretAutocomplete reads autocomplete as the token list HTML defines ("section-x
  // billing cc-number", any case); fields for passwords, one-time codes and cards are skipped.
  function secretAutocomplete(el) {
    var ac = el.getAttribute && el.getAttribute("autocomplete");
    if (!ac) return false;
    var tokens = ac.toLowerCase().split(/\s+/);
    for (var i = 0; i < tokens.length; i++) {
      var t = tokens[i];
      if (t === "current-password" || t === "new-password" || t === "one-time-code" || t.indexOf("cc-") === 0) return true;
    }
    return false;
  }

  // ignored looks at every element the event passed through, shadow roots included: at the
  // document, a field inside a web component's shadow DOM is hidden behind its host.
  function ignored(e) {
    var path = e.composedPath ? e.composedPath() : [];
    if (path.length === 0 && e.target) {
      for (var n = e.target; n; n = n.parentNode) path.push(n);
    }
    for (var i = 0; i < path.length; i++) {
      var el = path[i];
      if (!el || el.nodeType !== 1) continue;
      if (el.hasAttribute("data-vigil-ignore") || secretField(el) || secretAutocomplete(el)) return true;
    }
    return false;
  }

  function rememberSecret(e) { ignored(e); } // a password field focused is remembered as one

  if (typeof MutationObserver === "function" && wasSecret) {
    // A toggle that shows a password switches its type before anyone types in it again.
    new MutationObserver(function (records) {
      for (var i = 0; i < records.length; i++) {
        if (records[i].oldValue === "password") wasSecret.add(records[i].target);
      }
    }).observe(document, {subtree: true, attributes: true, attributeFilter: ["type"], attributeOldValue: true});
  }

  // keyClass reduces a keyCode to the representative of its class (see models/keystroke).
  function keyClass(c) {
    if (c >= 65 && c <= 90) return c;                                  // letters
    if (c === 32 || c === 16 || c === 8 || c === 190 || c === 188 || c === 222 || c === 20) return c;
    if (c === 110) return 190;                                          // keypad full stop
    if ((c >= 48 && c <= 57) || (c >= 96 && c <= 105)) return 48;       // digits
    if (c >= 37 && c <= 40) return 37;                                  // arrows
    if (c === 186 || c === 187 || c === 189 || c === 191 || c === 192 || (c >= 219 && c <= 221) ||
        c === 59 || c === 61 || c === 173 || c === 45 || (c >= 106 && c <= 111)) return 186;
    return 1;                                                           // any other key
  }

  function onKeyDown(e) {
    if (!state || e.repeat || ignored(e)) return;
    var c = e.keyCode || e.which;
    if (!c) return;
    if (!state.held[c]) state.held[c] = now(e);
  }

  function onKeyUp(e) {
    if (!state) return;
    var c = e.keyCode || e.which;
    var press = state.held[c];
    if (press === undefined) return;
    delete state.held[c];
    if (ignored(e)) return;
    var release = Math.max(press, now(e));
    state.keys.push({pressMs: press, releaseMs: release, code: keyClass(c)});
  }

  var lastMove = 0;
  function onPointer(e) {
    if (!state || ignored(e)) return;
    var t = now(e), action, button = "none";
    if (e.type === "pointermove") {
      if (t - lastMove < 8) return; // ~120 Hz is plenty
      lastMove = t;
      action = e.buttons ? "drag" : "move";
      if (e.buttons) button = "left";
    } else {
      action = e.type === "pointerdown" ? "press" : "release";
      button = ["left", "middle", "right"][e.button] || "other";
    }
    state.pointer.push({atMs: t, x: Math.round(e.clientX), y: Math.round(e.clientY), button: button, action: action});
    if (state.pointer.length > MAX_BATCH) state.pointer.splice(0, state.pointer.length - MAX_BATCH);
  }

  function onWheel(e) {
    if (!state || ignored(e)) return;
    state.pointer.push({atMs: now(e), x: Math.round(e.clientX), y: Math.round(e.clientY), button: "scroll",
      action: e.deltaY > 0 ? "scroll_down" : "scroll_up"});
  }

  // api calls method with the session's token, or with none (token null: a site's page
  // starting its session, which the browser's Origin header authenticates).
  function api(method, body, token) {
    var headers = {"Content-Type": "application/json"};
    if (token === undefined) token = state.token;
    if (token !== null) headers.Authorization = "Bearer " + token;
    return fetch(endpoint + "/v1/agent/" + method, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) {
          var err = new Error(j.error || r.statusText);
          err.status = r.status; err.reason = j.reason; err.field = j.field;
          throw err;
        }
        return j;
      });
    });
  }

  function failed(err) {
    for (var i = 0; i < errorListeners.length; i++) {
      try { errorListeners[i](err); } catch (e) { /* a listener's bug is not ours */ }
    }
  }

  function publish(st) {
    for (var i = 0; i < statusListeners.length; i++) {
      try { statusListeners[i](st); } catch (e) { /* a listener's bug is not ours */ }
    }
  }

  // flush sends the events whose order is settled: nothing at or after the press of a key
  // still held, since that key will be sent later and the agent wants each session in order.
  var inFlight = null;
  function flush() {
    if (!state || inFlight) return inFlight || Promise.resolve();
    var cutoff = Infinity, t = now();
    for (var c in state.held) {
      if (t - state.held[c] > MAX_HOLD_MS) { delete state.held[c]; continue; } // stuck key
      cutoff = Math.min(cutoff, state.held[c]);
    }
    var keys = [], keep = [], i;
    state.keys.sort(function (a, b) { return a.pressMs - b.pressMs; });
    for (i = 0; i < state.keys.length; i++) (state.keys[i].pressMs < cutoff && keys.length < MAX_BATCH ? keys : keep).push(state.keys[i]);
    state.keys = keep;
    var pointer = [], pkeep = [];
    for (i = 0; i < state.pointer.length; i++) (state.pointer[i].atMs < cutoff && pointer.length < MAX_BATCH ? pointer : pkeep).push(state.pointer[i]);
    state.pointer = pkeep;
    if (!keys.length && !pointer.length) return Promise.resolve();
    var s = state;
    inFlight = api("SendEvents", {session: s.session, keys: keys, pointer: pointer}).then(function (r) {
      inFlight = null;
      s.sent += r.accepted || 0;
      if (r.status) publish(r.status);
      return r;
    }, function (err) {
      inFlight = null;
      // The agent busy (429) or unreachable for a moment: keep the events for the next flush,
      // within bounds. Anything else (the session ended, a malformed event) drops them.
      if ((err.status === 429 || err.status === undefined) && state === s) {
        s.keys = keys.concat(s.keys).slice(-MAX_BATCH);
        s.pointer = pointer.concat(s.pointer).slice(-MAX_BATCH);
      }
      if (global.console) console.warn("vigil: events not taken:", err.message);
      failed(err);
    });
    return inFlight;
  }

  function capture(session, token) {
    state = {session: session, token: token, keys: [], pointer: [], held: {}, sent: 0};
    document.addEventListener("focusin", rememberSecret, true);
    document.addEventListener("keydown", onKeyDown, true);
    document.addEventListener("keyup", onKeyUp, true);
    document.addEventListener("pointermove", onPointer, true);
    document.addEventListener("pointerdown", onPointer, true);
    document.addEventListener("pointerup", onPointer, true);
    document.addEventListener("wheel", onWheel, {capture: true, passive: true});
    state.timer = setInterval(flush, FLUSH_MS);
  }

  var Vigil = {
    // start begins capturing for a session: opts {session, token, endpoint?}, or, for a
    // listed site's page, {session, user, endpoint?} to start the session itself. It resolves
    // to the session's status (a site's with its siteKey, base64, for the site's server).
    start: function (opts) {
      if (typeof opts === "string") opts = {session: opts, token: arguments[1]};
      if (!opts || !opts.session || !(opts.token || opts.user)) {
        throw new Error("Vigil.start: session and token (or, for a listed site, session and user) are required");
      }
      Vigil.stop();
      if (opts.endpoint) endpoint = opts.endpoint;
      if (opts.token) {
        capture(opts.session, opts.token);
        return Vigil.status();
      }
      return api("StartSession", {session: opts.session, user: opts.user}, null).then(function (st) {
        capture(st.session, st.sessionToken);
        state.siteKey = st.siteKey;
        publish(st);
        return st;
      }, function (err) { failed(err); throw err; });
    },
    // end ends a session the page started (a listed site's), then stops capturing.
    end: function () {
      if (!state) return Promise.resolve();
      var s = state;
      return flush().then(function () { return api("EndSession", {session: s.session}, s.token); })
        .then(function (st) { Vigil.stop(); return st; });
    },
    // siteKey is the device's key for this site (base64), once a site's session started.
    siteKey: function () { return state ? state.siteKey : undefined; },
    // stop ends capturing (the application's server ends the session).
    stop: function () {
      if (!state) return;
      clearInterval(state.timer);
      document.removeEventListener("focusin", rememberSecret, true);
      document.removeEventListener("keydown", onKeyDown, true);
      document.removeEventListener("keyup", onKeyUp, true);
      document.removeEventListener("pointermove", onPointer, true);
      document.removeEventListener("pointerdown", onPointer, true);
      document.removeEventListener("pointerup", onPointer, true);
      document.removeEventListener("wheel", onWheel, {capture: true, passive: true});
      state = null;
    },
    // flush sends what is captured now; it resolves when the agent has applied it.
    flush: flush,
    // status resolves to the session's current status.
    status: function () {
      return api("SendEvents", {session: state.session}).then(function (r) { publish(r.status); return r.status; },
        function (err) { failed(err); throw err; });
    },
    // authorize asks the agent whether the session may use resource now; it resolves to the
    // decision {allow, outcome, trust, required, tier, challenge, reasons, explanation}. Pending
    // events are sent first, so the decision reflects everything typed so far. With opts.nonce
    // (a site's server's one-time challenge) the decision also carries attestation {payload,
    // signature}, base64, for the site's server to check (Go: package agent/attest).
    authorize: function (resource, opts) {
      if (!state) return Promise.reject(new Error("Vigil.authorize: no session started"));
      var s = state, req = {session: s.session, resource: resource};
      if (opts && opts.nonce) req.nonce = opts.nonce;
      return flush().then(function () { return flush(); }).then(function () {
        return api("Authorize", req, s.token);
      });
    },
    // onStatus calls fn with every status the agent returns.
    onStatus: function (fn) { statusListeners.push(fn); },
    // onError calls fn with every refusal: err.status (HTTP), err.reason (e.g. UNKNOWN_SESSION
    // or BAD_SECRET after the agent restarted: start the session again), err.field.
    onError: function (fn) { errorListeners.push(fn); },
    // watch streams status changes over a WebSocket; fn as for onStatus.
    watch: function (fn) {
      var ws = new WebSocket(endpoint.replace(/^http/, "ws") + "/v1/agent/WatchSession?session=" +
        encodeURIComponent(state.session) + "&token=" + encodeURIComponent(state.token));
      ws.onmessage = function (m) { var j = JSON.parse(m.data); if (!j.error) fn(j); };
      return ws;
    },
    // sent is the number of events the agent accepted in this session.
    sent: function () { return state ? state.sent : 0; },
    pending: function () { return state ? state.keys.length + state.pointer.length : 0; }
  };
  global.Vigil = Vigil;
})(window);
