//! Bearer-token authentication with an in-memory cache, so a request costs no database round trip.
//!
//! The cache holds every token and org id and is reloaded every 500 ms, which bounds how long a
//! token removed on another replica keeps working. A token removed through this replica is
//! dropped from the cache in the same call. Unknown tokens fall back to one database lookup.

use crate::domain::flow::Lang;
use crate::domain::role::{Permission, Role};
use crate::error::{ApiError, ApiResult, Kind};
use crate::store::{orgs, tokens, Store};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

pub const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct CachedToken {
    pub id: i64,
    pub org_id: i64,
    pub role: Role,
    pub expires_at: Option<i64>,
}

/// Who is calling, and in which organization.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: i64,
    pub role: Role,
    /// The token's own organization.
    pub token_org: i64,
    /// The organization the call acts in (`x-zitadel-orgid`, else the token's).
    pub org: i64,
    pub lang: Lang,
}

#[derive(Default)]
pub struct AuthCache {
    tokens: RwLock<HashMap<String, CachedToken>>,
    orgs: RwLock<HashSet<i64>>,
    /// Bumped on every local revocation; a reload that started before it is discarded.
    generation: AtomicU64,
}

fn to_cached(m: entity::token::Model) -> Option<(String, CachedToken)> {
    let role = Role::parse(&m.role)?;
    Some((m.token_hash, CachedToken { id: m.id, org_id: m.org_id, role, expires_at: m.expires_at }))
}

impl AuthCache {
    pub async fn reload(&self, store: &Store) -> ApiResult<()> {
        let generation = self.generation.load(Ordering::SeqCst);
        let tokens: HashMap<String, CachedToken> =
            tokens::all_tokens(&store.db).await?.into_iter().filter_map(to_cached).collect();
        let org_ids: HashSet<i64> = orgs::all_org_ids(&store.db).await?.into_iter().collect();
        let mut guard = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            *guard = tokens;
        }
        drop(guard);
        *self.orgs.write().unwrap_or_else(|e| e.into_inner()) = org_ids;
        Ok(())
    }

    /// Drops a revoked token from the cache at once.
    pub fn revoke(&self, token_id: i64) {
        let mut guard = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        guard.retain(|_, t| t.id != token_id);
    }

    pub fn add_org(&self, id: i64) {
        self.orgs.write().unwrap_or_else(|e| e.into_inner()).insert(id);
    }

    async fn lookup(&self, store: &Store, secret: &str) -> ApiResult<Option<CachedToken>> {
        let hash = tokens::hash_token(secret);
        if let Some(t) = self.tokens.read().unwrap_or_else(|e| e.into_inner()).get(&hash) {
            return Ok(Some(t.clone()));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let Some((hash, token)) = tokens::find_by_hash(&store.db, &hash).await?.and_then(to_cached) else {
            return Ok(None);
        };
        let mut guard = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            guard.insert(hash, token.clone());
        }
        Ok(Some(token))
    }

    async fn org_exists(&self, store: &Store, org: i64) -> ApiResult<bool> {
        if self.orgs.read().unwrap_or_else(|e| e.into_inner()).contains(&org) {
            return Ok(true);
        }
        let exists = orgs::get_org(&store.db, org).await?.is_some();
        if exists {
            self.add_org(org);
        }
        Ok(exists)
    }

    /// Authenticates a request and resolves its organization.
    pub async fn authenticate(
        &self,
        store: &Store,
        authorization: Option<&str>,
        org_header: Option<&str>,
        permission: Permission,
        org_scoped: bool,
        lang: Lang,
    ) -> ApiResult<Caller> {
        let secret = authorization
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::new(Kind::Unauthenticated, "AUTH-7fs1e", "auth header missing"))?;
        let token = self
            .lookup(store, secret)
            .await?
            .ok_or_else(|| ApiError::new(Kind::Unauthenticated, "AUTH-7fs1e", "invalid token"))?;
        if token.expires_at.is_some_and(|exp| exp <= crate::domain::time::now_micros()) {
            return Err(ApiError::new(Kind::Unauthenticated, "AUTH-Tk2ex", "token expired"));
        }
        let mut org = token.org_id;
        if org_scoped {
            if let Some(header) = org_header.map(str::trim).filter(|h| !h.is_empty()) {
                let requested = crate::domain::id::parse(header);
                if requested != Some(token.org_id) {
                    if token.role != Role::IamOwner {
                        return Err(ApiError::permission_denied());
                    }
                    match requested {
                        Some(id) if self.org_exists(store, id).await? => org = id,
                        _ => {
                            return Err(ApiError::new(
                                Kind::PermissionDenied,
                                "AUTH-Bs7Ds",
                                "Organisation doesn't exist",
                            ))
                        }
                    }
                }
            }
        }
        if !permission.allows(token.role) {
            return Err(ApiError::permission_denied());
        }
        Ok(Caller { token_id: token.id, role: token.role, token_org: token.org_id, org, lang })
    }
}
