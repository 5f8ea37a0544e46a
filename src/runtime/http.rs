//! Outbound HTTP for untrusted JavaScript actions (`fetch`) and webhook
//! targets, guarded against server-side request forgery (SSRF).
//!
//! The guard works on three levels:
//!
//! * the initial URL is checked before anything is sent ([`NetPolicy::check_url`]);
//! * every host *name* goes through [`GuardedResolver`], which resolves it and
//!   hands only permitted addresses to the connector, so DNS tricks (rebinding,
//!   names pointing at internal addresses) cannot bypass the deny list;
//! * every redirect hop is checked by a custom redirect policy (IP-literal hosts
//!   skip the resolver, so they are checked there directly), at most
//!   [`MAX_REDIRECTS`] hops are followed and https → http downgrades are refused.
//!
//! Proxies are disabled, so environment variables such as `HTTP_PROXY` cannot
//! route requests around the guard.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{redirect, Method};
use serde::{Deserialize, Serialize};
use url::Url;

/// The default deny list (see the contract).
pub const DEFAULT_DENY: &str = "0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, \
169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, 224.0.0.0/4, 240.0.0.0/4, ::/128, ::1/128, \
fc00::/7, fe80::/10, ff00::/8, localhost, *.localhost";

/// The default allow list (empty).
pub const DEFAULT_ALLOW: &str = "";

/// Maximum size of a response body; larger bodies are an error.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Maximum number of redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// Overall request timeout of [`blocking_client`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Timeout for establishing a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a configuration check waits for a name to resolve before accepting it unchecked.
pub const CREATE_TIME_LOOKUP: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------

/// One parsed list (deny or allow).
#[derive(Debug, Clone, Default)]
struct RuleSet {
    /// CIDRs and single addresses (as host networks).
    nets: Vec<IpNet>,
    /// Exact host names, lower-case, without trailing dot.
    names: Vec<String>,
    /// `*.suffix` entries stored as `.suffix` (lower-case).
    suffixes: Vec<String>,
}

impl RuleSet {
    fn parse(list: &str, which: &str) -> Result<Self, String> {
        let mut set = RuleSet::default();
        for raw in list.split(',') {
            let entry = raw.trim();
            if entry.is_empty() {
                continue;
            }
            let bad = || format!("invalid {which} list entry {entry:?}");
            if let Some(rest) = entry.strip_prefix("*.") {
                match normalize_host(rest) {
                    Some(HostKind::Name(name)) if valid_name(&name) => {
                        set.suffixes.push(format!(".{name}"));
                    }
                    _ => return Err(bad()),
                }
            } else if entry.contains('/') {
                let cidr = entry
                    .strip_prefix('[')
                    .and_then(|r| r.split_once("]/"))
                    .map(|(ip, len)| format!("{ip}/{len}"))
                    .unwrap_or_else(|| entry.to_owned());
                let net: IpNet = cidr.parse().map_err(|_| bad())?;
                set.nets.push(canonical_net(net));
            } else {
                match normalize_host(entry) {
                    Some(HostKind::Ip(ip)) => set.nets.push(IpNet::from(canonical_ip(ip))),
                    Some(HostKind::Name(name)) if valid_name(&name) => set.names.push(name),
                    _ => return Err(bad()),
                }
            }
        }
        Ok(set)
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        ip_candidates(ip).into_iter().flatten().any(|c| self.nets.iter().any(|n| n.contains(&c)))
    }

    /// `name` must already be normalized (lower-case, no trailing dot).
    fn matches_name(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name) || self.suffixes.iter().any(|s| name.ends_with(s))
    }
}

/// Parsed deny and allow lists. An address or name on the allow list is
/// permitted even when the deny list matches it.
#[derive(Debug, Clone)]
pub struct NetPolicy {
    deny: RuleSet,
    allow: RuleSet,
}

impl Default for NetPolicy {
    /// The contract's default deny list with an empty allow list.
    fn default() -> Self {
        NetPolicy::parse(DEFAULT_DENY, DEFAULT_ALLOW).expect("default deny list is valid")
    }
}

impl NetPolicy {
    /// Parses comma-separated deny and allow lists (CIDRs, IPs, host names
    /// and `*.suffix` names). The error names the offending entry.
    pub fn parse(deny: &str, allow: &str) -> Result<NetPolicy, String> {
        Ok(NetPolicy { deny: RuleSet::parse(deny, "deny")?, allow: RuleSet::parse(allow, "allow")? })
    }

    /// Whether a connection to `ip` is permitted. IPv4-mapped
    /// (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and IPv4-compatible
    /// addresses are also checked as their embedded IPv4 address.
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        !self.deny.matches_ip(ip) || self.allow.matches_ip(ip)
    }

    /// Whether a host is permitted: IP literals in any normalized form
    /// (`127.1`, `2130706433`, `0x7f.1`, `[::1]`, …) go through the IP rules,
    /// names through the name rules (exact and `*.suffix`, case-insensitive,
    /// trailing dot ignored). Unparseable hosts are not allowed.
    ///
    /// A permitted *name* may still resolve to denied addresses; those are
    /// refused at connect time by the client's resolver.
    pub fn host_allowed(&self, host: &str) -> bool {
        match normalize_host(host) {
            None => false,
            Some(HostKind::Ip(ip)) => self.ip_allowed(ip),
            Some(HostKind::Name(name)) => self.name_allowed(&name),
        }
    }

    /// Checks a URL's host before a request (IP literal → IP rules; name →
    /// name rules). `Err(message)` if denied or the scheme is not http(s).
    /// The message carries no `fetch:` prefix.
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(format!("unsupported URL scheme {other:?} (only http and https are allowed)")),
        }
        match url.host() {
            None => Err("URL has no host".to_owned()),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(domain)) => match normalize_host(domain) {
                None => Err(format!("invalid host {domain:?}")),
                Some(HostKind::Ip(ip)) => self.check_ip(ip),
                Some(HostKind::Name(name)) => {
                    if self.name_allowed(&name) {
                        Ok(())
                    } else {
                        Err(format!("host {name} is denied"))
                    }
                }
            },
        }
    }

    /// Resolves `host` and returns only the permitted addresses (with `port`).
    ///
    /// * IP literals are checked directly.
    /// * Denied names are refused without resolving.
    /// * A name explicitly on the allow list keeps all its addresses.
    /// * Otherwise denied addresses are dropped; if none remain it is an error
    ///   naming the first denied address.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let name = match normalize_host(host) {
            None => return Err(format!("invalid host {host:?}")),
            Some(HostKind::Ip(ip)) => {
                self.check_ip(ip)?;
                return Ok(vec![SocketAddr::new(ip, port)]);
            }
            Some(HostKind::Name(name)) => name,
        };
        if !self.name_allowed(&name) {
            return Err(format!("host {name} is denied"));
        }
        let explicitly_allowed = self.allow.matches_name(&name);
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|e| format!("could not resolve host {name}: {e}"))?
            .collect();
        if resolved.is_empty() {
            return Err(format!("could not resolve host {name}: no addresses"));
        }
        if explicitly_allowed {
            return Ok(resolved);
        }
        let mut first_denied = None;
        let mut permitted = Vec::with_capacity(resolved.len());
        for addr in resolved {
            if self.ip_allowed(addr.ip()) {
                permitted.push(addr);
            } else if first_denied.is_none() {
                first_denied = Some(addr.ip());
            }
        }
        match (permitted.is_empty(), first_denied) {
            // The address stays in the server's log: the text reaches script authors, who
            // should not learn the internal addresses of names they try.
            (true, Some(ip)) => {
                tracing::debug!(host = %name, address = %ip, "outgoing call refused: the name resolves to a denied address");
                Err(format!("host {name} resolves to a denied address"))
            }
            _ => Ok(permitted),
        }
    }

    /// [`check_url`](Self::check_url), then, for a name that is not explicitly allowed, whether
    /// it resolves to a permitted address: a name whose every address is denied is refused (no
    /// call to it could be made); a name that does not resolve (yet), or not within
    /// [`CREATE_TIME_LOOKUP`], passes. For configuration checks (target endpoints, ZITADEL's API).
    pub async fn check_url_resolved(&self, url: &Url) -> Result<(), String> {
        self.check_url(url)?;
        let Some(url::Host::Domain(domain)) = url.host() else { return Ok(()) };
        let Some(HostKind::Name(name)) = normalize_host(domain) else { return Ok(()) };
        if self.allow.matches_name(&name) {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let lookup = tokio::net::lookup_host((name.as_str(), port));
        let Ok(Ok(addrs)) = tokio::time::timeout(CREATE_TIME_LOOKUP, lookup).await else { return Ok(()) };
        let addrs: Vec<SocketAddr> = addrs.collect();
        if !addrs.is_empty() && addrs.iter().all(|a| !self.ip_allowed(a.ip())) {
            return Err(format!("host {name} resolves only to denied addresses"));
        }
        Ok(())
    }

    fn name_allowed(&self, name: &str) -> bool {
        !self.deny.matches_name(name) || self.allow.matches_name(name)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if self.ip_allowed(ip) {
            Ok(())
        } else {
            Err(format!("address {ip} is denied"))
        }
    }
}

enum HostKind {
    Ip(IpAddr),
    Name(String),
}

/// Normalizes a host: brackets stripped, IPv4 literals parsed the way URL
/// parsers do (`127.1`, `0x7f.1`, `2130706433`), names lower-cased,
/// IDNA-encoded and stripped of one trailing dot.
fn normalize_host(host: &str) -> Option<HostKind> {
    let host = host.trim();
    if host.is_empty() {
        return None;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(|ip| HostKind::Ip(ip.into()));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(HostKind::Ip(ip));
    }
    if host.contains(':') {
        return None;
    }
    match url::Host::parse(host).ok()? {
        url::Host::Ipv4(ip) => Some(HostKind::Ip(ip.into())),
        url::Host::Ipv6(ip) => Some(HostKind::Ip(ip.into())),
        url::Host::Domain(domain) => {
            let name = domain.strip_suffix('.').unwrap_or(&domain);
            if name.is_empty() {
                None
            } else {
                Some(HostKind::Name(name.to_ascii_lowercase()))
            }
        }
    }
}

/// A list's CIDR as it is matched: an IPv4-mapped range (`::ffff:127.0.0.0/104`) is its IPv4
/// range (`127.0.0.0/8`), as a single mapped address on a list is its IPv4 address.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map(IpNet::V4).unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// Strict syntax for names on the lists: LDH labels (underscores tolerated).
fn valid_name(name: &str) -> bool {
    name.split('.')
        .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// The IPv4 address embedded in an IPv6 address, if any: IPv4-mapped
/// (`::ffff:a.b.c.d`), NAT64 well-known prefix (`64:ff9b::/96`) and
/// IPv4-compatible (`::a.b.c.d`, except `::` and `::1`).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let seg = ip.segments();
    let low = Ipv4Addr::from((u32::from(seg[6]) << 16) | u32::from(seg[7]));
    // NAT64's well-known prefix, the local-use one (64:ff9b:1::/48, with the /96 embedding), and
    // IPv4-translated addresses (::ffff:0:a.b.c.d).
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || seg[..3] == [0x64, 0xff9b, 1] || seg[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(low);
    }
    // 6to4 (2002:aabb:ccdd::/48) carries its IPv4 address in the second and third groups.
    if seg[0] == 0x2002 {
        return Some(Ipv4Addr::from((u32::from(seg[1]) << 16) | u32::from(seg[2])));
    }
    if seg[..6] == [0; 6] && !(seg[6] == 0 && seg[7] <= 1) {
        return Some(low);
    }
    None
}

/// An address checked as itself and, for IPv6 with an embedded IPv4, as that IPv4.
fn ip_candidates(ip: IpAddr) -> [Option<IpAddr>; 2] {
    match ip {
        IpAddr::V4(_) => [Some(ip), None],
        IpAddr::V6(v6) => [Some(ip), embedded_ipv4(v6).map(IpAddr::V4)],
    }
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

// ---------------------------------------------------------------------------
// Guard plumbing (resolver, redirect policy, errors)
// ---------------------------------------------------------------------------

/// Error raised by the guard inside reqwest (resolver / redirect policy);
/// recognised again when mapping reqwest errors to messages.
#[derive(Debug)]
struct GuardError(String);

impl fmt::Display for GuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for GuardError {}

/// A reqwest DNS resolver that only yields addresses permitted by the policy.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<NetPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<NetPolicy>) -> Self {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match policy.resolve(&host, 0).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(msg) => Err(Box::new(GuardError(msg)) as Box<dyn StdError + Send + Sync>),
            }
        })
    }
}

/// Checks one redirect hop. `previous` holds the URLs requested so far
/// (the initial URL first), as reqwest's `Attempt::previous` does.
pub fn check_redirect(policy: &NetPolicy, next: &Url, previous: &[Url]) -> Result<(), String> {
    if previous.len() > MAX_REDIRECTS {
        return Err(format!("too many redirects (more than {MAX_REDIRECTS})"));
    }
    if let Some(prev) = previous.last() {
        if prev.scheme() == "https" && next.scheme() != "https" {
            return Err(format!("redirect from https to {} is not allowed", next.scheme()));
        }
    }
    policy.check_url(next).map_err(|e| format!("{e} (redirect to {next})"))
}

/// Every hop is checked against the deny list. With `keep_method` (the server's own calls:
/// targets, ZITADEL's API) only the redirects that keep the method and the body are followed (307,
/// 308): after a 301, 302 or 303 an HTTP client repeats the request as a GET without its body, so
/// a signed call or an event would "succeed" without ever arriving. Scripts' `fetch` follows all.
fn redirect_policy(policy: Arc<NetPolicy>, keep_method: bool) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        let status = attempt.status().as_u16();
        if keep_method && matches!(status, 301..=303) {
            let message = format!(
                "redirect with HTTP {status} not followed: it would repeat the request as a GET without its body \
                 (only 307 and 308 redirects are followed)"
            );
            return attempt.error(GuardError(message));
        }
        match check_redirect(&policy, attempt.url(), attempt.previous()) {
            Ok(()) => attempt.follow(),
            Err(msg) => attempt.error(GuardError(msg)),
        }
    })
}

/// Turns a reqwest error into a clear message (without `fetch:` prefix).
pub fn describe_error(err: &reqwest::Error) -> String {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(guard) = e.downcast_ref::<GuardError>() {
            return guard.0.clone();
        }
        source = e.source();
    }
    let causes = source_chain(err);
    if err.is_timeout() {
        "request timed out".to_owned()
    } else if err.is_connect() {
        format!("connection failed: {causes}")
    } else if err.is_redirect() {
        format!("redirect failed: {causes}")
    } else if err.is_builder() {
        format!("invalid request: {err}")
    } else if err.is_body() || err.is_decode() {
        format!("reading response failed: {causes}")
    } else {
        format!("request failed: {causes}")
    }
}

/// The messages of an error's sources (not the error itself, whose message
/// only repeats the URL), joined with `: `; falls back to the error itself.
fn source_chain(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = err.source();
    while let Some(e) = source {
        let msg = e.to_string();
        // hyper-util's wrapper ("client error (Connect)") adds nothing useful
        let noise = msg.starts_with("client error (");
        if !noise && !msg.is_empty() && !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        source = e.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// A blocking client with the guard installed (used inside sandbox worker
/// processes, off any tokio runtime). Requests time out after
/// [`DEFAULT_TIMEOUT`]. It keeps no idle connections: a worker serves runs of
/// every organization one after the other, and nothing of one run (not even a
/// keep-alive connection, whose state a run can spoil and a server can use to
/// link requests) may reach the next.
pub fn blocking_client(policy: Arc<NetPolicy>) -> Result<reqwest::blocking::Client, String> {
    blocking_client_with_timeout(policy, Some(DEFAULT_TIMEOUT))
}

/// Like [`blocking_client`] with an explicit overall timeout (`None`: none).
pub fn blocking_client_with_timeout(
    policy: Arc<NetPolicy>,
    timeout: Option<Duration>,
) -> Result<reqwest::blocking::Client, String> {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(Arc::clone(&policy))))
        .redirect(redirect_policy(policy, false))
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_max_idle_per_host(0)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("http client: {e}"))
}

/// The async equivalent of [`blocking_client`] for server-side use (targets, ZITADEL's API),
/// which follows only 307 and 308 redirects. `timeout: None` means no overall timeout.
pub fn async_client(policy: Arc<NetPolicy>, timeout: Option<Duration>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(Arc::clone(&policy))))
        .redirect(redirect_policy(policy, true))
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder.build().map_err(|e| format!("http client: {e}"))
}

// ---------------------------------------------------------------------------
// fetch
// ---------------------------------------------------------------------------

/// Arguments of `fetch(url, {method?, headers?, body?})`.
#[derive(Debug, Clone, Deserialize)]
pub struct FetchRequest {
    pub url: String,
    #[serde(default)]
    pub method: Option<String>,
    /// When given, replaces the default headers entirely.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    /// Already a JSON string when given.
    #[serde(default)]
    pub body: Option<String>,
}

/// Result of `fetch`: status, body text and headers (lower-case names,
/// multiple values joined with `, `).
#[derive(Debug, Clone, Serialize)]
pub struct FetchResponse {
    pub status: u16,
    pub body: String,
    pub headers: BTreeMap<String, String>,
}

struct Prepared {
    url: Url,
    method: Method,
    headers: HeaderMap,
    body: Option<String>,
}

/// Headers a script may not set, as Go's client (upstream's `fetch`) skips them: `Host` comes
/// from the URL (else a script could address a virtual host the deny list names on an allowed
/// address), and the framing headers from the body.
const IGNORED_HEADERS: [HeaderName; 4] = [
    reqwest::header::HOST,
    reqwest::header::CONTENT_LENGTH,
    reqwest::header::TRANSFER_ENCODING,
    reqwest::header::TRAILER,
];

/// The most header values one `fetch` may send.
pub const MAX_FETCH_HEADERS: usize = 1000;

fn prepare(policy: &NetPolicy, req: FetchRequest) -> Result<Prepared, String> {
    let url = Url::parse(req.url.trim()).map_err(|e| format!("fetch: invalid URL {:?}: {e}", req.url))?;
    policy.check_url(&url).map_err(|e| format!("fetch: {e}"))?;
    let method = parse_method(req.method.as_deref())?;
    let headers = match req.headers {
        None => {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(ACCEPT, HeaderValue::from_static("application/json"));
            h
        }
        Some(given) => {
            // The header map's own capacity ends far above anything a server takes (and its
            // end is a panic, which would end the sandbox): a bound of our own, as an error.
            let count: usize = given.values().map(Vec::len).sum();
            if count > MAX_FETCH_HEADERS {
                return Err(format!("fetch: too many headers ({count}; at most {MAX_FETCH_HEADERS})"));
            }
            let mut h = HeaderMap::new();
            for (name, values) in given {
                let header = HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| format!("fetch: invalid header name {name:?}"))?;
                if IGNORED_HEADERS.contains(&header) {
                    continue;
                }
                for value in values {
                    let value = HeaderValue::from_str(&value)
                        .map_err(|_| format!("fetch: invalid value for header {name:?}"))?;
                    h.append(header.clone(), value);
                }
            }
            h
        }
    };
    Ok(Prepared { url, method, headers, body: req.body })
}

/// Method names are case-insensitive for the common methods (as in the
/// fetch standard); CONNECT, TRACE and TRACK are refused.
fn parse_method(method: Option<&str>) -> Result<Method, String> {
    let raw = method.map(str::trim).filter(|m| !m.is_empty()).unwrap_or("GET");
    let upper = raw.to_ascii_uppercase();
    let name = match upper.as_str() {
        "DELETE" | "GET" | "HEAD" | "OPTIONS" | "PATCH" | "POST" | "PUT" => upper.as_str(),
        "CONNECT" | "TRACE" | "TRACK" => {
            return Err(format!("fetch: method {raw} is not allowed"));
        }
        _ => raw,
    };
    Method::from_bytes(name.as_bytes()).map_err(|_| format!("fetch: invalid method {raw:?}"))
}

fn collect_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        out.entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    out
}

fn body_too_large() -> String {
    format!("fetch: response body exceeds {MAX_BODY_BYTES} bytes")
}

/// Performs `fetch` with a client from [`blocking_client`]. Non-2xx statuses
/// are not errors; every failure is `Err("fetch: …")`.
pub fn fetch_blocking(
    client: &reqwest::blocking::Client,
    policy: &NetPolicy,
    req: FetchRequest,
) -> Result<FetchResponse, String> {
    let p = prepare(policy, req)?;
    let mut builder = client.request(p.method, p.url).headers(p.headers);
    if let Some(body) = p.body {
        builder = builder.body(body);
    }
    let mut resp = builder.send().map_err(|e| format!("fetch: {}", describe_error(&e)))?;
    let status = resp.status().as_u16();
    let headers = collect_headers(resp.headers());
    if resp.content_length().is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(body_too_large());
    }
    let mut body = body_buffer(resp.content_length());
    resp.by_ref()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("fetch: reading response body failed: {e}"))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(body_too_large());
    }
    Ok(FetchResponse { status, body: body_text(body), headers })
}

/// The buffer a body is read into: sized by `Content-Length` when the server gives one, so a
/// large body is read without the doubling copies of a growing buffer (it counts against the
/// run's memory limit).
fn body_buffer(content_length: Option<u64>) -> Vec<u8> {
    Vec::with_capacity(content_length.map_or(0, |len| len.min(MAX_BODY_BYTES as u64 + 1) as usize))
}

/// The body as text: UTF-8 as received (no copy), invalid sequences as U+FFFD.
fn body_text(body: Vec<u8>) -> String {
    String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The async equivalent of [`fetch_blocking`], for a client from [`async_client`].
pub async fn fetch_async(
    client: &reqwest::Client,
    policy: &NetPolicy,
    req: FetchRequest,
) -> Result<FetchResponse, String> {
    let p = prepare(policy, req)?;
    let mut builder = client.request(p.method, p.url).headers(p.headers);
    if let Some(body) = p.body {
        builder = builder.body(body);
    }
    let mut resp = builder.send().await.map_err(|e| format!("fetch: {}", describe_error(&e)))?;
    let status = resp.status().as_u16();
    let headers = collect_headers(resp.headers());
    if resp.content_length().is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(body_too_large());
    }
    let mut body = body_buffer(resp.content_length());
    while let Some(chunk) =
        resp.chunk().await.map_err(|e| format!("fetch: reading response body failed: {}", describe_error(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(body_too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(FetchResponse { status, body: body_text(body), headers })
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;

    fn default_policy() -> NetPolicy {
        NetPolicy::parse(DEFAULT_DENY, DEFAULT_ALLOW).unwrap()
    }

    fn get(url: &str) -> FetchRequest {
        FetchRequest { url: url.to_owned(), method: None, headers: None, body: None }
    }

    fn fetch_with(policy: NetPolicy, req: FetchRequest) -> Result<FetchResponse, String> {
        let policy = Arc::new(policy);
        let client = blocking_client(Arc::clone(&policy)).unwrap();
        fetch_blocking(&client, &policy, req)
    }

    /// A request as seen by the test server.
    #[derive(Debug)]
    struct Seen {
        head: String,
        body: Vec<u8>,
    }

    impl Seen {
        fn request_line(&self) -> &str {
            self.head.lines().next().unwrap_or("")
        }
        fn header_values(&self, name: &str) -> Vec<String> {
            self.head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
                .collect()
        }
    }

    fn read_request(stream: &mut TcpStream) -> Option<Seen> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut body = buf[head_end + 4..].to_vec();
        let len = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while body.len() < len {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(Seen { head, body })
    }

    /// Starts an HTTP/1.1 server on 127.0.0.1 answering every connection
    /// with `respond(port, request)` and closing it. Requests are reported
    /// on the returned channel.
    fn serve<F>(respond: F) -> (u16, mpsc::Receiver<Seen>)
    where
        F: Fn(u16, &Seen) -> Vec<u8> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(seen) = read_request(&mut stream) else {
                    continue;
                };
                let response = respond(port, &seen);
                let _ = stream.write_all(&response);
                let _ = stream.flush();
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        (port, rx)
    }

    fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for (n, v) in headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut out = out.into_bytes();
        out.extend_from_slice(body);
        out
    }

    // --- parsing -----------------------------------------------------------

    #[test]
    fn parse_default_and_empty_lists() {
        assert!(NetPolicy::parse(DEFAULT_DENY, DEFAULT_ALLOW).is_ok());
        let open = NetPolicy::parse("", "").unwrap();
        assert!(open.host_allowed("127.0.0.1"));
        assert!(open.host_allowed("localhost"));
        // whitespace and empty entries are tolerated
        let p = NetPolicy::parse(" 10.0.0.0/8 ,, example.org ,", " ").unwrap();
        assert!(!p.host_allowed("10.1.2.3"));
        assert!(!p.host_allowed("Example.ORG."));
        assert!(p.host_allowed("www.example.org"));
    }

    #[test]
    fn parse_bad_entry_names_it() {
        for (deny, allow, bad) in [
            ("10.0.0.0/33", "", "10.0.0.0/33"),
            ("10.0.0.0/8, foo bar", "", "foo bar"),
            ("", "bad/entry", "bad/entry"),
            ("*.", "", "*."),
            ("*.foo..bar", "", "*.foo..bar"),
            ("[::1", "", "[::1"),
            ("exa$mple.com", "", "exa$mple.com"),
            ("999.1.1.1", "", "999.1.1.1"),
        ] {
            let err = NetPolicy::parse(deny, allow).unwrap_err();
            assert!(err.contains(bad), "{err:?} should name {bad:?}");
        }
        let err = NetPolicy::parse("", "foo bar").unwrap_err();
        assert!(err.contains("allow"), "{err}");
    }

    #[test]
    fn parse_accepts_all_entry_forms() {
        let p = NetPolicy::parse(
            "192.0.2.0/24, [2001:db8::]/32, 198.51.100.7, [2001:db8:1::1], \
             0xc0.0xa8.1, internal.example, *.corp.example",
            "",
        )
        .unwrap();
        assert!(!p.host_allowed("192.0.2.99"));
        assert!(!p.host_allowed("[2001:db8:ffff::1]"));
        assert!(!p.host_allowed("198.51.100.7"));
        assert!(p.host_allowed("198.51.100.8"));
        assert!(!p.host_allowed("2001:db8:1::1"));
        assert!(!p.host_allowed("192.168.0.1"));
        assert!(!p.host_allowed("INTERNAL.example."));
        assert!(p.host_allowed("other.internal.example"));
        assert!(!p.host_allowed("a.b.corp.example"));
        assert!(p.host_allowed("corp.example"));
    }

    // --- normalization -----------------------------------------------------

    #[test]
    fn loopback_spellings_are_denied_by_default() {
        let p = default_policy();
        for host in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f000001",
            "0x7f.1",
            "0177.0.0.1",
            "127.0.0.1.",
            "[::ffff:127.0.0.1]",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "[64:ff9b::7f00:1]",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "::ffff:0:7f00:1",
            "64:ff9b:1::7f00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "0.0.0.0",
            "0",
            "::",
            "[::1]",
            "10.1.2.3",
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "fe80::1",
            "fd00::1",
        ] {
            assert!(!p.host_allowed(host), "{host} should be denied");
        }
        for ip in ["127.0.0.1", "::ffff:127.0.0.1", "::ffff:7f00:1", "64:ff9b::7f00:1", "0.0.0.0", "::1", "::"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!p.ip_allowed(ip), "{ip} should be denied");
        }
    }

    #[test]
    fn loopback_urls_are_denied_by_default() {
        let p = default_policy();
        for url in [
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.1:8080/x",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://0.0.0.0/",
            "https://[::1]:443/",
        ] {
            let err = p.check_url(&Url::parse(url).unwrap()).unwrap_err();
            assert!(err.contains("is denied"), "{url}: {err}");
        }
        let err = p.check_url(&Url::parse("http://127.1/").unwrap()).unwrap_err();
        assert_eq!(err, "address 127.0.0.1 is denied");
    }

    #[test]
    fn public_addresses_and_names_are_allowed() {
        let p = default_policy();
        assert!(p.ip_allowed("93.184.216.34".parse().unwrap()));
        assert!(p.host_allowed("93.184.216.34"));
        assert!(p.host_allowed("[2606:2800:220:1:248:1893:25c8:1946]"));
        assert!(p.host_allowed("::ffff:93.184.216.34"));
        assert!(p.host_allowed("example.com"));
        assert!(p.host_allowed("localhost.example.com"));
        assert!(p.host_allowed("notlocalhost"));
        for url in [
            "https://example.com/path?q=1",
            "http://93.184.216.34:8080/",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
        ] {
            assert_eq!(p.check_url(&Url::parse(url).unwrap()), Ok(()), "{url}");
        }
    }

    #[test]
    fn localhost_names_are_denied() {
        let p = default_policy();
        for host in ["localhost", "foo.localhost", "LOCALHOST.", "Foo.LocalHost", "a.b.localhost."] {
            assert!(!p.host_allowed(host), "{host} should be denied");
        }
        assert!(!p.host_allowed(""));
        let err = p.check_url(&Url::parse("http://LOCALHOST.:8080/").unwrap()).unwrap_err();
        assert_eq!(err, "host localhost is denied");
    }

    #[test]
    fn only_http_and_https() {
        let p = NetPolicy::parse("", "").unwrap();
        for url in ["ftp://example.com/", "file:///etc/passwd", "gopher://x/"] {
            let err = p.check_url(&Url::parse(url).unwrap()).unwrap_err();
            assert!(err.contains("unsupported URL scheme"), "{url}: {err}");
        }
    }

    #[test]
    fn mapped_ranges_on_the_lists_are_their_ipv4_ranges() {
        let p = NetPolicy::parse("::ffff:127.0.0.0/104", "").unwrap();
        for ip in ["127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1"] {
            assert!(!p.ip_allowed(ip.parse().unwrap()), "{ip} should be denied");
        }
        assert!(p.ip_allowed("128.0.0.1".parse().unwrap()));
        let p = NetPolicy::parse(DEFAULT_DENY, "[::ffff:127.0.0.0]/104").unwrap();
        assert!(p.ip_allowed("127.0.0.1".parse().unwrap()));
        assert!(!p.ip_allowed("10.0.0.1".parse().unwrap()));
        // Other IPv6 ranges stay IPv6 ranges.
        let p = NetPolicy::parse("2001:db8::/32", "").unwrap();
        assert!(!p.ip_allowed("2001:db8::1".parse().unwrap()));
        assert!(p.ip_allowed("32.1.13.184".parse().unwrap()));
    }

    #[tokio::test]
    async fn configured_names_resolving_only_to_denied_addresses_are_refused() {
        let p = default_policy();
        let url = |u: &str| Url::parse(u).unwrap();
        // A deny list without names: `localhost` is refused for its addresses, as at call time.
        let by_address = NetPolicy::parse("127.0.0.0/8, ::1/128", "").unwrap();
        let err = by_address.check_url_resolved(&url("http://localhost:9/x")).await.unwrap_err();
        assert_eq!(err, "host localhost resolves only to denied addresses");
        // Allowed by name: not looked up. Not resolving: accepted (it may exist later).
        let named = NetPolicy::parse("127.0.0.0/8, ::1/128", "localhost").unwrap();
        assert_eq!(named.check_url_resolved(&url("http://localhost:9/x")).await, Ok(()));
        assert_eq!(p.check_url_resolved(&url("https://does-not-resolve.invalid/")).await, Ok(()));
        // What check_url refuses stays refused.
        assert!(p.check_url_resolved(&url("http://127.1/")).await.is_err());
    }

    #[test]
    fn allow_list_overrides_deny_list() {
        let p = NetPolicy::parse(DEFAULT_DENY, "127.0.0.1").unwrap();
        assert!(p.ip_allowed("127.0.0.1".parse().unwrap()));
        assert!(p.ip_allowed("::ffff:127.0.0.1".parse().unwrap()));
        assert!(p.host_allowed("127.1"));
        assert!(!p.ip_allowed("127.0.0.2".parse().unwrap()));

        let p = NetPolicy::parse(DEFAULT_DENY, "127.0.0.0/8").unwrap();
        assert!(p.ip_allowed("127.0.0.1".parse().unwrap()));
        assert!(p.ip_allowed("127.9.9.9".parse().unwrap()));
        assert!(!p.ip_allowed("10.0.0.1".parse().unwrap()));

        let p = NetPolicy::parse(DEFAULT_DENY, "localhost, *.svc.localhost").unwrap();
        assert!(p.host_allowed("localhost"));
        assert!(p.host_allowed("api.svc.localhost"));
        assert!(!p.host_allowed("foo.localhost"));
    }

    #[test]
    fn redirect_checks() {
        let p = NetPolicy::parse(DEFAULT_DENY, "127.0.0.1").unwrap();
        let u = |s: &str| Url::parse(s).unwrap();
        let https = [u("https://example.com/")];
        let err = check_redirect(&p, &u("http://example.com/"), &https).unwrap_err();
        assert!(err.contains("https to http"), "{err}");
        assert_eq!(check_redirect(&p, &u("https://example.org/"), &https), Ok(()));
        let http = [u("http://example.com/")];
        assert_eq!(check_redirect(&p, &u("https://example.org/"), &http), Ok(()));
        assert_eq!(check_redirect(&p, &u("http://127.0.0.1/"), &http), Ok(()));
        let err = check_redirect(&p, &u("http://10.0.0.1/"), &http).unwrap_err();
        assert!(err.starts_with("address 10.0.0.1 is denied"), "{err}");
        let err = check_redirect(&p, &u("ftp://example.org/"), &http).unwrap_err();
        assert!(err.contains("unsupported URL scheme"), "{err}");
        let five: Vec<Url> = (0..=MAX_REDIRECTS).map(|_| u("http://example.com/")).collect();
        assert!(check_redirect(&p, &u("http://example.com/"), &five[..MAX_REDIRECTS]).is_ok());
        let err = check_redirect(&p, &u("http://example.com/"), &five).unwrap_err();
        assert!(err.contains("too many redirects"), "{err}");
    }

    #[test]
    fn fetch_request_deserializes() {
        let req: FetchRequest =
            serde_json::from_str(r#"{"url":"https://example.com","headers":{"X-A":["1","2"]},"body":"{}"}"#).unwrap();
        assert_eq!(req.url, "https://example.com");
        assert_eq!(req.method, None);
        assert_eq!(req.headers.unwrap()["X-A"], vec!["1", "2"]);
        assert_eq!(req.body.as_deref(), Some("{}"));
        let req: FetchRequest = serde_json::from_str(r#"{"url":"x"}"#).unwrap();
        assert!(req.headers.is_none() && req.body.is_none());
    }

    #[test]
    fn invalid_requests_are_errors() {
        let p = NetPolicy::parse("", "").unwrap();
        let client = blocking_client(Arc::new(p.clone())).unwrap();
        let err = fetch_blocking(&client, &p, get("not a url")).unwrap_err();
        assert!(err.starts_with("fetch: invalid URL"), "{err}");
        let mut req = get("http://example.com/");
        req.method = Some("TRACE".into());
        assert!(fetch_blocking(&client, &p, req).is_err());
        let mut req = get("http://example.com/");
        req.method = Some("BAD METHOD".into());
        assert!(fetch_blocking(&client, &p, req).is_err());
        let mut req = get("http://example.com/");
        let many: BTreeMap<String, Vec<String>> =
            (0..30_000).map(|i| (format!("x-h{i}"), vec!["v".to_string()])).collect();
        let err = fetch_with(
            NetPolicy::parse(DEFAULT_DENY, "").unwrap(),
            FetchRequest { headers: Some(many), ..get("https://example.com/") },
        )
        .unwrap_err();
        assert_eq!(err, "fetch: too many headers (30000; at most 1000)");
        req.headers = Some(BTreeMap::from([("bad name".into(), vec!["x".into()])]));
        let err = fetch_blocking(&client, &p, req).unwrap_err();
        assert!(err.contains("invalid header name"), "{err}");
    }

    // --- live tests against a loopback server ------------------------------

    #[test]
    fn default_policy_refuses_loopback_server() {
        let (port, rx) = serve(|_, _| response("200 OK", &[], b"secret"));
        let err = fetch_with(default_policy(), get(&format!("http://127.0.0.1:{port}/"))).unwrap_err();
        assert_eq!(err, "fetch: address 127.0.0.1 is denied");
        assert!(rx.try_recv().is_err(), "no request may reach the server");
    }

    #[test]
    fn allow_listed_server_works() {
        let (port, rx) = serve(|_, _| {
            response(
                "201 Created",
                &[
                    ("X-Test", "one"),
                    ("Set-Cookie", "a=1"),
                    ("Set-Cookie", "b=2"),
                    ("Content-Type", "application/json"),
                ],
                b"{\"ok\":true}",
            )
        });
        let req = FetchRequest {
            url: format!("http://127.0.0.1:{port}/hook?x=1"),
            method: Some("post".into()),
            headers: Some(BTreeMap::from([
                ("X-Multi".into(), vec!["a".into(), "b".into()]),
                ("Content-Type".into(), vec!["text/plain".into()]),
                ("Host".into(), vec!["localhost".into()]),
                ("content-length".into(), vec!["3".into()]),
            ])),
            body: Some("{\"hello\":1}".into()),
        };
        let policy = NetPolicy::parse(DEFAULT_DENY, "127.0.0.1").unwrap();
        let resp = fetch_with(policy, req).unwrap();
        assert_eq!(resp.status, 201);
        assert_eq!(resp.body, "{\"ok\":true}");
        assert_eq!(resp.headers["x-test"], "one");
        assert_eq!(resp.headers["set-cookie"], "a=1, b=2");
        assert_eq!(resp.headers["content-type"], "application/json");
        assert!(resp.headers.keys().all(|k| *k == k.to_ascii_lowercase()));

        let seen = rx.recv().unwrap();
        assert_eq!(seen.request_line(), "POST /hook?x=1 HTTP/1.1");
        assert_eq!(seen.body, b"{\"hello\":1}");
        let multi = seen.header_values("x-multi");
        assert!(multi == ["a", "b"] || multi == ["a, b"], "{multi:?}");
        // a script's Host and framing headers are not sent: the URL and the body decide them
        assert_eq!(seen.header_values("host"), [format!("127.0.0.1:{port}")]);
        assert_eq!(seen.header_values("content-length"), ["11"]);
        // given headers replace the defaults entirely
        assert_eq!(seen.header_values("content-type"), ["text/plain"]);
        assert!(!seen.header_values("accept").contains(&"application/json".to_owned()));
    }

    #[test]
    fn default_headers_and_non_2xx() {
        let (port, rx) = serve(|_, _| response("404 Not Found", &[], b"nope"));
        let policy = NetPolicy::parse(DEFAULT_DENY, "127.0.0.0/8").unwrap();
        let resp = fetch_with(policy, get(&format!("http://127.0.0.1:{port}/missing"))).unwrap();
        assert_eq!(resp.status, 404);
        assert_eq!(resp.body, "nope");
        let seen = rx.recv().unwrap();
        assert_eq!(seen.request_line(), "GET /missing HTTP/1.1");
        assert_eq!(seen.header_values("content-type"), ["application/json"]);
        assert_eq!(seen.header_values("accept"), ["application/json"]);
    }

    #[test]
    fn redirects_are_followed_and_checked() {
        let (port, rx) = serve(|port, seen| match seen.request_line() {
            l if l.starts_with("GET /start ") => response("302 Found", &[("Location", "/final")], b""),
            l if l.starts_with("GET /final ") => response("200 OK", &[], b"done"),
            l if l.starts_with("GET /to-denied-ip ") => {
                let loc = format!("http://127.0.0.2:{port}/final");
                response("302 Found", &[("Location", &loc)], b"")
            }
            l if l.starts_with("GET /to-denied-name ") => {
                let loc = format!("http://localhost:{port}/final");
                response("302 Found", &[("Location", &loc)], b"")
            }
            _ => response("500 Internal Server Error", &[], b""),
        });
        let policy = || NetPolicy::parse(DEFAULT_DENY, "127.0.0.1").unwrap();
        let base = format!("http://127.0.0.1:{port}");

        let resp = fetch_with(policy(), get(&format!("{base}/start"))).unwrap();
        assert_eq!((resp.status, resp.body.as_str()), (200, "done"));
        assert!(rx.recv().unwrap().request_line().contains("/start"));
        assert!(rx.recv().unwrap().request_line().contains("/final"));

        let err = fetch_with(policy(), get(&format!("{base}/to-denied-ip"))).unwrap_err();
        assert!(err.starts_with("fetch: address 127.0.0.2 is denied"), "{err}");
        let err = fetch_with(policy(), get(&format!("{base}/to-denied-name"))).unwrap_err();
        assert!(err.starts_with("fetch: host localhost is denied"), "{err}");
        // only the redirecting requests reached the server
        assert!(rx.recv().unwrap().request_line().contains("/to-denied-ip"));
        assert!(rx.recv().unwrap().request_line().contains("/to-denied-name"));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn too_many_redirects_fail() {
        let (port, rx) = serve(|_, seen| {
            let n: u32 =
                seen.request_line().split(' ').nth(1).and_then(|p| p.trim_start_matches('/').parse().ok()).unwrap_or(0);
            let loc = format!("/{}", n + 1);
            response("302 Found", &[("Location", &loc)], b"")
        });
        let policy = NetPolicy::parse(DEFAULT_DENY, "127.0.0.1").unwrap();
        let err = fetch_with(policy, get(&format!("http://127.0.0.1:{port}/0"))).unwrap_err();
        assert!(err.contains("too many redirects"), "{err}");
        // the initial request plus exactly MAX_REDIRECTS followed hops (the server thread records
        // each request after answering it, so wait for the records rather than counting at once)
        for hop in 0..=MAX_REDIRECTS {
            let seen = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("request recorded");
            assert!(seen.request_line().contains(&format!("GET /{hop} ")), "{}", seen.request_line());
        }
        assert!(rx.try_recv().is_err(), "no request after the refused hop");
    }

    #[test]
    fn name_resolving_to_denied_address_is_refused() {
        let (port, rx) = serve(|_, _| response("200 OK", &[], b"secret"));
        // `localhost` is not on the name list, but its addresses are denied
        let policy = NetPolicy::parse("127.0.0.0/8, ::1/128", "").unwrap();
        let url = format!("http://localhost:{port}/");
        assert_eq!(policy.check_url(&Url::parse(&url).unwrap()), Ok(()));
        let err = fetch_with(policy, get(&url)).unwrap_err();
        // The script learns that the name is refused, not which address it has.
        assert_eq!(err, "fetch: host localhost resolves to a denied address");
        assert!(rx.try_recv().is_err(), "no request may reach the server");

        // explicitly allow-listing the name permits its addresses
        let policy = NetPolicy::parse("127.0.0.0/8, ::1/128", "localhost").unwrap();
        let resp = fetch_with(policy, get(&url)).unwrap();
        assert_eq!(resp.body, "secret");
    }

    #[test]
    fn resolver_filters_denied_addresses() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let p = NetPolicy::parse("::1/128", "").unwrap();
            let addrs = p.resolve("localhost", 8080).await.unwrap();
            assert!(!addrs.is_empty());
            assert!(addrs.iter().all(|a| a.ip().is_ipv4() && a.port() == 8080));
            let p = default_policy();
            let err = p.resolve("localhost", 80).await.unwrap_err();
            assert_eq!(err, "host localhost is denied");
            let err = p.resolve("0x7f.1", 80).await.unwrap_err();
            assert_eq!(err, "address 127.0.0.1 is denied");
            let ok = p.resolve("93.184.216.34", 80).await.unwrap();
            assert_eq!(ok, vec!["93.184.216.34:80".parse().unwrap()]);
            let err = p.resolve("no-such-host.invalid", 80).await.unwrap_err();
            assert!(err.starts_with("could not resolve host"), "{err}");
        });
    }

    #[test]
    fn body_over_cap_with_content_length_fails() {
        let big = vec![b'a'; MAX_BODY_BYTES + 1];
        let (port, _rx) = serve(move |_, _| response("200 OK", &[], &big));
        let policy = NetPolicy::parse(DEFAULT_DENY, "127.0.0.1").unwrap();
        let err = fetch_with(policy, get(&format!("http://127.0.0.1:{port}/"))).unwrap_err();
        assert!(err.contains("response body exceeds"), "{err}");
    }

    #[test]
    fn body_over_cap_without_content_length_fails() {
        let (port, _rx) = serve(|_, _| {
            let mut out = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
            out.resize(out.len() + MAX_BODY_BYTES + 1, b'b');
            out
        });
        let policy = NetPolicy::parse(DEFAULT_DENY, "127.0.0.1").unwrap();
        let err = fetch_with(policy, get(&format!("http://127.0.0.1:{port}/"))).unwrap_err();
        assert!(err.contains("response body exceeds"), "{err}");
    }

    #[test]
    fn body_at_cap_is_fine() {
        let exact = vec![b'c'; MAX_BODY_BYTES];
        let (port, _rx) = serve(move |_, _| response("200 OK", &[], &exact));
        let policy = NetPolicy::parse(DEFAULT_DENY, "127.0.0.1").unwrap();
        let resp = fetch_with(policy, get(&format!("http://127.0.0.1:{port}/"))).unwrap();
        assert_eq!(resp.body.len(), MAX_BODY_BYTES);
    }

    #[test]
    fn connection_refused_is_an_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let policy = NetPolicy::parse(DEFAULT_DENY, "127.0.0.1").unwrap();
        let err = fetch_with(policy, get(&format!("http://127.0.0.1:{port}/"))).unwrap_err();
        assert!(err.starts_with("fetch: connection failed: "), "{err}");
        assert!(err.to_ascii_lowercase().contains("refused"), "{err}");
    }

    #[tokio::test]
    async fn async_client_is_guarded() {
        let (port, _rx) = serve(|_, _| response("200 OK", &[("X-A", "1")], b"async"));
        let policy = Arc::new(NetPolicy::parse(DEFAULT_DENY, "127.0.0.1").unwrap());
        let client = async_client(Arc::clone(&policy), Some(Duration::from_secs(10))).unwrap();
        let resp = fetch_async(&client, &policy, get(&format!("http://127.0.0.1:{port}/"))).await.unwrap();
        assert_eq!((resp.status, resp.body.as_str()), (200, "async"));
        assert_eq!(resp.headers["x-a"], "1");

        let err = fetch_async(&client, &policy, get(&format!("http://localhost:{port}/"))).await.unwrap_err();
        assert_eq!(err, "fetch: host localhost is denied");

        // bypass the pre-check: the resolver alone must refuse the name
        let policy = Arc::new(NetPolicy::parse("127.0.0.0/8, ::1/128", "").unwrap());
        let client = async_client(Arc::clone(&policy), None).unwrap();
        let err = client.get(format!("http://localhost:{port}/")).send().await.unwrap_err();
        assert!(describe_error(&err).contains("resolves to a denied address"), "{err}");
    }
}
