// Builds TCF v2.2 test vectors with the IAB reference library (@iabtcf/core).
//
// Usage: node make_vectors.mjs [out.json] [--count N] [--seed S]
//
// Output is deterministic for a given seed and library version: every random
// choice comes from the seeded PRNG below, every GVL is built in memory (nothing
// is fetched) and the TCModel dates are set explicitly instead of "now". That is
// what lets the Python test regenerate the file and compare it byte for byte.
//
// Each vector holds the string the library encoded plus the fields the library
// itself reports when it decodes that string again (TCString.decode), so the
// expectations come from the reference decoder, not from the generator's inputs
// (the library filters and rewrites several inputs while encoding).

import { writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Base64Url, GVL, PurposeRestriction, TCModel, TCString,
} from '@iabtcf/core';

const HERE = dirname(fileURLToPath(import.meta.url));
const LIB_VERSION = JSON.parse(
  readFileSync(join(HERE, 'node_modules/@iabtcf/core/package.json'), 'utf8'),
).version;

function parseArgs(argv) {
  const args = { out: join(HERE, 'vectors.json'), count: 300, seed: 20240522 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--count') args.count = Number(argv[++i]);
    else if (argv[i] === '--seed') args.seed = Number(argv[++i]);
    else args.out = argv[i];
  }
  return args;
}

// mulberry32: tiny, well-known, and good enough to vary test inputs.
function makeRng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  const chance = (p) => next() < p;
  const pick = (items) => items[Math.floor(next() * items.length)];
  const subset = (lo, hi, p) => {
    const out = [];
    for (let i = lo; i <= hi; i++) if (chance(p)) out.push(i);
    return out;
  };
  return { next, int, chance, pick, subset };
}

const LANGUAGES = ['BG', 'CA', 'CS', 'DA', 'DE', 'EL', 'EN', 'ES', 'ET', 'FI', 'FR', 'HR',
  'HU', 'IT', 'JA', 'LT', 'LV', 'MT', 'NL', 'NO', 'PL', 'PT', 'RO', 'RU', 'SK', 'SL', 'SV',
  'TR', 'ZH'];

function idMap(ids) {
  const out = {};
  for (const id of ids) {
    out[id] = { id, name: `item ${id}`, description: '', illustrations: [] };
  }
  return out;
}

const PURPOSES = idMap([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
const SPECIAL_PURPOSES = idMap([1, 2]);
const FEATURES = idMap([1, 2, 3]);
const SPECIAL_FEATURES = idMap([1, 2]);

// changeLanguage() would fetch translations; a pre-filled cache keeps it offline.
for (const lang of LANGUAGES) {
  GVL.LANGUAGE_CACHE.set(lang, {
    purposes: PURPOSES, specialPurposes: SPECIAL_PURPOSES, features: FEATURES,
    specialFeatures: SPECIAL_FEATURES, stacks: {},
  });
}

function vendorIdsFor(rng) {
  const maxId = rng.pick([20, 60, 150, 400, 800, 1200, 1500, 3000]);
  const shape = rng.pick(['dense', 'dense', 'sparse', 'runs']);
  let ids;
  if (shape === 'dense') {
    ids = rng.subset(1, maxId, 0.6 + rng.next() * 0.35);
  } else if (shape === 'sparse') {
    const set = new Set();
    const n = rng.int(1, 40);
    for (let i = 0; i < n; i++) set.add(rng.int(1, maxId));
    ids = [...set];
  } else {
    const set = new Set();
    const runs = rng.int(1, 12);
    for (let r = 0; r < runs; r++) {
      const start = rng.int(1, maxId);
      const len = rng.int(1, 60);
      for (let v = start; v < start + len && v <= maxId; v++) set.add(v);
    }
    ids = [...set];
  }
  if (ids.length === 0) ids = [rng.int(1, maxId)];
  return ids.sort((x, y) => x - y);
}

function buildVendorList(rng) {
  const vendors = {};
  for (const id of vendorIdsFor(rng)) {
    const purposes = rng.chance(0.1) ? [] : rng.subset(1, 11, 0.5);
    const legIntPurposes = rng.chance(0.3) ? [] : rng.subset(2, 11, 0.3)
      .filter((p) => !purposes.includes(p));
    const declared = [...purposes, ...legIntPurposes];
    const flexiblePurposes = rng.chance(0.5) ? [] : declared.filter(() => rng.chance(0.5));
    const vendor = {
      id, name: `vendor ${id}`, purposes, legIntPurposes, flexiblePurposes,
      specialPurposes: rng.chance(0.5) ? [1] : [], features: [], specialFeatures: [],
      policyUrl: 'https://example.invalid/privacy',
    };
    if (rng.chance(0.03)) vendor.deletedDate = '2020-06-01T00:00:00Z';
    vendors[id] = vendor;
  }
  return {
    gvlSpecificationVersion: 3,
    vendorListVersion: rng.int(1, 4095),
    tcfPolicyVersion: rng.int(2, 5),
    lastUpdated: '2024-01-01T00:00:00Z',
    purposes: PURPOSES,
    specialPurposes: SPECIAL_PURPOSES,
    features: FEATURES,
    specialFeatures: SPECIAL_FEATURES,
    stacks: {},
    vendors,
  };
}

function chooseVendors(rng, gvlIds) {
  const maxGvl = gvlIds[gvlIds.length - 1];
  switch (rng.pick(['none', 'all', 'dense', 'dense', 'sparse', 'runs'])) {
    case 'none': return [];
    case 'all': return [...gvlIds];
    case 'dense': {
      const p = 0.5 + rng.next() * 0.5;
      // a few ids outside the GVL check that the library drops them
      return gvlIds.filter(() => rng.chance(p)).concat([maxGvl + rng.int(1, 50)]);
    }
    case 'sparse': {
      const n = rng.int(1, 8);
      const out = [];
      for (let i = 0; i < n; i++) out.push(rng.pick(gvlIds));
      return out;
    }
    default: {
      const start = rng.int(0, gvlIds.length - 1);
      return gvlIds.slice(start, start + rng.int(1, 200));
    }
  }
}

function randomDate(rng) {
  // 2018-2035, with millisecond noise so the library's rounding is exercised
  const lo = Date.UTC(2018, 0, 1);
  const hi = Date.UTC(2035, 0, 1);
  return new Date(lo + Math.floor(rng.next() * (hi - lo)));
}

function letters(rng) {
  const a = String.fromCharCode(65 + rng.int(0, 25));
  const b = String.fromCharCode(65 + rng.int(0, 25));
  return rng.chance(0.2) ? (a + b).toLowerCase() : a + b;
}

function addRestrictions(rng, model, gvlIds) {
  const count = rng.pick([0, 0, 1, 2, 3, 5]);
  for (let r = 0; r < count; r++) {
    const pr = new PurposeRestriction(rng.int(1, 11), rng.int(0, 2));
    if (rng.chance(0.1)) {
      model.publisherRestrictions.restrictPurposeToLegalBasis(pr);
      continue;
    }
    const start = rng.int(0, gvlIds.length - 1);
    const span = gvlIds.slice(start, start + rng.int(1, 80));
    for (const id of span) {
      if (rng.chance(0.8)) model.publisherRestrictions.add(id, pr);
    }
  }
}

function segmentNames(tcString) {
  const names = ['core', 'vendorsDisclosed', 'vendorsAllowed', 'publisherTC'];
  return tcString.split('.').map((seg, i) => {
    if (i === 0) return 'core';
    return names[parseInt(Base64Url.decode(seg.charAt(0)).slice(0, 3), 2)];
  });
}

function ids(vector) {
  const out = [];
  vector.forEach((has, id) => { if (has) out.push(id); });
  return out;
}

// Compact "1-5,8,10-12" notation keeps the committed JSON small and diffable.
function runs(list) {
  const parts = [];
  for (let i = 0; i < list.length;) {
    let j = i;
    while (j + 1 < list.length && list[j + 1] === list[j] + 1) j++;
    parts.push(i === j ? `${list[i]}` : `${list[i]}-${list[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function isRangeAt(segment, offset) {
  return Base64Url.decode(segment).charAt(offset + 16) === '1';
}

function report(tcString) {
  const m = TCString.decode(tcString);
  const segments = segmentNames(tcString);
  const parts = tcString.split('.');
  // the vendor consent section starts right after the fixed-size core fields
  const vcOffset = 213;
  const encodings = {
    vendorConsents: isRangeAt(parts[0], vcOffset) ? 'range' : 'bitfield',
    vendorLegitimateInterests:
      isRangeAt(parts[0], vcOffset + m.vendorConsents.bitLength) ? 'range' : 'bitfield',
  };
  segments.forEach((name, i) => {
    if (name === 'vendorsDisclosed' || name === 'vendorsAllowed') {
      encodings[name] = isRangeAt(parts[i], 3) ? 'range' : 'bitfield';
    }
  });
  const restrictions = m.publisherRestrictions.getRestrictions().map((pr) => ({
    purposeId: pr.purposeId,
    restrictionType: pr.restrictionType,
    vendors: runs(m.publisherRestrictions.getVendors(pr)),
  }));
  return {
    tcString,
    segments,
    encodings,
    fields: {
      version: m.version,
      created: m.created.getTime(),
      lastUpdated: m.lastUpdated.getTime(),
      cmpId: m.cmpId,
      cmpVersion: m.cmpVersion,
      consentScreen: m.consentScreen,
      consentLanguage: m.consentLanguage,
      vendorListVersion: m.vendorListVersion,
      policyVersion: m.policyVersion,
      isServiceSpecific: m.isServiceSpecific,
      useNonStandardStacks: m.useNonStandardStacks,
      specialFeatureOptins: ids(m.specialFeatureOptins),
      purposeConsents: ids(m.purposeConsents),
      purposeLegitimateInterests: ids(m.purposeLegitimateInterests),
      purposeOneTreatment: m.purposeOneTreatment,
      publisherCountryCode: m.publisherCountryCode,
      vendorConsents: runs(ids(m.vendorConsents)),
      vendorLegitimateInterests: runs(ids(m.vendorLegitimateInterests)),
      publisherRestrictions: restrictions,
      vendorsDisclosed: runs(ids(m.vendorsDisclosed)),
      vendorsAllowed: runs(ids(m.vendorsAllowed)),
      publisherConsents: ids(m.publisherConsents),
      publisherLegitimateInterests: ids(m.publisherLegitimateInterests),
      numCustomPurposes: m.numCustomPurposes,
      publisherCustomConsents: ids(m.publisherCustomConsents),
      publisherCustomLegitimateInterests: ids(m.publisherCustomLegitimateInterests),
    },
  };
}

async function makeVector(rng) {
  const gvl = new GVL(buildVendorList(rng));
  const lang = rng.pick(LANGUAGES);
  await gvl.changeLanguage(lang);
  const gvlIds = Object.keys(gvl.vendors).map(Number).sort((x, y) => x - y);

  const model = new TCModel(gvl);
  model.cmpId = rng.pick([2, 3, 10, 28, 300, 1000, 4095, rng.int(2, 4095)]);
  model.cmpVersion = rng.int(0, 4095);
  model.consentScreen = rng.int(0, 63);
  const created = randomDate(rng);
  model.created = created;
  model.lastUpdated = rng.chance(0.3) ? created : randomDate(rng);
  model.publisherCountryCode = letters(rng);
  model.isServiceSpecific = rng.chance(0.5);
  model.useNonStandardStacks = rng.chance(0.2);
  model.purposeOneTreatment = rng.chance(0.2);
  model.supportOOB = rng.chance(0.7);
  model.specialFeatureOptins.set(rng.subset(1, 12, rng.next()));
  model.purposeConsents.set(rng.subset(1, 24, rng.next()));
  model.purposeLegitimateInterests.set(rng.subset(1, 24, rng.next()));
  model.vendorConsents.set(chooseVendors(rng, gvlIds));
  model.vendorLegitimateInterests.set(chooseVendors(rng, gvlIds));
  model.vendorsAllowed.set(rng.chance(0.5) ? chooseVendors(rng, gvlIds) : []);
  addRestrictions(rng, model, gvlIds);
  model.publisherConsents.set(rng.subset(1, 24, rng.next()));
  model.publisherLegitimateInterests.set(rng.subset(1, 24, rng.next()));
  const numCustom = rng.pick([0, 0, 1, 3, 8, 20, 63]);
  model.numCustomPurposes = numCustom;
  if (numCustom > 0) {
    model.publisherCustomConsents.set(rng.subset(1, numCustom, rng.next()));
    model.publisherCustomLegitimateInterests.set(rng.subset(1, numCustom, rng.next()));
  }

  const mode = rng.pick(['default', 'default', 'forVendors', 'coreOnly', 'explicit']);
  let options;
  if (mode === 'forVendors') options = { isForVendors: true };
  else if (mode === 'coreOnly') options = { segments: ['core'] };
  else if (mode === 'explicit') {
    options = { segments: ['core', 'vendorsDisclosed', 'vendorsAllowed', 'publisherTC']
      .filter((s, i) => i === 0 || rng.chance(0.5)) };
  }
  return report(TCString.encode(model, options));
}

// Vendor sets placed right around the point where the library switches between
// bitfield and range encoding, so the Python encoder's mirror of that choice is pinned
// down exactly rather than only on average.
function boundarySets() {
  const sets = [];
  for (const max of [44, 45, 46, 47, 50, 60, 62, 64, 100, 333, 700]) {
    const t = Math.floor((max + 4) / 16);
    for (const k of [t - 1, t, t + 1]) {
      if (k >= 1) sets.push(Array.from({ length: k }, (_, i) => max - 2 * i));
    }
    const n = Math.floor((max + 4) / 33);
    for (const k of [n - 1, n, n + 1]) {
      if (k >= 1) sets.push(Array.from({ length: k }, (_, i) => [max - 3 * i - 1, max - 3 * i]).flat());
    }
  }
  return sets;
}

async function makeBoundaryVector(rng, consents, legInt) {
  const vendors = {};
  for (let id = 1; id <= 700; id++) {
    vendors[id] = {
      id, name: `vendor ${id}`, purposes: [1, 2], legIntPurposes: [3], flexiblePurposes: [],
      specialPurposes: [], features: [], specialFeatures: [],
      policyUrl: 'https://example.invalid/privacy',
    };
  }
  const gvl = new GVL({
    gvlSpecificationVersion: 3, vendorListVersion: rng.int(1, 4095), tcfPolicyVersion: 4,
    lastUpdated: '2024-01-01T00:00:00Z', purposes: PURPOSES, specialPurposes: SPECIAL_PURPOSES,
    features: FEATURES, specialFeatures: SPECIAL_FEATURES, stacks: {}, vendors,
  });
  const model = new TCModel(gvl);
  model.cmpId = rng.int(2, 4095);
  model.created = randomDate(rng);
  model.lastUpdated = randomDate(rng);
  model.vendorConsents.set(consents);
  model.vendorLegitimateInterests.set(legInt);
  return report(TCString.encode(model, { segments: ['core'] }));
}

// Named scenarios for the consent mapping and the vendor gate (API.md, Consent and Data
// map): a publisher TC segment that narrows or widens what the core segment consents to,
// one that only has legitimate-interest transparency or custom purposes, and vendors with
// consent, with legitimate interest only, or only disclosed. Appended after the random and
// boundary vectors, with no draw from the shared PRNG, so those stay byte for byte the same.
const SCENARIOS = [
  {
    scenario: 'publisher_narrows',
    purposeConsents: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], specialFeatureOptins: [1],
    publisherConsents: [1, 8, 9], vendorConsents: [2, 7], vendorLegitimateInterests: [3],
    segments: ['core', 'vendorsDisclosed', 'publisherTC'],
  },
  {
    scenario: 'publisher_widens',
    purposeConsents: [], specialFeatureOptins: [],
    publisherConsents: [1, 3, 4, 5, 6], vendorConsents: [3], vendorLegitimateInterests: [2],
    segments: ['core', 'publisherTC'],
  },
  {
    scenario: 'publisher_transparency_only',
    purposeConsents: [1, 3, 4, 5, 6, 8, 9], specialFeatureOptins: [1],
    publisherConsents: [], publisherLegitimateInterests: [1, 3, 4, 5, 6, 8, 9],
    vendorConsents: [2], vendorLegitimateInterests: [], segments: ['core', 'publisherTC'],
  },
  {
    scenario: 'publisher_custom_only',
    purposeConsents: [1, 3, 4, 5, 6, 8, 9], specialFeatureOptins: [],
    publisherConsents: [], numCustomPurposes: 3, publisherCustomConsents: [1, 2, 3],
    vendorConsents: [], vendorLegitimateInterests: [2], segments: ['core', 'publisherTC'],
  },
  {
    scenario: 'core_only',
    purposeConsents: [1, 3, 4], specialFeatureOptins: [],
    publisherConsents: [1, 5, 6], vendorConsents: [], vendorLegitimateInterests: [2, 7],
    segments: ['core', 'vendorsDisclosed'],
  },
];

async function makeScenarioVector(index, spec) {
  const vendors = {};
  for (let id = 1; id <= 12; id++) {
    vendors[id] = {
      id, name: `vendor ${id}`, purposes: [1, 3, 4, 5, 6, 8, 9], legIntPurposes: [2, 7],
      flexiblePurposes: [], specialPurposes: [], features: [], specialFeatures: [1],
      policyUrl: 'https://example.invalid/privacy',
    };
  }
  const gvl = new GVL({
    gvlSpecificationVersion: 3, vendorListVersion: 100 + index, tcfPolicyVersion: 4,
    lastUpdated: '2024-01-01T00:00:00Z', purposes: PURPOSES, specialPurposes: SPECIAL_PURPOSES,
    features: FEATURES, specialFeatures: SPECIAL_FEATURES, stacks: {}, vendors,
  });
  await gvl.changeLanguage('EN');
  const model = new TCModel(gvl);
  model.cmpId = 300;
  model.cmpVersion = 1;
  model.created = new Date(Date.UTC(2025, 0, 15, 12, 0, 0));
  model.lastUpdated = new Date(Date.UTC(2025, 0, 15, 12, 0, 0));
  model.publisherCountryCode = 'DE';
  model.purposeConsents.set(spec.purposeConsents);
  model.specialFeatureOptins.set(spec.specialFeatureOptins);
  model.vendorConsents.set(spec.vendorConsents);
  model.vendorLegitimateInterests.set(spec.vendorLegitimateInterests);
  model.publisherConsents.set(spec.publisherConsents);
  model.publisherLegitimateInterests.set(spec.publisherLegitimateInterests || []);
  model.numCustomPurposes = spec.numCustomPurposes || 0;
  model.publisherCustomConsents.set(spec.publisherCustomConsents || []);
  return {
    scenario: spec.scenario,
    ...report(TCString.encode(model, { segments: spec.segments })),
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const rng = makeRng(args.seed);
  const vectors = [];
  for (let i = 0; i < args.count; i++) vectors.push(await makeVector(rng));
  const edges = boundarySets();
  for (let i = 0; i < edges.length; i++) {
    vectors.push(await makeBoundaryVector(rng, edges[i], edges[(i + 7) % edges.length]));
  }
  for (let i = 0; i < SCENARIOS.length; i++) {
    vectors.push(await makeScenarioVector(i, SCENARIOS[i]));
  }
  const meta = {
    generator: 'tests/consent/tcf/make_vectors.mjs',
    library: `@iabtcf/core@${LIB_VERSION}`,
    seed: args.seed,
    count: vectors.length,
    notes: 'vendor id lists use "a-b,c" run notation; dates are epoch milliseconds',
  };
  const body = vectors.map((v) => JSON.stringify(v)).join(',\n');
  writeFileSync(args.out, `{"meta": ${JSON.stringify(meta)},\n"vectors": [\n${body}\n]}\n`);
}

await main();
