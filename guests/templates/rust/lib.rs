//! `{{name}}`: an airlock tool (world `{{world}}`). Input `{"name": "..."}`,
//! output `{"greeting": "Hello, ...!"}`.

wit_bindgen::generate!({ path: "wit", world: "{{world}}" });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};
use serde_json::{Value, json};

struct Tool;

impl Guest for Tool {
    fn describe() -> Descriptor {
        Descriptor {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Greets whoever the input names.".into(),
            input_schema: r#"{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}"#.into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let query: Value = serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
        let name = query
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::InvalidInput(r#"give {"name": "..."}"#.into()))?;
        Ok(json!({ "greeting": format!("Hello, {name}!") }).to_string())
    }
}

export!(Tool);
