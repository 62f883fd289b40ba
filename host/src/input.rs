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
    deserializer.end()?;
    whole_numbers_fit(input)
}

/// A number literal as (significant digits, decimal exponent): two
/// literals of one value, however written (`0.10`, `1e-1`), read the same.
fn normalized(text: &str) -> Option<(String, i64)> {
    let text = text.trim_start_matches('-');
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_matches('0');
    if significant.is_empty() {
        return Some((String::new(), 0));
    }
    let places = i64::try_from(whole.len()).ok()? - i64::try_from(leading).ok()?;
    // An exponent at the edge of i64 has no exact double either way.
    Some((significant.to_string(), exponent.checked_add(places)?))
}

/// Whether float literal `token` is exactly the value the parser gives it
/// (the double's shortest form, however written).
fn exact(token: &str) -> bool {
    let Ok(value) = token.parse::<f64>() else {
        return false;
    };
    normalized(token) == normalized(&format!("{value:e}"))
}

/// Refuses a number literal the parser would round: an integer past what
/// 64 bits hold (read as the nearest float, so neighbours such as
/// `100000000000000000001` and `100000000000000000000` would be approved as
/// one while the tool, which reads the text, sees two), or a float that is
/// not exactly the double it is read as. Runs on text that parsed,
/// so numbers are only ever outside strings.
fn whole_numbers_fit(input: &str) -> Result<(), serde_json::Error> {
    let bytes = input.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            match byte {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if byte == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if byte == b'-' || byte.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
            {
                i += 1;
            }
            let token = &input[start..i];
            let whole = !token.contains(['.', 'e', 'E']);
            if whole && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                return Err(de::Error::custom(format!(
                    "the integer {token} is past what 64 bits hold, so it cannot be approved exactly; send it as a string"
                )));
            }
            if !whole && !exact(token) {
                return Err(de::Error::custom(format!(
                    "the number {token} is not exactly a double (it would be read as {}), so neighbouring values would be approved as one; send it as a string",
                    token
                        .parse::<f64>()
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                )));
            }
            continue;
        }
        i += 1;
    }
    Ok(())
}

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
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
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
            "9007199254740992.0",
            "0.1",
            "0.30000000000000004",
            "-2.5E-3",
            "0.0",
            "1.500000000000000000000",
            "100000000000000000000.0",
            "1e21",
            "1e-300",
            r#"{"id": "100000000000000000001", "n": -12}"#,
        ] {
            assert!(check(good).is_ok(), "{good}");
        }
        for bad in [
            // Neighbours past 2^64 read as one float.
            r#"{"account": 100000000000000000001}"#,
            r#"{"account": 100000000000000000000}"#,
            "[-9223372036854775809]",
            // The same neighbours written as floats.
            "100000000000000000001e0",
            "100000000000000000001.0",
            "0.1000000000000000055511151231257827",
            "9007199254740993.0",
            // Exponents at the edge of i64 (no panic on the way).
            "0.01e-9223372036854775808",
            "1e-9223372036854775808",
        ] {
            let error = check(bad).expect_err(bad).to_string();
            assert!(error.contains("send it as a string"), "{bad}: {error}");
        }
    }
}
