//! An organization's action secrets as a run sees them, and their redaction from what a run
//! reports (log records, error texts).

use std::collections::BTreeMap;

/// Values shorter than this are not redacted (they would blank out ordinary words).
pub const MIN_REDACTED_LEN: usize = 4;

/// The secrets a run gets (name → value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: BTreeMap<String, String>,
    /// (value, replacement), longest value first, so that a value containing another is replaced whole.
    redactions: Vec<(String, String)>,
}

impl Secrets {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        let mut redactions: Vec<(String, String)> = values
            .iter()
            .filter(|(_, v)| v.chars().count() >= MIN_REDACTED_LEN)
            .map(|(k, v)| (v.clone(), format!("[secret {k}]")))
            .collect();
        redactions.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Secrets { values, redactions }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// These secrets with `overrides` replacing (or adding) values, for a dry run.
    pub fn overridden(&self, overrides: &BTreeMap<String, String>) -> Secrets {
        if overrides.is_empty() {
            return self.clone();
        }
        let mut values = self.values.clone();
        values.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        Secrets::new(values)
    }

    /// `text` with every secret value (of at least [`MIN_REDACTED_LEN`] characters) replaced by
    /// `[secret NAME]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = None::<String>;
        for (value, replacement) in &self.redactions {
            let current = out.as_deref().unwrap_or(text);
            if current.contains(value.as_str()) {
                out = Some(current.replace(value.as_str(), replacement));
            }
        }
        out.unwrap_or_else(|| text.to_string())
    }

    /// Redacts in place (no allocation when nothing matches).
    pub fn redact_in(&self, text: &mut String) {
        if self.redactions.iter().any(|(v, _)| text.contains(v.as_str())) {
            *text = self.redact(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(pairs: &[(&str, &str)]) -> Secrets {
        Secrets::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn replaces_every_occurrence_longest_first() {
        let s = secrets(&[("SHORT", "abcd"), ("LONG", "abcdefgh"), ("TINY", "xyz")]);
        assert_eq!(s.redact("k=abcdefgh, j=abcd, abcd!"), "k=[secret LONG], j=[secret SHORT], [secret SHORT]!");
        // Under four characters a value is left alone.
        assert_eq!(s.redact("xyz"), "xyz");
        let mut t = "no match".to_string();
        s.redact_in(&mut t);
        assert_eq!(t, "no match");
    }

    #[test]
    fn overrides_replace_stored_values() {
        let s = secrets(&[("API_KEY", "stored-value")]);
        let o = s.overridden(&[("API_KEY".to_string(), "draft-value".to_string())].into_iter().collect());
        assert_eq!(o.values()["API_KEY"], "draft-value");
        assert_eq!(o.redact("draft-value stored-value"), "[secret API_KEY] stored-value");
    }
}
