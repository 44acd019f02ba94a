/*! Consentry browser SDK (Apache-2.0). Consent first, then events: docs/sdk.md. */
// One source, two forms: served as a classic script (window.Consentry) at /sdk/consentry.js
// and, wrapped by the gateway, as an ES module at /sdk/consentry.mjs. No dependencies.
(function (root) {
  "use strict";

  var STORE = "consentry"; // the one storage key: ids after a grant, or a bare refusal
  var FRESH = { stale_consent_token: 1, expired_consent_token: 1 }; // refresh, retry once
  var HELD_MAX = 500; // events kept in memory while the state is unknown
  var OUTBOX_MAX = 2000;
  var BEACON_MAX = 60000; // bytes: keepalive bodies in flight stay under the 64 KiB allowed

  function create(overrides) {
    var env = null;
    var cfg = null;
    var visitor = null; // {type, value}: kept in memory until a grant
    var managed = false; // whether the SDK made (and may persist) the cookie_id
    var subjectId = null;
    var token = null;
    var claims = null; // the token's payload: pur, ver, exp, sub
    var purposes = {}; // purpose -> its state in the latest consent answer
    var known = false;
    var refused = false;
    var honored = false;
    var tcString = null;
    var held = [];
    var outbox = [];
    var timer = null;
    var sending = null;
    var failures = 0;
    var listeners = { change: [], error: [] };
    var catalogue = null;
    var flying = 0; // bytes of keepalive bodies in flight
    var writing = null; // the latest consent write, settled either way: the next leaves after it
    var told = false; // whether a consent write named this visitor to the gateway
    var cuts = []; // each withdrawal made in the page: {list (null for all), open (unanswered)}

    function defaults() {
      var nav = root.navigator || {};
      return {
        fetch: root.fetch && root.fetch.bind(root),
        sendBeacon: nav.sendBeacon && nav.sendBeacon.bind(nav),
        keepalive: typeof Request === "function" && "keepalive" in Request.prototype,
        storage: function () {
          return root.localStorage;
        },
        navigator: nav,
        window: root,
        uuid: function () {
          return root.crypto.randomUUID();
        },
        now: function () {
          return Date.now();
        },
        setTimeout: root.setTimeout.bind(root),
        clearTimeout: root.clearTimeout.bind(root),
      };
    }

    // Storage: a failure to reach it (blocked, private mode) is a storage that holds nothing.
    function load() {
      try {
        var text = env.storage().getItem(STORE);
        return text ? JSON.parse(text) : null;
      } catch (e) {
        return null;
      }
    }

    function save(record) {
      try {
        if (record) env.storage().setItem(STORE, JSON.stringify(record));
        else env.storage().removeItem(STORE);
      } catch (e) {
        /* nothing kept: the visitor is asked again next time */
      }
    }

    function gpc() {
      return env.navigator.globalPrivacyControl === true;
    }

    function ref() {
      return { identities: [visitor] };
    }

    // The one subject a browser key may act on, as the gateway reads it (urlencoded pairs).
    function named() {
      var pairs = [[visitor.type, visitor.value]];
      if (visitor.type === "customer_id") {
        pairs.push(["identity_proof", cfg.subject.identity_proof]);
        pairs.push(["expires_at", cfg.subject.expires_at]);
      }
      return pairs
        .map(function (p) {
          return p[0] + "=" + encodeURIComponent(p[1] || "");
        })
        .join("&");
    }

    function headers() {
      return {
        "Content-Type": "application/json",
        "X-Consentry-Key": cfg.key,
        "X-Consentry-Subject": named(),
      };
    }

    function Failure(status, problem) {
      var err = new Error((problem && (problem.detail || problem.title)) || "HTTP " + status);
      err.status = status;
      err.code = (problem && problem.code) || (status ? "http_" + status : "network_error");
      return err;
    }

    function bytes(text) {
      return new TextEncoder().encode(text).length;
    }

    function call(method, path, body) {
      var init = { method: method, headers: headers(), credentials: "omit" };
      var size = 0;
      if (body !== undefined) size = bytes((init.body = JSON.stringify(body)));
      // keepalive lets a request outlive the page, within the browser's 64 KiB budget for all
      // of them together: past it, a request is an ordinary one.
      init.keepalive = flying + size <= BEACON_MAX;
      if (init.keepalive) flying += size;
      function landed() {
        if (init.keepalive) flying -= size;
      }
      return env.fetch(cfg.endpoint + path, init).then(
        function (res) {
          landed();
          return res.text().then(function (text) {
            var data = null;
            try {
              data = text ? JSON.parse(text) : null;
            } catch (e) {
              /* not JSON: a proxy's page */
            }
            if (!res.ok) throw Failure(res.status, data);
            return data;
          });
        },
        function () {
          landed();
          throw Failure(0, null);
        }
      );
    }

    function decode(jwt) {
      var part = String(jwt).split(".")[1] || "";
      part = part.replace(/-/g, "+").replace(/_/g, "/");
      while (part.length % 4) part += "=";
      return JSON.parse(root.atob(part));
    }

    function granted(purpose) {
      return !!claims && claims.pur.indexOf(purpose) >= 0;
    }

    function allowed(event) {
      return event.purposes.some(granted);
    }

    function emit(kind, value) {
      listeners[kind].slice().forEach(function (fn) {
        try {
          fn(value);
        } catch (e) {
          /* a listener's error is the listener's */
        }
      });
    }

    function fail(err) {
      emit("error", err);
      if (!listeners.error.length && root.console) root.console.warn("Consentry:", err.message);
    }

    function snapshot() {
      return {
        known: known,
        subject_id: subjectId,
        version: claims ? claims.ver : null,
        granted: claims ? claims.pur.slice() : [],
        purposes: JSON.parse(JSON.stringify(purposes)),
        expires_at: claims ? new Date(claims.exp * 1000).toISOString() : null,
        refused: refused,
        gpc: !!env && gpc(),
        gpc_honored: honored,
        tcf: tcString !== null,
      };
    }

    // Takes a withdrawal's purposes (null: all) out of the state held in the page.
    function strike(list) {
      function gone(p) {
        return !list || list.indexOf(p) >= 0;
      }
      if (claims) {
        claims = Object.assign({}, claims, {
          pur: claims.pur.filter(function (p) {
            return !gone(p);
          }),
        });
      }
      Object.keys(purposes).forEach(function (k) {
        if (gone(k) && purposes[k].state === "granted") {
          purposes[k] = Object.assign({}, purposes[k], { state: "withdrawn" });
        }
      });
    }

    // The answer to a request made now: a withdrawal made after it, or not answered yet,
    // wins over what that answer says (Art. 7(3)).
    function adopting() {
      var from = cuts.length;
      return function (answer) {
        return adopt(answer, from);
      };
    }

    // Consent writes leave one at a time, in the order the visitor made them.
    function serial(fn) {
      told = true;
      var run = writing ? writing.then(fn) : fn();
      var mark = (writing = run.then(idle, idle));
      function idle() {
        if (writing === mark) writing = null;
      }
      return run;
    }

    // A consent answer (or a fresh token) becomes the state; events wait for nothing more.
    function adopt(answer, from) {
      subjectId = answer.subject_id;
      token = answer.token;
      claims = decode(token);
      if (answer.purposes) purposes = answer.purposes;
      cuts.forEach(function (cut, i) {
        if (i >= from || cut.open) strike(cut.list);
      });
      if ("gpc_honored" in answer) honored = honored || answer.gpc_honored;
      known = true;
      var some = claims.pur.length > 0;
      // A refusal is a denial or withdrawal with nothing granted; a grant that lapsed is not.
      refused =
        !some &&
        Object.keys(purposes).some(function (k) {
          return /^(denied|withdrawn)$/.test(purposes[k].state);
        });
      if (managed) {
        // The cookie_id is kept only once a grant needs it; a refusal keeps no id at all.
        save(some ? { cookie_id: visitor.value, subject_id: subjectId } : refused && { refused: true });
      }
      var waiting = held;
      held = [];
      waiting.forEach(queue);
      outbox = outbox.filter(allowed);
      emit("change", snapshot());
      schedule();
      return snapshot();
    }

    function queue(event) {
      if (!known) {
        held.push(event);
        if (held.length > HELD_MAX) held.shift();
      } else if (allowed(event)) {
        outbox.push(event);
        if (outbox.length > OUTBOX_MAX) outbox.shift();
      }
    }

    // A full batch leaves now; a smaller one after the flush interval (or `delay`, a backoff).
    function schedule(delay) {
      if (!outbox.length) return;
      if (delay === undefined && outbox.length >= cfg.batchSize && !failures) {
        flush();
      } else if (timer === null) {
        timer = env.setTimeout(function () {
          timer = null;
          flush();
        }, delay === undefined ? cfg.flushMs : delay);
      }
    }

    function refresh() {
      if (!subjectId) return Promise.reject(Failure(0, { code: "state_unknown" }));
      var then = adopting();
      return call("GET", "/v1/subjects/" + encodeURIComponent(subjectId) + "/consent/token").then(
        then
      );
    }

    function wire(events) {
      var body = {
        events: events.map(function (e) {
          return {
            event_id: e.event_id,
            event_type: e.event_type,
            occurred_at: e.occurred_at,
            subject: ref(),
            consent_token: token,
            properties: e.properties,
          };
        }),
      };
      if (gpc()) body.gpc = true;
      return body;
    }

    // One batch: true when done with it, false when it should be tried again later.
    function send(events, retried) {
      var live = events.filter(allowed);
      if (!live.length) return Promise.resolve(true);
      return call("POST", "/v1/events", wire(live)).then(
        function (answer) {
          failures = 0;
          var again = {};
          var stale = answer.results.filter(function (r) {
            return r.status === "rejected" && FRESH[r.code] && (again[r.event_id] = true);
          });
          if (!stale.length || retried) return true;
          return refresh().then(
            function () {
              return send(
                live.filter(function (e) {
                  return again[e.event_id];
                }),
                true
              );
            },
            function (err) {
              fail(err); // no fresh token: those events go no further
              return true;
            }
          );
        },
        function (err) {
          if (err.status && err.status < 500 && err.status !== 429) {
            fail(err); // refused as a whole: sending it again would be refused again
            return true;
          }
          failures += 1;
          return false;
        }
      );
    }

    // A batch not sent yet goes back to the front of the outbox, for the timer (with backoff).
    function keep(batch) {
      outbox = batch.concat(outbox);
      schedule(Math.min(30000, 1000 * Math.pow(2, Math.max(failures, 1) - 1)));
    }

    function drain() {
      if (!outbox.length || !known) return Promise.resolve();
      var batch = outbox.splice(0, cfg.batchSize);
      return send(batch, false).then(function (done) {
        if (done) return drain();
        keep(batch);
      });
    }

    // On page hide what is queued leaves at once: by fetch with keepalive, which outlives the
    // page and carries the key's headers, as long as the 64 KiB budget allows; then by beacon
    // (the key and subject go in the query, as a beacon sends no headers). What neither takes,
    // and a batch the gateway could not take, stays in the outbox: a page that was only
    // hidden (a tab switch) sends it later as usual.
    function leave() {
      if (!known || !outbox.length) return;
      var events = outbox.filter(allowed);
      outbox = [];
      while (events.length) {
        var n = events.length;
        var text = JSON.stringify(wire(events));
        while (bytes(text) > BEACON_MAX && n > 1) {
          n = Math.ceil(n / 2);
          text = JSON.stringify(wire(events.slice(0, n)));
        }
        var chunk = events.splice(0, n);
        if (env.keepalive && flying + bytes(text) <= BEACON_MAX) {
          send(chunk, false).then(back(chunk));
        } else if (!env.sendBeacon || !beacon(text)) {
          keep(chunk);
        }
      }
    }

    function back(chunk) {
      return function (done) {
        if (!done) keep(chunk);
      };
    }

    function beacon(text) {
      var url = cfg.endpoint + "/v1/events?consentry_key=" + encodeURIComponent(cfg.key);
      url += "&consentry_subject=" + encodeURIComponent(named());
      try {
        return env.sendBeacon(url, new Blob([text], { type: "text/plain" }));
      } catch (e) {
        return false;
      }
    }

    function flush() {
      if (timer !== null) {
        env.clearTimeout(timer);
        timer = null;
      }
      if (!sending) {
        sending = drain().then(
          function () {
            sending = null;
          },
          function (err) {
            sending = null;
            fail(err);
          }
        );
      }
      return sending;
    }

    function consentBody(extra) {
      var body = { subject: ref(), source: "web" };
      if (cfg.jurisdiction) body.jurisdiction = cfg.jurisdiction;
      if (gpc()) body.gpc = true;
      for (var k in extra) body[k] = extra[k];
      return body;
    }

    // The TC string of a CMP on the page, and each decision the visitor makes in it.
    function listenTcf() {
      var tcfapi = env.window.__tcfapi;
      if (typeof tcfapi !== "function") return;
      try {
        tcfapi("addEventListener", 2, function (data, ok) {
          if (!ok || !data || !data.tcString) return;
          tcString = data.tcString;
          if (data.eventStatus === "useractioncomplete" && cfg.notice) {
            record({ tcf: tcString, source: "tcf", notice: cfg.notice }).catch(fail);
          }
        });
      } catch (e) {
        /* a broken CMP gives no string */
      }
    }

    function record(extra) {
      var then = adopting();
      return serial(function () {
        return call("POST", "/v1/consents", consentBody(extra)).then(then);
      });
    }

    function ready() {
      if (!cfg) throw new Error("Consentry: call init() first");
    }

    var api = {
      /** Set up; sends nothing until the visitor decides (or was seen deciding before). */
      init: function (options) {
        env = Object.assign(defaults(), overrides || {});
        var o = options || {};
        if (!o.endpoint || !o.key) throw new Error("Consentry: endpoint and key are required");
        cfg = {
          endpoint: String(o.endpoint).replace(/\/+$/, ""),
          key: o.key,
          subject: o.subject || {},
          events: o.events || {},
          notice: o.notice || null,
          jurisdiction: o.jurisdiction || null,
          batchSize: o.batchSize || 50,
          flushMs: o.flushInterval === undefined ? 1000 : o.flushInterval,
        };
        var s = cfg.subject;
        var stored = null;
        if (s.customer_id) {
          visitor = { type: "customer_id", value: String(s.customer_id) };
        } else if (s.cookie_id || s.device_id) {
          var type = s.cookie_id ? "cookie_id" : "device_id";
          visitor = { type: type, value: String(s[type]) };
        } else {
          managed = true;
          stored = load();
          visitor = {
            type: "cookie_id",
            value: (stored && stored.cookie_id) || env.uuid(),
          };
        }
        listenTcf();
        var doc = env.window.document;
        if (doc && env.window.addEventListener) {
          doc.addEventListener("visibilitychange", function () {
            if (doc.visibilityState === "hidden") leave();
          });
          env.window.addEventListener("pagehide", leave);
        }
        if (stored && stored.refused) {
          // A refusal on record: no id, no request, nothing sent.
          known = true;
          refused = true;
          return Promise.resolve(snapshot());
        }
        if (stored && stored.subject_id) {
          subjectId = stored.subject_id;
          return refresh().then(snapshot, function (err) {
            fail(err);
            return snapshot();
          });
        }
        if (s.subject_id) subjectId = s.subject_id;
        if (visitor.type === "customer_id" && gpc()) {
          // A known person's GPC signal is an opt-out to record at once (CCPA regs §7025).
          return record({ purposes: {} }).catch(function (err) {
            fail(err);
            return snapshot();
          });
        }
        if (subjectId) return refresh().catch(fail).then(snapshot);
        return Promise.resolve(snapshot());
      },

      /** The purposes the visitor may be asked about (the gateway's list). */
      purposes: function () {
        ready();
        if (!catalogue) {
          catalogue = call("GET", "/v1/purposes").then(function (page) {
            return page.items;
          });
          catalogue.catch(function () {
            catalogue = null;
          });
        }
        return catalogue;
      },

      /** Record the visitor's choices under the notice they were shown. */
      set: function (choices, options) {
        ready();
        var o = options || {};
        var body = { purposes: choices || {} };
        var notice = o.notice || cfg.notice;
        if (notice) body.notice = notice;
        if (tcString) body.tcf = tcString;
        if (o.evidence) body.evidence = o.evidence;
        return record(body);
      },

      /** Withdraw consent; events for those purposes stop before the gateway even answers. */
      withdraw: function (which) {
        ready();
        var all = which === "all";
        var list = all ? null : [].concat(which || []);
        var cut = { list: list, open: true };
        cuts.push(cut);
        var then = adopting();
        strike(list);
        outbox = outbox.filter(allowed);
        held = held.filter(function (e) {
          return !all && e.purposes.some(function (p) {
            return list.indexOf(p) < 0;
          });
        });
        if (managed && !subjectId && !told) {
          // Nobody to tell: the visitor asked nothing yet, and their id lives in memory only.
          cut.open = false;
          held = [];
          known = refused = true;
          save({ refused: true });
          emit("change", snapshot());
          return Promise.resolve(snapshot());
        }
        // A write still unanswered (a first grant): nothing is granted meanwhile, and this
        // withdrawal leaves after it.
        if (all && !claims) known = refused = true;
        return serial(function () {
          return call("POST", "/v1/consents/withdraw", {
            subject: ref(),
            purposes: all ? "all" : list,
            source: "web",
          }).then(
            function (answer) {
              cut.open = false;
              return then(answer);
            },
            function (err) {
              cut.open = false;
              throw err;
            }
          );
        });
      },

      /** What the latest consent token says, and whether a GPC signal was honoured. */
      state: function () {
        return snapshot();
      },

      /** Queue an event; it leaves only for a purpose the visitor granted. */
      track: function (eventType, properties) {
        ready();
        var wanted = cfg.events[eventType];
        if (!wanted || !wanted.length) {
          fail(new Error("no purposes declared for event type " + eventType));
          return;
        }
        queue({
          event_id: env.uuid(),
          event_type: eventType,
          occurred_at: new Date(env.now()).toISOString(),
          properties: properties || {},
          purposes: [].concat(wanted),
        });
        schedule();
      },

      /** Send what is queued now; resolves when the gateway has answered. */
      flush: function () {
        ready();
        return flush();
      },

      /** Listen: "change" (the state after each answer) or "error". Returns an unsubscribe. */
      on: function (kind, fn) {
        var list = listeners[kind];
        if (!list) throw new Error("Consentry: no event " + kind);
        list.push(fn);
        return function () {
          var at = list.indexOf(fn);
          if (at >= 0) list.splice(at, 1);
        };
      },
    };
    return api;
  }

  var Consentry = create();
  Consentry.create = create;
  if (typeof module === "object" && module && module.exports) module.exports = Consentry;
  else root.Consentry = Consentry;
})(typeof globalThis === "object" ? globalThis : this);
