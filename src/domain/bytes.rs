//! protobuf `bytes` in JSON: what ZITADEL's APIs send (metadata values, keys).

use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
use base64::{alphabet, Engine};

/// Decodes base64 as protojson reads `bytes`: the standard or the URL-safe alphabet, padded or
/// not; `None` for anything else.
pub fn decode_base64(raw: &str) -> Option<Vec<u8>> {
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(raw)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(raw))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_alphabets_with_or_without_padding() {
        let want = br#"{"k":"~~~"}"#.to_vec();
        for text in ["eyJrIjoifn5+In0=", "eyJrIjoifn5+In0", "eyJrIjoifn5-In0=", "eyJrIjoifn5-In0"] {
            assert_eq!(decode_base64(text), Some(want.clone()), "{text}");
        }
        // Fewer `=` than canonical are read too, as protojson does.
        for text in ["ImRlIg==", "ImRlIg=", "ImRlIg"] {
            assert_eq!(decode_base64(text), Some(br#""de""#.to_vec()), "{text}");
        }
        for bad in ["not base64!", "a", "ImRlIg==="] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }
}
