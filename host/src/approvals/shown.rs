//! What a person is shown of the input an approval binds: all of it, as
//! text that hides nothing, and its SHA-256 to compare by. Every place a
//! person decides (the client's question, the console, `approvals show`,
//! the terminal prompt) shows it this way.

use super::model::ApprovalRequest;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a person is shown of `request`'s input: all of it, as
/// [`readable_input`] writes it; for an approval from before airlock kept
/// inputs, which has only the shortened summary, a note saying so and the
/// summary (such an approval is not offered for "allow" where a person
/// reads it).
pub fn shown_input(request: &ApprovalRequest) -> String {
    if request.input.is_empty() {
        return format!(
            "(not kept: this approval predates full inputs) {}",
            request.input_summary
        );
    }
    readable_input(&request.input)
}

/// The input as a person reads it: pretty-printed JSON in which every
/// character that renders as nothing or moves other text (controls,
/// bidirectional overrides, zero-width and other format characters,
/// variation selectors, tag characters) is written as a `\u` escape. It
/// is still JSON, and means the same value; nothing in it is invisible.
/// Text that is not JSON (never admitted, but kept rows are read back) is
/// escaped the same way.
pub fn readable_input(input: &str) -> String {
    let text = serde_json::from_str::<Value>(input)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| input.to_string());
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c != '\n' && hidden(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                shown.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            shown.push(c);
        }
    }
    shown
}

/// SHA-256 of the input as the tool receives it (hex): the figure a
/// question that cannot show the whole input gives, and the console and
/// `approvals show` print beside it.
pub fn input_sha256(input: &str) -> String {
    hex::encode(Sha256::digest(input.as_bytes()))
}

/// Whether `c` would not show as itself: a control character, or one of
/// Unicode's default-ignorable and bidirectional formatting characters.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_input_is_shown_and_nothing_in_it_is_invisible() {
        let tail = "&then=DELETE-ALL-RECORDS&confirm=yes";
        let url = format!("http://svc.test/reports/weekly-summary-readonly?{tail}");
        let input = serde_json::json!({ "url": url }).to_string();
        let shown = readable_input(&input);
        assert!(shown.contains(tail), "{shown}");

        // Right-to-left override, zero-width space, a tag character and a
        // C1 control: each escaped, and the text is still the same JSON.
        let sneaky = "{\"cmd\":\"ls \u{202E}fdp.exe\u{200B}\u{E0041}\u{0085}\",\"é\":\"ünï\"}";
        let shown = readable_input(sneaky);
        for escaped in ["\\u202e", "\\u200b", "\\udb40\\udc41", "\\u0085"] {
            assert!(shown.contains(escaped), "{escaped} in {shown}");
        }
        assert!(!shown.chars().any(|c| c != '\n' && hidden(c)), "{shown:?}");
        assert!(shown.contains("ünï"), "ordinary letters stay: {shown}");
        let back: Value = serde_json::from_str(&shown).expect("still JSON");
        assert_eq!(back, serde_json::from_str::<Value>(sneaky).expect("JSON"));
    }

    #[test]
    fn the_digest_is_of_the_input_as_the_tool_gets_it() {
        assert_eq!(
            input_sha256("{}"),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_ne!(input_sha256("{}"), input_sha256("{ }"));
    }
}
