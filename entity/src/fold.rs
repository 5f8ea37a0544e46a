//! Case-insensitive matching, identical on every database: NFC, then Unicode simple case folding
//! (CaseFolding.txt status C and S, see `fold_table`), computed here and stored beside the original
//! (`name_folded`), because databases fold differently. The table is pinned to one Unicode version:
//! a newer one changes stored values and needs a migration that re-folds them.

use crate::fold_table::SIMPLE_FOLDING;
use unicode_normalization::UnicodeNormalization;

/// NFC-normalizes and applies simple (one-to-one) case folding.
pub fn fold(s: &str) -> String {
    s.nfc().map(fold_char).collect()
}

/// The simple case folding of one character (itself when the table has no entry).
pub fn fold_char(c: char) -> char {
    match SIMPLE_FOLDING.binary_search_by_key(&c, |&(from, _)| from) {
        Ok(i) => SIMPLE_FOLDING[i].1,
        Err(_) => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Every code point against the Unicode data file itself (parsed here independently of the
    /// generator): listed C/S mappings apply, everything else maps to itself.
    #[test]
    fn every_code_point_folds_as_the_unicode_table_says() {
        let data = include_str!("../data/CaseFolding.txt");
        let mut expected = HashMap::new();
        for line in data.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(';').map(str::trim).collect();
            if fields[1] == "C" || fields[1] == "S" {
                let from = char::from_u32(u32::from_str_radix(fields[0], 16).unwrap()).unwrap();
                let to = char::from_u32(u32::from_str_radix(fields[2], 16).unwrap()).unwrap();
                assert!(expected.insert(from, to).is_none(), "two simple foldings for {from:?}");
            }
        }
        assert!(expected.len() > 1400, "the data file has {} simple foldings", expected.len());
        let mut checked = 0;
        for cp in 0..=0x10FFFFu32 {
            let Some(c) = char::from_u32(cp) else { continue };
            let want = expected.get(&c).copied().unwrap_or(c);
            assert_eq!(fold_char(c), want, "U+{cp:04X}");
            checked += 1;
        }
        assert_eq!(checked, 0x110000 - 0x800, "every scalar value was checked");
    }

    #[test]
    fn folds_the_cases_simple_lowercasing_misses() {
        assert_eq!(fold("µ"), fold("μ")); // U+00B5 MICRO SIGN folds to U+03BC
        assert_eq!(fold("µ"), fold("Μ"));
        assert_eq!(fold("\u{1C80}"), fold("в")); // CYRILLIC SMALL LETTER ROUNDED VE
        assert_eq!(fold("\u{1C88}"), fold("\u{A64B}"));
        assert_eq!(fold("\u{1FBE}"), fold("ι")); // GREEK PROSGEGRAMMENI
        assert_eq!(fold("ẞ"), fold("ß"));
        assert_ne!(fold("ß"), fold("SS"), "full foldings (one to many) are not applied");
        assert_eq!(fold("ΟΔΟΣ"), fold("οδος"));
        assert_eq!(fold("ς"), fold("σ"));
        assert_eq!(fold("\u{AB70}"), fold("\u{13A0}"), "Cherokee folds to upper case");
        assert_eq!(fold("a\u{0308}"), fold("Ä"), "NFC first");
        assert_eq!(fold("İ"), "İ", "dotted capital I has only a full (and a Turkic) folding");
    }
}
