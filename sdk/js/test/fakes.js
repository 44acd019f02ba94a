// What the SDK's unit tests run it against: a gateway that answers as src/consentry does
// (consent, withdrawal, token, events), a storage that records every access, hand-driven
// timers, a beacon, a page that can be hidden, and optionally a TCF CMP.
"use strict";

const Consentry = require("../consentry.js");

const ENDPOINT = "https://gateway.example.com";
const KEY = "pk_test_example";

function jwt(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "EdDSA", kid: "test" })}.${part(claims)}.signature`;
}

/** A gateway holding one ledger per identity; `stale` answers the next N events as stale. */
class Gateway {
  constructor() {
    this.requests = [];
    this.ledgers = new Map();
    this.stored = [];
    this.stale = 0;
    this.down = 0;
    this.hold = null; // (method, path) -> a promise the answer waits for (it is made at once)
  }

  ledger(ref) {
    const id = ref.identities[0];
    const name = `${id.type}:${id.value}`;
    if (!this.ledgers.has(name)) {
      this.ledgers.set(name, { subject_id: `sub_${this.ledgers.size + 1}`, version: 0, purposes: {} });
    }
    return this.ledgers.get(name);
  }

  bySubject(subjectId) {
    return [...this.ledgers.values()].find((l) => l.subject_id === subjectId);
  }

  token(ledger) {
    const pur = Object.keys(ledger.purposes)
      .filter((k) => ledger.purposes[k].state === "granted")
      .sort();
    return jwt({ sub: ledger.subject_id, pur, ver: ledger.version, exp: 2000000000 });
  }

  answer(ledger, gpcHonored) {
    return {
      subject_id: ledger.subject_id,
      version: ledger.version,
      purposes: ledger.purposes,
      gpc_honored: gpcHonored,
      token: this.token(ledger),
      token_expires_at: "2033-05-18T03:33:20Z",
    };
  }

  write(ledger, changes, source) {
    for (const [key, state] of Object.entries(changes)) {
      ledger.purposes[key] = { state, source, updated_at: "2026-12-04T12:00:00Z" };
    }
    ledger.version += 1;
  }

  handle(method, path, body, headers) {
    if (this.down > 0) {
      this.down -= 1;
      return { status: 503, body: { code: "unavailable" } };
    }
    if (headers["X-Consentry-Key"] !== KEY) return { status: 401, body: { code: "unauthorized" } };
    // As auth/browser.py does: every subject of the request is the one the header names.
    const named = new URLSearchParams(headers["X-Consentry-Subject"]);
    const refs = body ? (body.events || [body]).map((b) => b.subject).filter(Boolean) : [];
    for (const ref of refs) {
      const id = ref.identities[0];
      if (named.get(id.type) !== id.value) return { status: 403, body: { code: "subject_not_allowed" } };
    }
    const gpc = body && body.gpc === true;
    if (method === "POST" && path === "/v1/consents") {
      const ledger = this.ledger(body.subject);
      const changes = { ...body.purposes };
      if (gpc) changes.advertising = "denied";
      this.write(ledger, changes, gpc ? "gpc" : body.source);
      return { status: 200, body: this.answer(ledger, gpc) };
    }
    if (method === "POST" && path === "/v1/consents/withdraw") {
      const ledger = this.ledger(body.subject);
      const keys = body.purposes === "all" ? Object.keys(ledger.purposes) : body.purposes;
      this.write(ledger, Object.fromEntries(keys.map((k) => [k, "withdrawn"])), body.source);
      return { status: 200, body: this.answer(ledger, false) };
    }
    const token = path.match(/^\/v1\/subjects\/([^/]+)\/consent\/token$/);
    if (method === "GET" && token) {
      const ledger = this.bySubject(decodeURIComponent(token[1]));
      if (!ledger) return { status: 404, body: { code: "subject_not_found" } };
      const { subject_id, version } = ledger;
      return { status: 200, body: { subject_id, version, token: this.token(ledger) } };
    }
    if (method === "GET" && path === "/v1/purposes") {
      return { status: 200, body: { items: [{ key: "analytics", legal_basis: "consent" }], next: null } };
    }
    if (method === "POST" && path === "/v1/events") {
      const results = body.events.map((e) => {
        const ledger = this.ledger(e.subject);
        const claims = JSON.parse(Buffer.from(e.consent_token.split(".")[1], "base64url"));
        if (this.stale > 0) {
          this.stale -= 1;
          return { event_id: e.event_id, status: "rejected", purposes: [], code: "stale_consent_token" };
        }
        if (claims.ver !== ledger.version) {
          return { event_id: e.event_id, status: "rejected", purposes: [], code: "stale_consent_token" };
        }
        this.stored.push(e);
        return { event_id: e.event_id, status: "accepted", purposes: claims.pur };
      });
      const accepted = results.filter((r) => r.status === "accepted").length;
      return { status: 200, body: { accepted, rejected: results.length - accepted, results } };
    }
    return { status: 404, body: { code: "not_found" } };
  }

  fetch() {
    return async (url, init) => {
      const { pathname, search } = new URL(url);
      const body = init.body === undefined ? undefined : JSON.parse(init.body);
      this.requests.push({ method: init.method, path: pathname, search, body, init });
      const out = this.handle(init.method, pathname, body, init.headers);
      const wait = this.hold && this.hold(init.method, pathname);
      if (wait) await wait;
      return { ok: out.status < 400, status: out.status, text: async () => JSON.stringify(out.body) };
    };
  }

  paths() {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }
}

/** localStorage's interface, recording each call. */
class Storage {
  constructor(initial) {
    this.items = new Map(Object.entries(initial || {}));
    this.log = [];
  }
  getItem(k) {
    this.log.push(["get", k]);
    return this.items.has(k) ? this.items.get(k) : null;
  }
  setItem(k, v) {
    this.log.push(["set", k, v]);
    this.items.set(k, String(v));
  }
  removeItem(k) {
    this.log.push(["remove", k]);
    this.items.delete(k);
  }
  writes() {
    return this.log.filter((entry) => entry[0] !== "get");
  }
  record() {
    const text = this.items.get("consentry");
    return text === undefined ? undefined : JSON.parse(text);
  }
}

/** A page: an SDK instance over fakes. `gpc`, `stored` (storage items), `tcf` (a CMP). */
function page({
  gateway = new Gateway(),
  gpc = false,
  stored,
  tcf,
  options,
  keepalive = true,
  beacon = true, // whether the browser takes a beacon (it refuses one past its budget)
} = {}) {
  const storage = new Storage(stored);
  const timers = [];
  const beacons = [];
  const handlers = {};
  const doc = {
    visibilityState: "visible",
    addEventListener: (name, fn) => (handlers[name] = fn),
  };
  const win = { document: doc, addEventListener: (name, fn) => (handlers[name] = fn) };
  if (tcf) win.__tcfapi = tcf;
  let ids = 0;
  const sdk = Consentry.create({
    fetch: gateway.fetch(),
    storage: () => storage,
    navigator: gpc ? { globalPrivacyControl: true } : {},
    window: win,
    keepalive,
    sendBeacon: (url, blob) => {
      if (beacon) beacons.push({ url, blob });
      return beacon;
    },
    uuid: () => `00000000-0000-4000-8000-${String(++ids).padStart(12, "0")}`,
    now: () => Date.parse("2026-12-04T12:00:00Z"),
    setTimeout: (fn, ms) => timers.push({ fn, ms }),
    clearTimeout: () => {},
  });
  const ready = sdk.init({
    endpoint: ENDPOINT + "/",
    key: KEY,
    events: { page_view: ["analytics"], offer_seen: ["marketing"], order: ["analytics", "marketing"] },
    notice: { id: "web", version: "1" },
    flushInterval: 1000,
    ...options,
  });
  return {
    sdk,
    ready,
    gateway,
    storage,
    timers,
    beacons,
    hide() {
      doc.visibilityState = "hidden";
      handlers.visibilitychange();
    },
    show() {
      doc.visibilityState = "visible";
      handlers.visibilitychange();
    },
    /** Run the timers due now (and those they set), then let the answers arrive. */
    async tick() {
      for (let i = 0; i < 10 && timers.length; i++) {
        timers.shift().fn();
        await settle();
      }
      await settle();
    },
  };
}

async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

module.exports = { Consentry, Gateway, Storage, page, settle, jwt, ENDPOINT, KEY };
