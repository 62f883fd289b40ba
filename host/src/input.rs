//! The input check every invocation passes before admission: JSON, no
//! object with the same key twice, and no number that cannot be held
//! exactly. Parsers disagree about duplicates (serde
//! keeps the last, many tools' parsers the first), so an approval bound to
//! `{"url": B}` could otherwise run a tool that acts on A from
//! `{"url": A, "url": B}`.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Checks that `input` is JSON whose objects have no repeated keys; the
/// error is the parser's (position, not content) or names the repeated key.
pub fn check(input: &str) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(input);
    Unique.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// 2^53: below it, every whole number a float holds is exact.
const EXACT_UP_TO: f64 = 9_007_199_254_740_992.0;

/// Walks any JSON value, refusing a key seen twice in one object.
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        // A whole number this large came from an integer the parser could
        // not hold (past 2^64) or a float past 2^53: neighbours collapse
        // into one value, so an approval of one would cover another, and
        // the tool (which reads the text) could see a different number.
        if value.fract() == 0.0 && value.abs() >= EXACT_UP_TO {
            return Err(de::Error::custom(format!(
                "the number {value:e} is too large to be approved exactly (past 2^53, or an integer past 2^64); send it as a string"
            )));
        }
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items.next_element_seed(Unique)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = entries.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!(
                    "the key `{key}` appears twice in one object; give each key once"
                )));
            }
            entries.next_value_seed(Unique)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        for good in [
            r#"{"a":1,"b":{"a":2}}"#,
            "[1,[2,{}]]",
            r#""s""#,
            "null",
            r#"[{"a":1},{"a":1}]"#,
        ] {
            assert!(check(good).is_ok(), "{good}");
        }
        for (bad, key) in [
            (r#"{"url":"a","url":"b"}"#, "`url`"),
            (r#"{"x":{"k":1,"k":2}}"#, "`k`"),
            (r#"[{"a":1,"b":2,"a":3}]"#, "`a`"),
            // Escapes decode to the same key.
            (r#"{"u":1,"\u0075":2}"#, "`u`"),
        ] {
            let error = check(bad).expect_err(bad).to_string();
            assert!(
                error.contains(key) && error.contains("twice"),
                "{bad}: {error}"
            );
        }
        assert!(check("{").is_err());
        assert!(check("[1] [2]").is_err(), "one value only");
    }

    #[test]
    fn numbers_that_cannot_be_held_exactly_are_refused() {
        for good in [
            "18446744073709551615",
            "-9223372036854775808",
            "9007199254740991.0",
            "0.1",
            "1e-300",
            "123456.75",
        ] {
            assert!(check(good).is_ok(), "{good}");
        }
        for bad in [
            // Neighbours past 2^64 read as one float.
            r#"{"account": 100000000000000000001}"#,
            r#"{"account": 100000000000000000000}"#,
            "9007199254740993.0",
            "1e300",
        ] {
            let error = check(bad).expect_err(bad).to_string();
            assert!(error.contains("send it as a string"), "{bad}: {error}");
        }
    }
}
