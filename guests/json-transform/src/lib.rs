//! `json-transform`: filter, project, sort and limit a list of JSON records.
//!
//! World `pure`. Input:
//!
//! ```json
//! {"records": [{"name": "a", "age": 3}, ...],
//!  "where": {"field": "age", "op": "gt", "value": 2},
//!  "select": ["name"], "sort_by": "age", "descending": true, "limit": 10}
//! ```
//!
//! Everything but `records` is optional. Output:
//! `{"records": [...], "count": <returned>, "matched": <before limit>}`.

wit_bindgen::generate!({ path: "../../wit", world: "pure" });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;

const SCHEMA: &str = r#"{
  "type": "object",
  "required": ["records"],
  "properties": {
    "records": {"type": "array", "items": {"type": "object"}},
    "where": {"type": "object", "required": ["field", "op"], "properties": {
      "field": {"type": "string"},
      "op": {"enum": ["eq", "ne", "gt", "ge", "lt", "le", "contains", "exists"]},
      "value": {}}},
    "select": {"type": "array", "items": {"type": "string"}},
    "sort_by": {"type": "string"},
    "descending": {"type": "boolean"},
    "limit": {"type": "integer", "minimum": 0}
  }
}"#;

struct JsonTransform;

impl Guest for JsonTransform {
    fn describe() -> Descriptor {
        Descriptor {
            name: "json-transform".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Filters, projects, sorts and limits a list of JSON records.".into(),
            input_schema: SCHEMA.into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let query: Value = serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
        let output = run(&query).map_err(Error::InvalidInput)?;
        Ok(output.to_string())
    }
}

fn run(query: &Value) -> Result<Value, String> {
    let records = query
        .get("records")
        .and_then(Value::as_array)
        .ok_or("`records` must be an array of objects")?;
    let filter = query.get("where").map(Filter::parse).transpose()?;

    let mut matched = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let object = record
            .as_object()
            .ok_or_else(|| format!("records[{index}] is not an object"))?;
        if filter.as_ref().is_none_or(|f| f.matches(object)) {
            matched.push(object);
        }
    }

    if let Some(field) = query.get("sort_by") {
        let field = field.as_str().ok_or("`sort_by` must be a field name")?;
        matched.sort_by(|a, b| compare(a.get(field), b.get(field)));
        if query.get("descending").and_then(Value::as_bool) == Some(true) {
            matched.reverse();
        }
    }

    let total = matched.len();
    let limit = match query.get("limit") {
        None => total,
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("`limit` must be a non-negative integer")?,
    };
    let select = match query.get("select") {
        None => None,
        Some(v) => Some(
            v.as_array()
                .and_then(|fields| fields.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                .ok_or("`select` must be an array of field names")?,
        ),
    };

    let out: Vec<Value> = matched
        .into_iter()
        .take(limit)
        .map(|record| match &select {
            None => Value::Object(record.clone()),
            Some(fields) => Value::Object(
                fields
                    .iter()
                    .filter_map(|f| record.get(*f).map(|v| ((*f).to_string(), v.clone())))
                    .collect(),
            ),
        })
        .collect();
    Ok(json!({ "count": out.len(), "matched": total, "records": out }))
}

struct Filter<'a> {
    field: &'a str,
    op: &'a str,
    value: Option<&'a Value>,
}

impl<'a> Filter<'a> {
    fn parse(spec: &'a Value) -> Result<Self, String> {
        let field = spec
            .get("field")
            .and_then(Value::as_str)
            .ok_or("`where.field` must be a string")?;
        let op = spec
            .get("op")
            .and_then(Value::as_str)
            .ok_or("`where.op` must be a string")?;
        let value = spec.get("value");
        match op {
            "exists" => {}
            "eq" | "ne" | "gt" | "ge" | "lt" | "le" | "contains" if value.is_some() => {}
            "eq" | "ne" | "gt" | "ge" | "lt" | "le" | "contains" => {
                return Err(format!("`where.op` \"{op}\" needs a `where.value`"));
            }
            other => {
                return Err(format!(
                    "unknown `where.op` \"{other}\": use eq, ne, gt, ge, lt, le, contains or exists"
                ));
            }
        }
        Ok(Self { field, op, value })
    }

    fn matches(&self, record: &Map<String, Value>) -> bool {
        let actual = record.get(self.field);
        let ordering = || compare(actual, self.value);
        match self.op {
            "exists" => actual.is_some(),
            "eq" => actual == self.value,
            "ne" => actual != self.value,
            "gt" => actual.is_some() && ordering() == Ordering::Greater,
            "ge" => actual.is_some() && ordering() != Ordering::Less,
            "lt" => actual.is_some() && ordering() == Ordering::Less,
            "le" => actual.is_some() && ordering() != Ordering::Greater,
            "contains" => match (actual, self.value) {
                (Some(Value::String(s)), Some(Value::String(needle))) => {
                    s.contains(needle.as_str())
                }
                (Some(Value::Array(items)), Some(v)) => items.contains(v),
                _ => false,
            },
            _ => false,
        }
    }
}

/// Total order over JSON values: missing < null < bool < number < string < other.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None => 0,
            Some(Value::Null) => 1,
            Some(Value::Bool(_)) => 2,
            Some(Value::Number(_)) => 3,
            Some(Value::String(_)) => 4,
            Some(_) => 5,
        }
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

export!(JsonTransform);
