// The SDK's logic without a browser: held events, purpose filtering, batching, the stale-token
// retry, GPC, TCF, page hide, and what it keeps in storage (ePrivacy Art. 5(3)).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { Consentry, Gateway, page, settle, jwt, KEY } = require("./fakes.js");

test("nothing is sent before consent; held events leave after the grant, only for it", async () => {
  const p = page();
  await p.ready;
  p.sdk.track("page_view", { path: "/" });
  p.sdk.track("offer_seen", { offer: "winter" });
  await p.tick();
  await p.sdk.flush();
  assert.deepEqual(p.gateway.requests, []);
  assert.equal(p.sdk.state().known, false);

  await p.sdk.set({ analytics: "granted", marketing: "denied" });
  await p.sdk.flush();
  assert.deepEqual(p.gateway.paths(), ["POST /v1/consents", "POST /v1/events"]);
  const [consent, events] = p.gateway.requests;
  assert.deepEqual(consent.body.notice, { id: "web", version: "1" });
  assert.equal(consent.body.source, "web");
  assert.deepEqual(
    events.body.events.map((e) => e.event_type),
    ["page_view"],
  );
  const sent = events.body.events[0];
  assert.deepEqual(sent.subject, consent.body.subject);
  assert.deepEqual(sent.properties, { path: "/" });
  assert.equal(sent.occurred_at, "2026-12-04T12:00:00.000Z");
  assert.ok(sent.consent_token);
  assert.equal("purposes" in sent, false);
  assert.equal(p.gateway.stored.length, 1);
});

test("after the state is known, an event for purposes not granted is never queued", async () => {
  const p = page();
  await p.ready;
  await p.sdk.set({ analytics: "denied", marketing: "granted" });
  p.sdk.track("page_view", {});
  p.sdk.track("order", { total: 12 });
  await p.sdk.flush();
  const batches = p.gateway.requests.filter((r) => r.path === "/v1/events");
  assert.deepEqual(
    batches.flatMap((b) => b.body.events.map((e) => e.event_type)),
    ["order"],
  );
});

test("an event type without declared purposes is refused locally", async () => {
  const p = page();
  const errors = [];
  p.sdk.on("error", (e) => errors.push(e.message));
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  p.sdk.track("mystery", {});
  await p.sdk.flush();
  assert.equal(p.gateway.paths().includes("POST /v1/events"), false);
  assert.match(errors[0], /no purposes declared for event type mystery/);
});

test("storage: read once, written only after a grant, with the id the gateway knows", async () => {
  const p = page();
  await p.ready;
  p.sdk.track("page_view", {});
  assert.deepEqual(p.storage.writes(), []);
  assert.deepEqual(p.storage.log, [["get", "consentry"]]);

  const answer = await p.sdk.set({ analytics: "granted" });
  const record = p.storage.record();
  const sentId = p.gateway.requests[0].body.subject.identities[0];
  assert.deepEqual(sentId.type, "cookie_id");
  assert.deepEqual(record, { cookie_id: sentId.value, subject_id: answer.subject_id });
});

test("a refusal is kept as a bare record: no id, and the next visit sends nothing", async () => {
  const p = page();
  await p.ready;
  await p.sdk.set({ analytics: "denied", marketing: "denied" });
  assert.deepEqual(p.storage.record(), { refused: true });

  const gateway = new Gateway();
  const next = page({ gateway, stored: { consentry: JSON.stringify({ refused: true }) } });
  const state = await next.ready;
  assert.equal(state.known, true);
  assert.equal(state.refused, true);
  next.sdk.track("page_view", {});
  await next.tick();
  await next.sdk.flush();
  assert.deepEqual(gateway.requests, []);
  assert.deepEqual(next.storage.writes(), []);
});

test("a returning visitor's state comes from a fresh token, and events flow at once", async () => {
  const gateway = new Gateway();
  const first = page({ gateway });
  await first.ready;
  await first.sdk.set({ analytics: "granted" });
  const stored = { consentry: JSON.stringify(first.storage.record()) };
  gateway.requests = [];

  const again = page({ gateway, stored });
  const state = await again.ready;
  assert.deepEqual(state.granted, ["analytics"]);
  again.sdk.track("page_view", {});
  await again.sdk.flush();
  assert.deepEqual(gateway.paths(), [
    `GET /v1/subjects/${state.subject_id}/consent/token`,
    "POST /v1/events",
  ]);
  assert.deepEqual(gateway.requests[1].body.events[0].subject, {
    identities: [{ type: "cookie_id", value: first.storage.record().cookie_id }],
  });
});

test("events are batched: a full batch leaves at once, the rest on the timer", async () => {
  const p = page({ options: { batchSize: 3 } });
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  for (let i = 0; i < 2; i++) p.sdk.track("page_view", { n: i });
  assert.equal(p.gateway.paths().includes("POST /v1/events"), false);
  p.sdk.track("page_view", { n: 2 });
  assert.equal(p.gateway.paths().at(-1), "POST /v1/events"); // a full batch does not wait
  for (let i = 3; i < 7; i++) p.sdk.track("page_view", { n: i });
  await settle();
  await p.tick();
  const batches = p.gateway.requests.filter((r) => r.path === "/v1/events");
  assert.deepEqual(
    batches.map((b) => b.body.events.length),
    [3, 3, 1],
  );
  for (const b of batches) {
    assert.equal(b.init.keepalive, true);
    assert.equal(b.init.credentials, "omit");
    assert.equal(b.init.headers["X-Consentry-Key"], KEY);
  }
});

test("one event waits for the flush interval", async () => {
  const p = page();
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  p.sdk.track("page_view", {});
  assert.deepEqual(
    p.timers.map((t) => t.ms),
    [1000],
  );
  assert.equal(p.gateway.paths().includes("POST /v1/events"), false);
  await p.tick();
  assert.equal(p.gateway.stored.length, 1);
});

test("on stale_consent_token it fetches a fresh token and retries once", async () => {
  const p = page();
  await p.ready;
  const { subject_id } = await p.sdk.set({ analytics: "granted" });
  p.gateway.stale = 1;
  p.sdk.track("page_view", {});
  await p.sdk.flush();
  assert.deepEqual(p.gateway.paths(), [
    "POST /v1/consents",
    "POST /v1/events",
    `GET /v1/subjects/${subject_id}/consent/token`,
    "POST /v1/events",
  ]);
  const [first, second] = p.gateway.requests.filter((r) => r.path === "/v1/events");
  assert.equal(first.body.events[0].event_id, second.body.events[0].event_id);
  assert.equal(p.gateway.stored.length, 1);

  // Stale twice: one retry only.
  p.gateway.stale = 2;
  p.gateway.requests = [];
  p.sdk.track("page_view", {});
  await p.sdk.flush();
  assert.equal(p.gateway.paths().filter((x) => x === "POST /v1/events").length, 2);
  assert.equal(p.gateway.stored.length, 1);
});

test("the retry after a refresh sends only what the fresh token still allows", async () => {
  const gateway = new Gateway();
  const p = page({ gateway });
  await p.ready;
  await p.sdk.set({ analytics: "granted", marketing: "granted" });
  p.sdk.track("page_view", {});
  p.sdk.track("offer_seen", {});
  // Elsewhere (another tab, the portal) marketing is withdrawn: this page's token is stale.
  const ledger = [...gateway.ledgers.values()][0];
  gateway.write(ledger, { marketing: "withdrawn" }, "web");
  await p.sdk.flush();
  assert.deepEqual(
    gateway.stored.map((e) => e.event_type),
    ["page_view"],
  );
  assert.deepEqual(p.sdk.state().granted, ["analytics"]);
});

test("a withdrawal stops queued events before the gateway answers", async () => {
  const p = page();
  await p.ready;
  await p.sdk.set({ analytics: "granted", marketing: "granted" });
  p.sdk.track("page_view", {});
  p.sdk.track("offer_seen", {});
  const pending = p.sdk.withdraw(["analytics"]);
  assert.deepEqual(p.sdk.state().granted, ["marketing"]); // already, synchronously
  p.sdk.track("page_view", {});
  await pending;
  await p.sdk.flush();
  assert.deepEqual(
    p.gateway.stored.map((e) => e.event_type),
    ["offer_seen"],
  );
  const withdrawal = p.gateway.requests.find((r) => r.path === "/v1/consents/withdraw");
  assert.deepEqual(withdrawal.body.purposes, ["analytics"]);
  assert.equal(withdrawal.body.source, "web");

  await p.sdk.withdraw("all");
  assert.deepEqual(p.storage.record(), { refused: true });
  p.sdk.track("offer_seen", {});
  await p.sdk.flush();
  assert.equal(p.gateway.stored.length, 1);
});

test("withdrawing before any grant tells nobody and keeps no id", async () => {
  const p = page();
  await p.ready;
  p.sdk.track("page_view", {});
  const state = await p.sdk.withdraw("all");
  assert.equal(state.known, true);
  assert.equal(state.refused, true);
  await p.sdk.flush();
  assert.deepEqual(p.gateway.requests, []);
  assert.deepEqual(p.storage.record(), { refused: true });
});

test("GPC is sent with consent writes and events, and state() says it was honoured", async () => {
  const p = page({ gpc: true });
  await p.ready;
  assert.deepEqual(p.gateway.requests, []); // an anonymous visitor: nothing to record yet
  const state = await p.sdk.set({ analytics: "granted" });
  assert.equal(state.gpc, true);
  assert.equal(state.gpc_honored, true);
  assert.equal(state.purposes.advertising.state, "denied");
  p.sdk.track("page_view", {});
  await p.sdk.flush();
  const [consent, events] = p.gateway.requests;
  assert.equal(consent.body.gpc, true);
  assert.equal(events.body.gpc, true);
});

test("a known customer's GPC signal is recorded at init", async () => {
  const p = page({
    gpc: true,
    options: {
      subject: { customer_id: "C-1001", identity_proof: "ab".repeat(32), expires_at: "2026-12-05T12:00:00Z" },
    },
  });
  const state = await p.ready;
  assert.equal(state.known, true);
  assert.equal(state.gpc_honored, true);
  const [consent] = p.gateway.requests;
  assert.deepEqual(consent.body.subject, { identities: [{ type: "customer_id", value: "C-1001" }] });
  assert.deepEqual(consent.body.purposes, {});
  const named = new URLSearchParams(consent.init.headers["X-Consentry-Subject"]);
  assert.deepEqual(Object.fromEntries(named), {
    customer_id: "C-1001",
    identity_proof: "ab".repeat(32),
    expires_at: "2026-12-05T12:00:00Z",
  });
  assert.deepEqual(p.storage.log, []); // the site names the customer: no storage at all
});

test("without GPC, nothing says the signal was honoured", async () => {
  const p = page();
  await p.ready;
  const state = await p.sdk.set({ analytics: "granted" });
  assert.equal(state.gpc, false);
  assert.equal(state.gpc_honored, false);
  assert.equal("gpc" in p.gateway.requests[0].body, false);
});

test("a CMP's TC string is passed on, and a decision in the CMP is recorded", async () => {
  let listener = null;
  const tcf = (command, version, callback) => {
    assert.equal(command, "addEventListener");
    assert.equal(version, 2);
    listener = callback;
  };
  const p = page({ tcf });
  await p.ready;
  listener({ tcString: "CPexample", eventStatus: "tcloaded" }, true);
  await settle();
  assert.deepEqual(p.gateway.requests, []); // a string loaded from the CMP's own record
  await p.sdk.set({ analytics: "granted" });
  assert.equal(p.gateway.requests[0].body.tcf, "CPexample");

  listener({ tcString: "CPchanged", eventStatus: "useractioncomplete" }, true);
  await settle();
  const last = p.gateway.requests.at(-1);
  assert.equal(last.body.tcf, "CPchanged");
  assert.equal(last.body.source, "tcf");
  assert.deepEqual(last.body.notice, { id: "web", version: "1" });
  assert.equal(p.sdk.state().tcf, true);
});

test("on page hide what is queued leaves at once, by keepalive fetch", async () => {
  const p = page();
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  p.sdk.track("page_view", { n: 1 });
  p.sdk.track("page_view", { n: 2 });
  p.hide();
  const last = p.gateway.requests.at(-1);
  assert.equal(last.path, "/v1/events");
  assert.equal(last.init.keepalive, true);
  assert.equal(last.body.events.length, 2);
  assert.deepEqual(p.beacons, []);
  await p.tick();
  assert.equal(p.gateway.stored.length, 2); // and not sent twice
});

test("without keepalive, page hide sends a beacon naming key and subject in its query", async () => {
  const p = page({ keepalive: false });
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  p.sdk.track("page_view", { n: 1 });
  p.sdk.track("page_view", { n: 2 });
  p.hide();
  assert.equal(p.beacons.length, 1);
  const { url, blob } = p.beacons[0];
  const { origin, pathname, searchParams } = new URL(url);
  assert.equal(origin + pathname, "https://gateway.example.com/v1/events");
  assert.equal(searchParams.get("consentry_key"), KEY);
  const cookie = p.gateway.requests[0].body.subject.identities[0].value;
  assert.equal(searchParams.get("consentry_subject"), `cookie_id=${cookie}`);
  assert.equal(blob.type, "text/plain"); // a simple request: no preflight
  const body = JSON.parse(await blob.text());
  assert.equal(body.events.length, 2);
  await p.tick();
  assert.equal(p.gateway.paths().includes("POST /v1/events"), false);
});

test("a gateway that is down keeps the batch for a later try", async () => {
  const p = page();
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  p.gateway.down = 1;
  p.sdk.track("page_view", {});
  await p.sdk.flush();
  assert.equal(p.gateway.stored.length, 0);
  assert.equal(p.timers.at(-1).ms, 1000);
  await p.tick();
  assert.equal(p.gateway.stored.length, 1);
});

test("change listeners see each new state, and can unsubscribe", async () => {
  const p = page();
  const seen = [];
  const off = p.sdk.on("change", (s) => seen.push(s.granted.join(",")));
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  await p.sdk.set({ marketing: "granted" });
  off();
  await p.sdk.withdraw("all");
  assert.deepEqual(seen, ["analytics", "analytics,marketing"]);
});

test("purposes() reads the gateway's list once", async () => {
  const p = page();
  await p.ready;
  const first = await p.sdk.purposes();
  await p.sdk.purposes();
  assert.deepEqual(first, [{ key: "analytics", legal_basis: "consent" }]);
  assert.deepEqual(p.gateway.paths(), ["GET /v1/purposes"]);
  assert.equal("subject" in (p.gateway.requests[0].body || {}), false);
});

test("the default instance is the module, and init needs an endpoint and a key", () => {
  assert.equal(typeof Consentry.init, "function");
  assert.equal(typeof Consentry.create, "function");
  assert.throws(() => Consentry.create({}).init({}), /endpoint and key are required/);
  assert.throws(() => Consentry.create({}).track("page_view"), /call init\(\) first/);
  assert.ok(jwt({}).split(".").length === 3);
});

test("an id the site keeps itself names the visitor, and the SDK stores nothing", async () => {
  const p = page({ options: { subject: { device_id: "device-7f3a" } } });
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  p.sdk.track("page_view", {});
  await p.sdk.flush();
  const [consent, events] = p.gateway.requests;
  assert.deepEqual(consent.body.subject, { identities: [{ type: "device_id", value: "device-7f3a" }] });
  assert.equal(consent.init.headers["X-Consentry-Subject"], "device_id=device-7f3a");
  assert.deepEqual(events.body.events[0].subject, consent.body.subject);
  assert.deepEqual(p.storage.log, []);
});

test("a grant that lapsed is no refusal: the ids go, no refusal is kept", async () => {
  const gateway = new Gateway();
  const first = page({ gateway });
  await first.ready;
  await first.sdk.set({ analytics: "granted" });
  const stored = { consentry: JSON.stringify(first.storage.record()) };
  // Thirteen months later the grant has expired: the fresh token grants nothing.
  const ledger = [...gateway.ledgers.values()][0];
  gateway.write(ledger, { analytics: "expired" }, "expiry");

  const again = page({ gateway, stored });
  const state = await again.ready;
  assert.equal(state.known, true);
  assert.deepEqual(state.granted, []);
  assert.equal(state.refused, false); // so the site asks again
  assert.equal(again.storage.record(), undefined);
});

test("no fresh token to be had: the stale events are reported, the rest still go", async () => {
  const p = page({ options: { batchSize: 1 } });
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  const errors = [];
  p.sdk.on("error", (e) => errors.push(e.code));
  p.gateway.stale = 1;
  const { handle } = p.gateway;
  p.gateway.handle = function (method, path, ...rest) {
    if (method === "GET") return { status: 503, body: { code: "unavailable" } };
    return handle.call(this, method, path, ...rest);
  };
  p.sdk.track("page_view", { n: 1 });
  p.sdk.track("page_view", { n: 2 });
  await p.sdk.flush();
  await p.tick();
  assert.deepEqual(errors, ["unavailable"]);
  assert.deepEqual(
    p.gateway.stored.map((e) => e.properties.n),
    [2],
  );
});

test("a customer whose subject_id the site gives has their state read at init", async () => {
  const gateway = new Gateway();
  const ledger = gateway.ledger({ identities: [{ type: "customer_id", value: "C-2002" }] });
  gateway.write(ledger, { analytics: "granted" }, "web");
  const subject = {
    customer_id: "C-2002",
    identity_proof: "cd".repeat(32),
    expires_at: "2026-12-05T12:00:00Z",
    subject_id: ledger.subject_id,
  };
  const p = page({ gateway, options: { subject } });
  const state = await p.ready;
  assert.deepEqual(state.granted, ["analytics"]);
  p.sdk.track("page_view", {});
  await p.sdk.flush();
  assert.deepEqual(gateway.paths(), [
    `GET /v1/subjects/${ledger.subject_id}/consent/token`,
    "POST /v1/events",
  ]);
  assert.deepEqual(p.storage.log, []);
});

test("GPC from an anonymous visitor waits for their first choice, whoever keeps the id", async () => {
  for (const subject of [undefined, { cookie_id: "site-cookie-1" }]) {
    const p = page({ gpc: true, options: { subject } });
    const state = await p.ready;
    assert.equal(state.known, false);
    assert.deepEqual(p.gateway.requests, []);
  }
});

test("a withdrawal while the first grant is unanswered is sent after it, and wins", async () => {
  const p = page();
  await p.ready;
  p.sdk.track("page_view", { path: "/" });
  const granting = p.sdk.set({ analytics: "granted" }); // in flight
  const withdrawing = p.sdk.withdraw("all"); // clicked before the answer
  assert.equal(p.sdk.state().refused, true);
  const [granted, withdrawn] = await Promise.all([granting, withdrawing]);
  assert.deepEqual(granted.granted, []); // the grant's answer brings nothing back
  assert.deepEqual(withdrawn.granted, []);
  assert.deepEqual(p.gateway.paths(), ["POST /v1/consents", "POST /v1/consents/withdraw"]);
  const [grant, withdrawal] = p.gateway.requests;
  assert.deepEqual(withdrawal.body.subject, grant.body.subject);
  const ledger = [...p.gateway.ledgers.values()][0];
  assert.equal(ledger.purposes.analytics.state, "withdrawn");
  assert.deepEqual(p.storage.record(), { refused: true });
  p.sdk.track("page_view", { path: "/" });
  await p.tick();
  await p.sdk.flush();
  assert.equal(p.gateway.stored.length, 0);
});

test("a partial withdrawal before a grant's answer keeps the rest of the grant", async () => {
  const p = page();
  await p.ready;
  p.sdk.track("page_view", {});
  p.sdk.track("offer_seen", {});
  const granting = p.sdk.set({ analytics: "granted", marketing: "granted" });
  const withdrawing = p.sdk.withdraw(["analytics"]);
  const granted = await granting;
  assert.deepEqual(granted.granted, ["marketing"]);
  assert.equal(granted.purposes.analytics.state, "withdrawn");
  await withdrawing;
  await p.sdk.flush();
  assert.deepEqual(
    p.gateway.stored.map((e) => e.event_type),
    ["offer_seen"],
  );
  assert.equal([...p.gateway.ledgers.values()][0].purposes.analytics.state, "withdrawn");
});

test("consent writes leave one at a time, in the order they were made", async () => {
  const p = page();
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  const order = [];
  const { handle } = p.gateway;
  p.gateway.handle = function (method, path, ...rest) {
    order.push(path);
    return handle.call(this, method, path, ...rest);
  };
  const a = p.sdk.withdraw(["analytics"]);
  const b = p.sdk.set({ analytics: "granted" });
  assert.deepEqual(order, ["/v1/consents/withdraw"]); // the grant waits for the answer
  await Promise.all([a, b]);
  assert.deepEqual(order, ["/v1/consents/withdraw", "/v1/consents"]);
  assert.deepEqual(p.sdk.state().granted, ["analytics"]); // the later choice stands
});

test("a fresh token that arrives after a withdrawal does not bring its purposes back", async () => {
  const p = page();
  await p.ready;
  await p.sdk.set({ analytics: "granted", marketing: "granted" });
  p.gateway.stale = 2;
  p.sdk.track("page_view", {});
  p.sdk.track("offer_seen", {});
  // The token refresh and the withdrawal are answered late: the refresh first.
  const gates = {};
  p.gateway.hold = (method, path) => {
    if (method === "POST" && path === "/v1/events") return undefined;
    return new Promise((resolve) => (gates[method] = resolve));
  };
  const flushing = p.sdk.flush();
  await settle();
  assert.ok(p.gateway.paths().at(-1).startsWith("GET /v1/subjects/"));
  const withdrawing = p.sdk.withdraw(["analytics"]);
  gates.GET();
  await flushing;
  assert.deepEqual(p.sdk.state().granted, ["marketing"]);
  const retry = p.gateway.requests.at(-1);
  assert.equal(retry.path, "/v1/events");
  assert.deepEqual(
    retry.body.events.map((e) => e.event_type),
    ["offer_seen"],
  );
  gates.POST();
  await withdrawing;
  assert.deepEqual(p.sdk.state().granted, ["marketing"]);
});

test("a batch sent on page hide that the gateway could not take is kept and tried again", async () => {
  const p = page();
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  p.sdk.track("page_view", { n: 1 });
  p.sdk.track("page_view", { n: 2 });
  p.gateway.down = 1;
  p.hide(); // a tab switch: the page lives on
  await settle();
  assert.equal(p.gateway.stored.length, 0);
  p.show();
  await p.tick();
  assert.deepEqual(
    p.gateway.stored.map((e) => e.properties.n),
    [1, 2],
  );
});

test("a batch sent on page hide with a stale token is sent again with a fresh one", async () => {
  const p = page();
  await p.ready;
  const { subject_id } = await p.sdk.set({ analytics: "granted" });
  p.gateway.stale = 1;
  p.sdk.track("page_view", {});
  p.hide();
  await settle();
  assert.deepEqual(p.gateway.paths().slice(1), [
    "POST /v1/events",
    `GET /v1/subjects/${subject_id}/consent/token`,
    "POST /v1/events",
  ]);
  assert.equal(p.gateway.stored.length, 1);
});

function large(p, count) {
  for (let i = 0; i < count; i++) p.sdk.track("page_view", { n: i, note: "x".repeat(20000) });
}

test("on page hide, keepalive requests together stay under 60 KB; the rest go by beacon", async () => {
  const p = page();
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  large(p, 6);
  const before = p.gateway.requests.length;
  p.hide();
  const fetched = p.gateway.requests.slice(before);
  const inFlight = fetched.reduce((sum, r) => sum + Buffer.byteLength(r.init.body), 0);
  assert.ok(fetched.length >= 1 && fetched.every((r) => r.init.keepalive));
  assert.ok(inFlight <= 60000, `${inFlight} bytes in keepalive requests`);
  const beaconed = [];
  for (const b of p.beacons) beaconed.push(...JSON.parse(await b.blob.text()).events);
  const sent = fetched.flatMap((r) => r.body.events).concat(beaconed);
  assert.deepEqual(
    sent.map((e) => e.properties.n).sort(),
    [0, 1, 2, 3, 4, 5],
  );
});

test("on page hide, what neither keepalive nor a beacon takes stays queued", async () => {
  const p = page({ beacon: false });
  await p.ready;
  await p.sdk.set({ analytics: "granted" });
  large(p, 6);
  p.hide();
  await settle();
  assert.ok(p.gateway.stored.length < 6);
  await p.tick();
  assert.deepEqual(
    p.gateway.stored.map((e) => e.properties.n).sort(),
    [0, 1, 2, 3, 4, 5],
  );
});
