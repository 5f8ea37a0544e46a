//! Flow and trigger types with their localized names.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowType(pub i32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TriggerType(pub i32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

struct Names {
    key: &'static str,
    en: &'static str,
    de: &'static str,
}

const FLOWS: [Names; 4] = [
    Names {
        key: "Action.Flow.Type.ExternalAuthentication",
        en: "External Authentication",
        de: "Externe Authentifizierung",
    },
    Names { key: "Action.Flow.Type.CustomiseToken", en: "Complement Token", de: "Token ergänzen" },
    Names {
        key: "Action.Flow.Type.InternalAuthentication",
        en: "Internal Authentication",
        de: "Interne Authentifizierung",
    },
    Names {
        key: "Action.Flow.Type.CustomizeSAMLResponse", en: "Complement SAMLResponse", de: "SAMLResponse ergänzen"
    },
];

const TRIGGERS: [Names; 6] = [
    Names { key: "Action.TriggerType.PostAuthentication", en: "Post Authentication", de: "Nach Authentifizierung" },
    Names { key: "Action.TriggerType.PreCreation", en: "Pre Creation", de: "Vor Erstellung" },
    Names { key: "Action.TriggerType.PostCreation", en: "Post Creation", de: "Nach Erstellung" },
    Names { key: "Action.TriggerType.PreUserinfoCreation", en: "Pre Userinfo creation", de: "Vor Userinfo-Erstellung" },
    Names {
        key: "Action.TriggerType.PreAccessTokenCreation",
        en: "Pre access token creation",
        de: "Vor Access-Token-Erstellung",
    },
    Names {
        key: "Action.TriggerType.PreSAMLResponseCreation",
        en: "Pre SAMLResponse creation",
        de: "Vor SAMLResponse-Erstellung",
    },
];

/// A flow and one of its trigger types: the nine points where v1 actions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// External Authentication / Post Authentication (1/1).
    ExternalPostAuthentication,
    /// External Authentication / Pre Creation (1/2).
    ExternalPreCreation,
    /// External Authentication / Post Creation (1/3).
    ExternalPostCreation,
    /// Internal Authentication / Post Authentication (3/1).
    InternalPostAuthentication,
    /// Internal Authentication / Pre Creation (3/2).
    InternalPreCreation,
    /// Internal Authentication / Post Creation (3/3).
    InternalPostCreation,
    /// Complement Token / Pre Userinfo creation (2/4).
    PreUserinfoCreation,
    /// Complement Token / Pre access token creation (2/5).
    PreAccessTokenCreation,
    /// Complement SAMLResponse / Pre SAMLResponse creation (4/6).
    PreSamlResponseCreation,
}

impl Trigger {
    pub const ALL: [Trigger; 9] = [
        Trigger::ExternalPostAuthentication,
        Trigger::ExternalPreCreation,
        Trigger::ExternalPostCreation,
        Trigger::InternalPostAuthentication,
        Trigger::InternalPreCreation,
        Trigger::InternalPostCreation,
        Trigger::PreUserinfoCreation,
        Trigger::PreAccessTokenCreation,
        Trigger::PreSamlResponseCreation,
    ];

    /// The trigger for a flow/trigger-type pair, if the flow has that trigger type.
    pub fn new(flow: FlowType, trigger: TriggerType) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.flow() == flow && t.trigger_type() == trigger)
    }

    pub fn flow(self) -> FlowType {
        use Trigger::*;
        match self {
            ExternalPostAuthentication | ExternalPreCreation | ExternalPostCreation => {
                FlowType::EXTERNAL_AUTHENTICATION
            }
            InternalPostAuthentication | InternalPreCreation | InternalPostCreation => {
                FlowType::INTERNAL_AUTHENTICATION
            }
            PreUserinfoCreation | PreAccessTokenCreation => FlowType::COMPLEMENT_TOKEN,
            PreSamlResponseCreation => FlowType::COMPLEMENT_SAML_RESPONSE,
        }
    }

    pub fn trigger_type(self) -> TriggerType {
        use Trigger::*;
        TriggerType(match self {
            ExternalPostAuthentication | InternalPostAuthentication => 1,
            ExternalPreCreation | InternalPreCreation => 2,
            ExternalPostCreation | InternalPostCreation => 3,
            PreUserinfoCreation => 4,
            PreAccessTokenCreation => 5,
            PreSamlResponseCreation => 6,
        })
    }
}

/// A type id written as ZITADEL writes it: one decimal digit (`01`, `+1` or `1.0` name no type,
/// as upstream's lookup by string finds none for them).
fn single_digit(s: &str) -> Option<i32> {
    match s.as_bytes() {
        [digit @ b'0'..=b'9'] => Some(i32::from(digit - b'0')),
        _ => None,
    }
}

impl FlowType {
    pub const EXTERNAL_AUTHENTICATION: FlowType = FlowType(1);
    pub const COMPLEMENT_TOKEN: FlowType = FlowType(2);
    pub const INTERNAL_AUTHENTICATION: FlowType = FlowType(3);
    pub const COMPLEMENT_SAML_RESPONSE: FlowType = FlowType(4);
    pub const ALL: [FlowType; 4] = [FlowType(1), FlowType(2), FlowType(3), FlowType(4)];

    /// Accepts `1`..`4` and the one name of ZITADEL's v1 `FlowType` enum (management-v1.md §4):
    /// the other flows have no enum name upstream, so no other spelling names them.
    pub fn parse(s: &str) -> Option<FlowType> {
        let n = match s {
            "FLOW_TYPE_EXTERNAL_AUTHENTICATION" => 1,
            other => single_digit(other)?,
        };
        (1..=4).contains(&n).then_some(FlowType(n))
    }

    pub fn triggers(self) -> &'static [TriggerType] {
        const EXT: [TriggerType; 3] = [TriggerType(1), TriggerType(2), TriggerType(3)];
        const TOKEN: [TriggerType; 2] = [TriggerType(4), TriggerType(5)];
        const SAML: [TriggerType; 1] = [TriggerType(6)];
        match self.0 {
            1 | 3 => &EXT,
            2 => &TOKEN,
            4 => &SAML,
            _ => &[],
        }
    }

    pub fn key(self) -> &'static str {
        FLOWS[(self.0 - 1) as usize].key
    }

    pub fn name(self, lang: Lang) -> &'static str {
        let n = &FLOWS[(self.0 - 1) as usize];
        match lang {
            Lang::En => n.en,
            Lang::De => n.de,
        }
    }
}

impl TriggerType {
    /// Accepts `1`..`6` and the three names of ZITADEL's v1 `TriggerType` enum (management-v1.md §4).
    pub fn parse(s: &str) -> Option<TriggerType> {
        let n = match s {
            "TRIGGER_TYPE_POST_AUTHENTICATION" => 1,
            "TRIGGER_TYPE_PRE_CREATION" => 2,
            "TRIGGER_TYPE_POST_CREATION" => 3,
            other => single_digit(other)?,
        };
        (1..=6).contains(&n).then_some(TriggerType(n))
    }

    pub fn key(self) -> &'static str {
        TRIGGERS[(self.0 - 1) as usize].key
    }

    pub fn name(self, lang: Lang) -> &'static str {
        let n = &TRIGGERS[(self.0 - 1) as usize];
        match lang {
            Lang::En => n.en,
            Lang::De => n.de,
        }
    }
}

/// Picks English or German from an `Accept-Language` header by quality value.
pub fn lang_from_header(header: Option<&str>) -> Lang {
    let Some(header) = header else {
        return Lang::En;
    };
    let mut best: Option<(f32, Lang)> = None;
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok())).unwrap_or(1.0);
        let lang = if tag == "de" || tag.starts_with("de-") {
            Lang::De
        } else if tag == "en" || tag.starts_with("en-") || tag == "*" {
            Lang::En
        } else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l).unwrap_or(Lang::En)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flow_trigger_pair_is_one_trigger() {
        let mut pairs = 0;
        for flow in FlowType::ALL {
            for &trigger in flow.triggers() {
                let t = Trigger::new(flow, trigger).expect("a trigger for every pair of the flow");
                assert_eq!((t.flow(), t.trigger_type()), (flow, trigger));
                pairs += 1;
            }
        }
        assert_eq!(pairs, Trigger::ALL.len());
        assert_eq!(Trigger::new(FlowType(2), TriggerType(1)), None);
    }

    #[test]
    fn accept_language() {
        assert_eq!(lang_from_header(Some("de-CH, en;q=0.5")), Lang::De);
        assert_eq!(lang_from_header(Some("fr, en;q=0.9, de;q=0.8")), Lang::En);
        assert_eq!(lang_from_header(Some("fr")), Lang::En);
        assert_eq!(lang_from_header(None), Lang::En);
    }

    #[test]
    fn flow_aliases() {
        assert_eq!(FlowType::parse("FLOW_TYPE_EXTERNAL_AUTHENTICATION"), Some(FlowType(1)));
        assert_eq!(FlowType::parse("5"), None);
        for other in ["01", "+1", "1.0", " 1", "1 ", "", "٣"] {
            assert_eq!(FlowType::parse(other), None, "{other:?}");
            assert_eq!(TriggerType::parse(other), None, "{other:?}");
        }
        assert_eq!(FlowType::parse("4"), Some(FlowType(4)));
        assert_eq!(TriggerType::parse("6"), Some(TriggerType(6)));
        assert_eq!(TriggerType::parse("TRIGGER_TYPE_PRE_CREATION"), Some(TriggerType(2)));
        assert!(FlowType(2).triggers().contains(&TriggerType(5)));
    }
}
