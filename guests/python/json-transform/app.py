"""`json-transform`: filters, projects, sorts and limits a list of JSON
records (world `pure`). The same query language as the Rust guest."""

import functools
import json

import wit_world
from componentize_py_types import Err
from wit_world.exports import tool

SCHEMA = json.dumps({
    "type": "object",
    "required": ["records"],
    "properties": {
        "records": {"type": "array", "items": {"type": "object"}},
        "where": {"type": "object", "required": ["field", "op"]},
        "select": {"type": "array", "items": {"type": "string"}},
        "sort_by": {"type": "string"},
        "descending": {"type": "boolean"},
        "limit": {"type": "integer", "minimum": 0},
    },
})
OPS = ("eq", "ne", "gt", "ge", "lt", "le", "contains", "exists")
MISSING = object()


def invalid(message: str) -> Err:
    return Err(tool.Error_InvalidInput(message))


def rank(value) -> int:
    if value is MISSING:
        return 0
    if value is None:
        return 1
    if isinstance(value, bool):
        return 2
    if isinstance(value, (int, float)):
        return 3
    if isinstance(value, str):
        return 4
    return 5


def compare(a, b) -> int:
    ra, rb = rank(a), rank(b)
    if ra == rb and ra in (2, 3, 4):
        return (a > b) - (a < b)
    return (ra > rb) - (ra < rb)


class Filter:
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise invalid("`where` must be an object")
        self.field = spec.get("field")
        self.op = spec.get("op")
        self.value = spec.get("value", MISSING)
        if not isinstance(self.field, str):
            raise invalid("`where.field` must be a string")
        if not isinstance(self.op, str):
            raise invalid("`where.op` must be a string")
        if self.op not in OPS:
            raise invalid(f'unknown `where.op` "{self.op}": use eq, ne, gt, ge, lt, le, contains or exists')
        if self.op != "exists" and self.value is MISSING:
            raise invalid(f'`where.op` "{self.op}" needs a `where.value`')

    def matches(self, record) -> bool:
        actual = record.get(self.field, MISSING)
        present = actual is not MISSING
        if self.op == "exists":
            return present
        if self.op in ("eq", "ne"):
            same = present and type(actual) is type(self.value) and actual == self.value
            if present and rank(actual) == 3 and rank(self.value) == 3:
                same = actual == self.value
            return same if self.op == "eq" else not same
        if self.op == "contains":
            if isinstance(actual, str) and isinstance(self.value, str):
                return self.value in actual
            return isinstance(actual, list) and self.value in actual
        order = compare(actual, self.value)
        return present and {"gt": order > 0, "ge": order >= 0, "lt": order < 0, "le": order <= 0}[self.op]


def transform(query):
    if not isinstance(query, dict) or not isinstance(query.get("records"), list):
        raise invalid("`records` must be an array of objects")
    keep = Filter(query["where"]) if "where" in query else None
    matched = []
    for index, record in enumerate(query["records"]):
        if not isinstance(record, dict):
            raise invalid(f"records[{index}] is not an object")
        if keep is None or keep.matches(record):
            matched.append(record)
    if "sort_by" in query:
        field = query["sort_by"]
        if not isinstance(field, str):
            raise invalid("`sort_by` must be a field name")
        matched.sort(key=functools.cmp_to_key(lambda a, b: compare(a.get(field, MISSING), b.get(field, MISSING))))
        if query.get("descending") is True:
            matched.reverse()
    total = len(matched)
    limit = query.get("limit", total)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise invalid("`limit` must be a non-negative integer")
    select = query.get("select")
    if select is not None and (not isinstance(select, list) or not all(isinstance(f, str) for f in select)):
        raise invalid("`select` must be an array of field names")
    records = [
        record if select is None else {f: record[f] for f in select if f in record}
        for record in matched[:limit]
    ]
    return {"count": len(records), "matched": total, "records": records}


class Tool(wit_world.exports.Tool):
    def describe(self) -> tool.Descriptor:
        return tool.Descriptor(
            name="json-transform",
            version="0.1.0",
            description="Filters, projects, sorts and limits a list of JSON records.",
            input_schema=SCHEMA,
        )

    def call(self, input: str) -> str:
        try:
            query = json.loads(input)
        except ValueError as e:
            raise invalid(f"input is not JSON: {e}")
        return json.dumps(transform(query), separators=(",", ":"), ensure_ascii=False)
