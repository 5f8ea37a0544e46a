//! Execution ids: the stored form of an Actions v2 execution's condition, e.g.
//! `request/zitadel.management.v1.ManagementService`, `response//zitadel.action.v2.ActionService/GetTarget`,
//! `function/preaccesstoken`, `event/user.human.*`, `event`. One grammar, parsed and printed here;
//! which names exist is the caller's business.

use std::fmt;

/// Which requests or responses an execution applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RpcScope {
    All,
    /// A fully qualified service name (`zitadel.management.v1.ManagementService`).
    Service(String),
    /// A full method name (`/zitadel.management.v1.ManagementService/ListActions`).
    Method(String),
}

/// Which events an execution applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventScope {
    All,
    /// An event type prefix, without the trailing `.*` (`user.human`).
    Group(String),
    /// One event type (`user.human.added`).
    Event(String),
}

/// Whether an RPC execution runs before or after the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Request,
    Response,
}

/// An execution's condition, as it is stored and matched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExecutionId {
    Request(RpcScope),
    Response(RpcScope),
    Function(String),
    Event(EventScope),
}

impl ExecutionId {
    /// Reads a stored id; None for text that is not an execution id.
    pub fn parse(id: &str) -> Option<ExecutionId> {
        let (kind, rest) = match id.split_once('/') {
            Some((k, r)) => (k, Some(r)),
            None => (id, None),
        };
        let rpc = |rest: Option<&str>| match rest {
            None => Some(RpcScope::All),
            Some("") => None,
            Some(m) if m.starts_with('/') => Some(RpcScope::Method(m.to_string())),
            Some(s) => Some(RpcScope::Service(s.to_string())),
        };
        match kind {
            "request" => rpc(rest).map(ExecutionId::Request),
            "response" => rpc(rest).map(ExecutionId::Response),
            "function" => rest.filter(|n| !n.is_empty()).map(|n| ExecutionId::Function(n.to_string())),
            "event" => match rest {
                None => Some(ExecutionId::Event(EventScope::All)),
                Some("") | Some(".*") => None,
                Some(g) if g.ends_with(".*") => {
                    Some(ExecutionId::Event(EventScope::Group(g.trim_end_matches(".*").to_string())))
                }
                Some(t) => Some(ExecutionId::Event(EventScope::Event(t.to_string()))),
            },
            _ => None,
        }
    }

    /// The executions that may apply to a call of `method` of `service`, most specific first:
    /// the method, the service, all.
    pub fn for_rpc(phase: Phase, service: &str, full_method: &str) -> [ExecutionId; 3] {
        let make = |scope| match phase {
            Phase::Request => ExecutionId::Request(scope),
            Phase::Response => ExecutionId::Response(scope),
        };
        [
            make(RpcScope::Method(full_method.to_string())),
            make(RpcScope::Service(service.to_string())),
            make(RpcScope::All),
        ]
    }

    /// The executions an event type matches, most specific first: the type, its groups from the
    /// longest prefix to the shortest, then all events.
    pub fn for_event(event_type: &str) -> Vec<ExecutionId> {
        let mut ids = vec![ExecutionId::Event(EventScope::Event(event_type.to_string()))];
        let mut prefix = event_type;
        while let Some((head, _)) = prefix.rsplit_once('.') {
            ids.push(ExecutionId::Event(EventScope::Group(head.to_string())));
            prefix = head;
        }
        ids.push(ExecutionId::Event(EventScope::All));
        ids
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rpc = |f: &mut fmt::Formatter<'_>, kind: &str, scope: &RpcScope| match scope {
            RpcScope::All => write!(f, "{kind}"),
            RpcScope::Service(s) => write!(f, "{kind}/{s}"),
            RpcScope::Method(m) => write!(f, "{kind}/{m}"),
        };
        match self {
            ExecutionId::Request(scope) => rpc(f, "request", scope),
            ExecutionId::Response(scope) => rpc(f, "response", scope),
            ExecutionId::Function(name) => write!(f, "function/{name}"),
            ExecutionId::Event(EventScope::All) => write!(f, "event"),
            ExecutionId::Event(EventScope::Group(g)) => write!(f, "event/{g}.*"),
            ExecutionId::Event(EventScope::Event(t)) => write!(f, "event/{t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_back() {
        for id in [
            "request",
            "request/zitadel.management.v1.ManagementService",
            "request//zitadel.management.v1.ManagementService/ListActions",
            "response",
            "response/zitadel.admin.v1.AdminService",
            "response//zitadel.admin.v1.AdminService/ListOrgs",
            "function/preaccesstoken",
            "event",
            "event/user.human.*",
            "event/user.human.added",
        ] {
            let parsed = ExecutionId::parse(id).unwrap_or_else(|| panic!("{id} parses"));
            assert_eq!(parsed.to_string(), id);
        }
        for bad in ["", "requests", "request/", "function", "function/", "event/", "event/.*", "other/x"] {
            assert_eq!(ExecutionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn candidates_go_from_specific_to_general() {
        let rpc: Vec<String> =
            ExecutionId::for_rpc(Phase::Response, "a.B", "/a.B/C").iter().map(|i| i.to_string()).collect();
        assert_eq!(rpc, ["response//a.B/C", "response/a.B", "response"]);
        let event: Vec<String> = ExecutionId::for_event("user.human.added").iter().map(|i| i.to_string()).collect();
        assert_eq!(event, ["event/user.human.added", "event/user.human.*", "event/user.*", "event"]);
    }
}
