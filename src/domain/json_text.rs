//! JSON text that strict readers refuse but JSON's grammar allows: a `\uXXXX` escape of a
//! surrogate that is not half of a pair (RFC 8259 §7 lets an escape name any UTF-16 code unit;
//! `JSON.stringify` of a string cut inside an emoji writes one, and so does Python's `json`).
//! serde_json refuses such text, as it refuses bytes that are not UTF-8; Go's `encoding/json`,
//! which ZITADEL and its targets use, reads both as U+FFFD.

use std::borrow::Cow;

use serde_json::Value;

fn is_surrogate(unit: u16) -> bool {
    (0xD800..0xE000).contains(&unit)
}

/// `text` with each `\uXXXX` escape for which `each` gives a replacement replaced by it. `each`
/// sees every escape's code unit except the two halves of an escaped surrogate pair (kept as
/// they are); escaped backslashes are not escapes. None when nothing was replaced.
pub fn rewrite_unicode_escapes(text: &str, mut each: impl FnMut(u16) -> Option<String>) -> Option<String> {
    let hex_at = |i: usize| -> Option<u16> {
        let digits = text.get(i..i + 4)?;
        digits.bytes().all(|b| b.is_ascii_hexdigit()).then(|| u16::from_str_radix(digits, 16).ok()).flatten()
    };
    let is_high = |u: u16| (0xD800..0xDC00).contains(&u);
    let is_low = |u: u16| (0xDC00..0xE000).contains(&u);
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match (bytes.get(i + 1), hex_at(i + 2)) {
            (Some(b'u'), Some(unit))
                if is_high(unit) && text.get(i + 6..i + 8) == Some("\\u") && hex_at(i + 8).is_some_and(is_low) =>
            {
                i += 12;
            }
            (Some(b'u'), Some(unit)) => {
                if let Some(replacement) = each(unit) {
                    out.push_str(&text[copied..i]);
                    out.push_str(&replacement);
                    copied = i + 6;
                }
                i += 6;
            }
            _ => i += 2,
        }
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// JSON text with each escape of a lone surrogate replaced by `\ufffd`.
pub fn without_lone_surrogates(text: &str) -> Cow<'_, str> {
    match rewrite_unicode_escapes(text, |unit| is_surrogate(unit).then(|| "\\ufffd".to_string())) {
        Some(fixed) => Cow::Owned(fixed),
        None => Cow::Borrowed(text),
    }
}

/// A JSON body read as Go's `encoding/json` reads it: bytes that are not UTF-8 and escapes of
/// lone surrogates become U+FFFD; anything else malformed is still refused.
pub fn from_slice_as_go(body: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice(body).or_else(|strict| {
        let text = utf8_as_go(body);
        match without_lone_surrogates(&text) {
            Cow::Borrowed(_) if matches!(text, Cow::Borrowed(_)) => Err(strict),
            fixed => serde_json::from_str(&fixed),
        }
    })
}

/// Bytes as text, each byte that is not part of valid UTF-8 one U+FFFD (Go decodes them one at
/// a time: an emoji cut after three of its bytes is three, where `from_utf8_lossy` makes one).
fn utf8_as_go(bytes: &[u8]) -> Cow<'_, str> {
    let mut chunks = bytes.utf8_chunks();
    match chunks.next() {
        None => Cow::Borrowed(""),
        Some(first) if first.invalid().is_empty() => Cow::Borrowed(first.valid()),
        Some(first) => {
            let mut text = String::with_capacity(bytes.len() + 16);
            for chunk in std::iter::once(first).chain(chunks) {
                text.push_str(chunk.valid());
                text.extend(std::iter::repeat_n('\u{FFFD}', chunk.invalid().len()));
            }
            Cow::Owned(text)
        }
    }
}

/// The code point that stands for a lone surrogate in [`mark_lone_surrogates`]'s text: a
/// noncharacter, followed by the surrogate's four hex digits.
pub const MARK: char = '\u{FDD0}';

/// JSON text in which each escape of a lone surrogate is written as [`MARK`] and the surrogate's
/// four hex digits (and a [`MARK`] the text holds, literal or escaped, as [`MARK`] and `FDD0`),
/// so that a strict reader takes it and [`unmark`] restores every code unit exactly. None when the
/// text holds no lone surrogate.
pub fn mark_lone_surrogates(text: &str) -> Option<String> {
    let mut lone = false;
    let escaped_mark = || format!("\\u{:04x}FDD0", MARK as u32);
    let marked = rewrite_unicode_escapes(text, |unit| {
        if is_surrogate(unit) {
            lone = true;
            Some(format!("\\u{:04x}{unit:04X}", MARK as u32))
        } else {
            (unit == MARK as u16).then(escaped_mark)
        }
    })?;
    lone.then(|| marked.replace(MARK, &escaped_mark()))
}

/// A string read from [`mark_lone_surrogates`]'s text, as UTF-16 code units.
pub fn unmark(text: &str) -> Vec<u16> {
    let mut units = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == MARK {
            let digits: String = chars.by_ref().take(4).collect();
            units.push(u16::from_str_radix(&digits, 16).unwrap_or(0xFFFD));
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogate_escapes_become_replacement_characters() {
        let cases = [
            (r#""a\ud800b""#, r#""a\ufffdb""#),
            (r#""\udc00""#, r#""\ufffd""#),
            (r#"["\ud83d\ude00", "\ud83d"]"#, r#"["\ud83d\ude00", "\ufffd"]"#),
            (r#""\\ud800""#, r#""\\ud800""#),
            (r#""\\\ud800""#, r#""\\\ufffd""#),
            (r#"{"k":"\udbff\u0041"}"#, r#"{"k":"\ufffd\u0041"}"#),
            (r#""\u00e9 plain""#, r#""\u00e9 plain""#),
        ];
        for (input, expected) in cases {
            assert_eq!(without_lone_surrogates(input), expected, "{input}");
            assert!(serde_json::from_str::<Value>(&without_lone_surrogates(input)).is_ok(), "{input}");
        }
    }

    #[test]
    fn bodies_read_as_go_reads_them() {
        let read = |body: &[u8]| from_slice_as_go(body).ok();
        assert_eq!(read(br#"{"m":"J\ud83d x"}"#), Some(serde_json::json!({"m": "J\u{FFFD} x"})));
        assert_eq!(read(b"{\"m\":\"a\xff\xfeb\"}"), Some(serde_json::json!({"m": "a\u{FFFD}\u{FFFD}b"})));
        // One per byte, as Go: an emoji cut after three of its four bytes.
        assert_eq!(
            read(b"{\"m\":\"cut \xf0\x9f\x98\"}"),
            Some(serde_json::json!({"m": "cut \u{FFFD}\u{FFFD}\u{FFFD}"}))
        );
        assert_eq!(
            read(b"{\"m\":\"\xf0\x9f\x98A\xc3\"}"),
            Some(serde_json::json!({"m": "\u{FFFD}\u{FFFD}\u{FFFD}A\u{FFFD}"}))
        );
        assert_eq!(read(br#"{"m":"\u00e9"}"#), Some(serde_json::json!({"m": "é"})));
        // Still refused: what is malformed for Go too.
        assert_eq!(read(br#"{"m":"\ud83d"#), None);
        assert_eq!(read(b"{\"m\":1,}"), None);
        assert_eq!(read(b"\xff{}"), None);
    }

    #[test]
    fn marked_text_restores_every_code_unit() {
        let units = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        // (JSON text, the code units of the string it holds)
        let cases: [(&str, Vec<u16>); 6] = [
            (r#""\ud800""#, vec![0xD800]),
            (r#""a\udc00\ud83d\ude00b""#, [vec![0x61, 0xDC00], units("😀b")].concat()),
            (r#""\ud83d\u0041""#, vec![0xD83D, 0x41]),
            ("\"\u{FDD0}\\ud800\"", vec![0xFDD0, 0xD800]),
            (r#""\uFDD0\uDBFF\ufdd0""#, vec![0xFDD0, 0xDBFF, 0xFDD0]),
            (r#""\\ud800\udfff""#, [units("\\ud800"), vec![0xDFFF]].concat()),
        ];
        for (text, expected) in cases {
            let marked = mark_lone_surrogates(text).unwrap_or_else(|| panic!("{text}: nothing marked"));
            let read: String = serde_json::from_str(&marked).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(unmark(&read), expected, "{text}");
        }
        assert_eq!(mark_lone_surrogates(r#""\ud83d\ude00 \ufdd0""#), None);
    }
}
