//! An organization's action secrets as a run sees them, and their redaction from what a run
//! reports (log records, error texts).

use std::collections::BTreeMap;

/// Values shorter than this are not redacted (they would blank out ordinary words).
pub const MIN_REDACTED_LEN: usize = 4;

/// The secrets a run gets (name → value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl Secrets {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Secrets { values }
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
}

/// How a run's secrets are hidden from what it reports: made in the sandbox worker, at the first
/// text of a run that needs it.
#[derive(Debug)]
pub struct Redaction {
    /// (spelling, name): each value of at least [`MIN_REDACTED_LEN`] characters, its spelling
    /// inside a JSON string where that differs (a value with a quote, a backslash or a line break,
    /// as `JSON.stringify` and `%j` print it), and its ASCII-lowercase spelling (a URL's host).
    patterns: Vec<(String, String)>,
}

impl Redaction {
    pub fn new(values: &BTreeMap<String, String>) -> Self {
        let mut patterns = Vec::new();
        for (name, value) in values.iter().filter(|(_, v)| v.chars().count() >= MIN_REDACTED_LEN) {
            patterns.push((value.clone(), name.clone()));
            let quoted = serde_json::to_string(value).unwrap_or_default();
            let escaped = &quoted[1..quoted.len().saturating_sub(1).max(1)];
            if escaped != value {
                patterns.push((escaped.to_string(), name.clone()));
            }
            // As a URL's host prints it (`fetch` errors name the host, lowercased by the parser).
            let lower = value.to_ascii_lowercase();
            if lower != *value {
                patterns.push((lower, name.clone()));
            }
        }
        Redaction { patterns }
    }

    /// Calls `span` for each part of `text` that secret values cover, in text order: every
    /// occurrence of every spelling (overlapping ones too) merged into disjoint spans, each named by
    /// the secret whose occurrence starts it (the longest where two start together). The
    /// occurrences are merged as they are found, one pending per spelling: a long text full of
    /// overlapping short values (`xxxx` in 60,000 `x`) costs no memory per occurrence, which had
    /// made a log line fail its run with "memory limit exceeded".
    fn for_each_span<'a>(&'a self, text: &str, mut span: impl FnMut(usize, usize, &'a str)) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        // (start, longest first, spelling index): the next occurrence of each spelling.
        let mut next = BinaryHeap::new();
        let find_next = |next: &mut BinaryHeap<_>, i: usize, from: usize| {
            let spelling = self.patterns[i].0.as_str();
            if let Some(start) = text.get(from..).and_then(|t| t.find(spelling)).map(|at| from + at) {
                next.push(Reverse((start, Reverse(start + spelling.len()), i)));
            }
        };
        for i in 0..self.patterns.len() {
            find_next(&mut next, i, 0);
        }
        let mut current: Option<(usize, usize, &str)> = None;
        while let Some(Reverse((start, Reverse(end), i))) = next.pop() {
            let name = &self.patterns[i].1;
            current = match current {
                Some((s, e, n)) if start < e => Some((s, e.max(end), n)),
                Some((s, e, n)) => {
                    span(s, e, n);
                    Some((start, end, name.as_str()))
                }
                None => Some((start, end, name.as_str())),
            };
            find_next(&mut next, i, start + text[start..].chars().next().map_or(1, char::len_utf8));
        }
        if let Some((s, e, n)) = current {
            span(s, e, n);
        }
    }

    /// `text` with every secret value (of at least [`MIN_REDACTED_LEN`] characters) replaced by
    /// `[secret NAME]`, in one pass over the text as given: a marker is never rewritten by another
    /// secret, and overlapping values are hidden whole.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        self.redact_in(&mut out);
        out
    }

    /// Redacts in place (no allocation when nothing matches).
    pub fn redact_in(&self, text: &mut String) {
        let mut out: Option<String> = None;
        let mut copied = 0;
        self.for_each_span(text, |start, end, name| {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(&text[copied..start]);
            out.push_str("[secret ");
            out.push_str(name);
            out.push(']');
            copied = end;
        });
        if let Some(mut out) = out {
            out.push_str(&text[copied..]);
            *text = out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn secrets(pairs: &[(&str, &str)]) -> Redaction {
        Redaction::new(&values(pairs))
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
    fn a_value_lowercased_as_a_url_host_is_redacted_too() {
        let s = secrets(&[("HOSTKEY", "TenantKey-ABCD1234")]);
        assert_eq!(
            s.redact("error sending request for url (https://tenantkey-abcd1234.api.invalid/): dns error"),
            "error sending request for url (https://[secret HOSTKEY].api.invalid/): dns error"
        );
        assert_eq!(s.redact("TenantKey-ABCD1234"), "[secret HOSTKEY]");
    }

    #[test]
    fn one_pass_over_the_text_as_given() {
        // A value that is part of another secret's marker leaves the marker alone.
        let s = secrets(&[("SHORT", "secret"), ("LONG", "mysecretvalue")]);
        assert_eq!(s.redact("mysecretvalue and secret"), "[secret LONG] and [secret SHORT]");
        // Overlapping values are hidden whole, as one span named by the first.
        let s = secrets(&[("SA", "abcdef"), ("SB", "defghi")]);
        assert_eq!(s.redact("x abcdefghi y"), "x [secret SA] y");
        // Overlapping occurrences of one value too.
        let s = secrets(&[("A", "aaaa")]);
        assert_eq!(s.redact("aaaaa."), "[secret A].");
        // Multi-byte text around and inside values.
        let s = secrets(&[("U", "ünï-cödé")]);
        assert_eq!(s.redact("→ünï-cödé←"), "→[secret U]←");
    }

    #[test]
    fn json_spellings_are_redacted_too() {
        let pem = "-----BEGIN KEY-----\nMIIBsecretbody\n-----END KEY-----";
        let q = "ab\"cd\\ef";
        let s = secrets(&[("PEM", pem), ("Q", q)]);
        let logged = serde_json::json!({"key": pem, "q": q}).to_string();
        assert_eq!(s.redact(&logged), r#"{"key":"[secret PEM]","q":"[secret Q]"}"#);
        assert_eq!(s.redact(&format!("raw {pem}")), "raw [secret PEM]");
    }

    #[test]
    fn many_overlapping_values_in_a_long_text() {
        // Ten values that each occur at every position of the text: one span, named by the
        // longest of those that start it.
        let pairs: Vec<(String, String)> = (4..14).map(|n| (format!("S{n:02}"), "x".repeat(n))).collect();
        let s = Redaction::new(&pairs.into_iter().collect());
        let text = "x".repeat(60_000);
        assert_eq!(s.redact(&text), "[secret S13]");
        assert_eq!(s.redact(&format!("a{text}b xxx xxxx")), "a[secret S13]b xxx [secret S04]");
    }

    #[test]
    fn overrides_replace_stored_values() {
        let s = Secrets::new(values(&[("API_KEY", "stored-value")]));
        let o = s.overridden(&values(&[("API_KEY", "draft-value")]));
        assert_eq!(o.values()["API_KEY"], "draft-value");
        assert_eq!(Redaction::new(o.values()).redact("draft-value stored-value"), "[secret API_KEY] stored-value");
    }
}
