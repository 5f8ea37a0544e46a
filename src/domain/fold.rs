//! Case-insensitive matching, identical on every database: NFC, then Unicode simple case folding,
//! computed here and stored beside the original (databases fold differently).

use unicode_normalization::UnicodeNormalization;

/// NFC-normalizes and applies simple (one-to-one) case folding.
pub fn fold(s: &str) -> String {
    s.nfc().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    // Characters whose simple fold differs from their lowercase mapping.
    match c {
        'ς' => return 'σ',
        'ϐ' => return 'β',
        'ϑ' => return 'θ',
        'ϕ' => return 'φ',
        'ϖ' => return 'π',
        'ϰ' => return 'κ',
        'ϱ' => return 'ρ',
        'ϵ' => return 'ε',
        'ſ' => return 's',
        'ẛ' => return 'ṡ',
        '\u{0345}' => return 'ι',
        'ẞ' => return 'ß',
        'İ' => return 'İ', // no simple folding (only a full one)
        _ => {}
    }
    // Cherokee folds to upper case.
    if ('\u{AB70}'..='\u{ABBF}').contains(&c) {
        return char::from_u32(c as u32 - 0xAB70 + 0x13A0).unwrap_or(c);
    }
    if ('\u{13F8}'..='\u{13FD}').contains(&c) {
        return char::from_u32(c as u32 - 8).unwrap_or(c);
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c, // multi-char lowercase: full folding only, keep as is
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_unicode_simply() {
        assert_eq!(fold("ÄBC"), fold("äbc"));
        assert_ne!(fold("ß"), fold("SS"));
        assert_eq!(fold("ẞ"), fold("ß"));
        assert_eq!(fold("ΟΔΟΣ"), fold("οδος"));
        // NFC: decomposed a + combining diaeresis equals precomposed ä.
        assert_eq!(fold("a\u{0308}"), fold("Ä"));
    }
}
