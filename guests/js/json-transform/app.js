// `json-transform`: filters, projects, sorts and limits a list of JSON
// records (world `pure`). The same query language as the Rust guest.

const SCHEMA = JSON.stringify({
  type: "object",
  required: ["records"],
  properties: {
    records: { type: "array", items: { type: "object" } },
    where: { type: "object", required: ["field", "op"] },
    select: { type: "array", items: { type: "string" } },
    sort_by: { type: "string" },
    descending: { type: "boolean" },
    limit: { type: "integer", minimum: 0 },
  },
});
const OPS = ["eq", "ne", "gt", "ge", "lt", "le", "contains", "exists"];

function invalid(message) {
  return { tag: "invalid-input", val: message };
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

function rank(v) {
  if (v === undefined) return 0;
  if (v === null) return 1;
  if (typeof v === "boolean") return 2;
  if (typeof v === "number") return 3;
  if (typeof v === "string") return 4;
  return 5;
}

// Strings compare by code point, as Rust's `str` ordering does.
function compareStrings(a, b) {
  const x = Array.from(a), y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return Math.sign(d);
  }
  return Math.sign(x.length - y.length);
}

function compare(a, b) {
  const ra = rank(a), rb = rank(b);
  if (ra !== rb) return Math.sign(ra - rb);
  if (ra === 4) return compareStrings(a, b);
  if (ra === 2 || ra === 3) return a === b ? 0 : a < b ? -1 : 1;
  return 0;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function parseFilter(spec) {
  if (!isObject(spec)) throw invalid("`where` must be an object");
  const { field, op } = spec;
  if (typeof field !== "string") throw invalid("`where.field` must be a string");
  if (typeof op !== "string") throw invalid("`where.op` must be a string");
  if (!OPS.includes(op)) {
    throw invalid(`unknown \`where.op\` "${op}": use eq, ne, gt, ge, lt, le, contains or exists`);
  }
  if (op !== "exists" && !has(spec, "value")) throw invalid(`\`where.op\` "${op}" needs a \`where.value\``);
  const value = spec.value;
  return (record) => {
    const present = has(record, field);
    const actual = present ? record[field] : undefined;
    const order = () => compare(actual, value);
    switch (op) {
      case "exists": return present;
      case "eq": return present && same(actual, value);
      case "ne": return !(present && same(actual, value));
      case "gt": return present && order() > 0;
      case "ge": return present && order() >= 0;
      case "lt": return present && order() < 0;
      case "le": return present && order() <= 0;
      default:
        if (typeof actual === "string" && typeof value === "string") return actual.includes(value);
        return Array.isArray(actual) && actual.some((item) => same(item, value));
    }
  };
}

function transform(query) {
  if (!isObject(query) || !Array.isArray(query.records)) throw invalid("`records` must be an array of objects");
  const keep = has(query, "where") ? parseFilter(query.where) : () => true;
  const matched = [];
  query.records.forEach((record, index) => {
    if (!isObject(record)) throw invalid(`records[${index}] is not an object`);
    if (keep(record)) matched.push(record);
  });
  if (has(query, "sort_by")) {
    const field = query.sort_by;
    if (typeof field !== "string") throw invalid("`sort_by` must be a field name");
    const get = (r) => (has(r, field) ? r[field] : undefined);
    matched.sort((a, b) => compare(get(a), get(b)));
    if (query.descending === true) matched.reverse();
  }
  const total = matched.length;
  const limit = has(query, "limit") ? query.limit : total;
  if (!Number.isInteger(limit) || limit < 0) throw invalid("`limit` must be a non-negative integer");
  const select = query.select;
  if (select !== undefined && (!Array.isArray(select) || !select.every((f) => typeof f === "string"))) {
    throw invalid("`select` must be an array of field names");
  }
  const records = matched.slice(0, limit).map((record) => {
    if (select === undefined) return record;
    const out = {};
    for (const f of select) if (has(record, f)) out[f] = record[f];
    return out;
  });
  return { count: records.length, matched: total, records };
}

export const tool = {
  describe() {
    return {
      name: "json-transform",
      version: "0.1.0",
      description: "Filters, projects, sorts and limits a list of JSON records.",
      inputSchema: SCHEMA,
    };
  },

  call(input) {
    let query;
    try {
      query = JSON.parse(input);
    } catch (e) {
      throw invalid(`input is not JSON: ${e.message}`);
    }
    return JSON.stringify(transform(query));
  },
};
