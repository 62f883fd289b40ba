//! A call's arguments against its tool's input schema, before anything
//! runs: an object, every `required` property present, and each declared
//! property of the JSON type its schema names. A mismatch is a malformed
//! call (a JSON-RPC error), not a tool failure. Deeper constraints
//! (formats, ranges, patterns) are the tool's own to check: it answers
//! them with `invalid-input`.

use serde_json::{Map, Value};

/// Why the arguments do not fit the schema, for the caller to fix.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("arguments for `{tool}` do not match its input schema: {problem}")]
pub struct Mismatch {
    tool: String,
    problem: String,
}

/// Whether `value` is of JSON Schema type `name`.
fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        // A type this check does not know is left to the tool.
        _ => true,
    }
}

/// Whether `value` fits a schema's `type` (a name or a list of names).
fn fits(value: &Value, schema: &Value) -> Option<String> {
    let wanted: Vec<&str> = match schema.get("type") {
        Some(Value::String(one)) => vec![one],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    if wanted.iter().any(|t| is_type(value, t)) {
        None
    } else {
        Some(wanted.join(" or "))
    }
}

/// Checks `arguments` against `schema` (the tool's `inputSchema`).
pub(crate) fn check(
    tool: &str,
    schema: &Value,
    arguments: &Map<String, Value>,
) -> Result<(), Mismatch> {
    let mismatch = |problem: String| Mismatch {
        tool: tool.to_string(),
        problem,
    };
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !arguments.contains_key(name) {
                return Err(mismatch(format!("`{name}` is required")));
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, value) in arguments {
        match properties.and_then(|p| p.get(name)) {
            Some(property) => {
                if let Some(wanted) = fits(value, property) {
                    return Err(mismatch(format!("`{name}` must be {wanted}")));
                }
            }
            None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                return Err(mismatch(format!("`{name}` is not a property it takes")));
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("an object"),
        }
    }

    #[test]
    fn arguments_are_checked_against_types_and_required() {
        let schema = json!({
            "type": "object",
            "properties": {
                "url": {"type": "string"},
                "n": {"type": "integer"},
                "tags": {"type": ["array", "null"]}
            },
            "required": ["url"],
            "additionalProperties": false
        });
        let cases = [
            (json!({"url": "x"}), None),
            (json!({"url": "x", "n": 3, "tags": null}), None),
            (json!({"url": "x", "tags": ["a"]}), None),
            (json!({}), Some("`url` is required")),
            (json!({"url": 1}), Some("`url` must be string")),
            (json!({"url": "x", "n": 1.5}), Some("`n` must be integer")),
            (
                json!({"url": "x", "tags": "a"}),
                Some("`tags` must be array or null"),
            ),
            (
                json!({"url": "x", "extra": 1}),
                Some("`extra` is not a property"),
            ),
        ];
        for (arguments, expected) in cases {
            let result = check("fetch", &schema, &args(arguments.clone()));
            match expected {
                None => assert_eq!(result, Ok(()), "{arguments}"),
                Some(fragment) => {
                    let message = result.expect_err("a mismatch").to_string();
                    assert!(message.contains(fragment), "{arguments}: {message}");
                    assert!(message.contains("`fetch`"), "{message}");
                }
            }
        }
    }

    #[test]
    fn a_schema_without_properties_takes_any_object() {
        let schema = json!({"type": "object"});
        assert_eq!(check("t", &schema, &args(json!({"a": [1]}))), Ok(()));
    }
}
