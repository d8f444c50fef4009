//! Revocation state in memory, so validating a token never asks the store: revoked
//! access tokens (jti), revoked refresh families (their access tokens carry the family as
//! `sid`), the active users and registered clients (a token's `sub` must be one),
//! disabled users, removed users and clients, revoked API keys. Loaded from the store at
//! start ([`Revocations::load`]), then fed every change of the store's `revocation_log`,
//! this process's own at once and other processes' by polling (see [`super::validator`]).
//! A `sub` it has not heard of yet (created a moment ago by another process) is
//! [`Standing::Unknown`]: the validator asks the store once and [`Revocations::learn`]s it.
//!
//! Bounded: a revoked jti is kept until its `exp`; a family or a removed user or client
//! for the horizon (access token lifetime plus leeway, after which every token issued
//! before the change has expired); active and disabled users, clients and revoked API
//! keys are rows of their tables, so there are never more than the store holds.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{AuthError, Claims};
use crate::users::store::{Change, ChangeKind, RevocationSnapshot};

/// Looked up on every cached REGISTER: seeded foldhash rather than SipHash.
type Hasher = foldhash::fast::RandomState;
type Until = HashMap<String, i64, Hasher>;
type Ids = HashSet<String, Hasher>;

#[derive(Debug, Default)]
struct Sets {
    /// Revoked jti → its token's `exp`.
    jtis: Until,
    /// Revoked family → when its last access token has surely expired.
    families: Until,
    /// Removed user or client id → until when its tokens may still be presented.
    gone: Until,
    /// Active users and registered clients.
    active: Ids,
    disabled: Ids,
    api_keys: Ids,
}

/// What the state knows of claims that are not revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Their subject is an active user or a registered client.
    Known,
    /// Their subject is not known here yet: ask the store.
    Unknown,
}

/// Which cached verdicts a change makes stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    Jti(String),
    Sid(String),
    /// A user's or client's (`sub`).
    Sub(String),
    ApiKey(String),
    /// The key ring changed: reload it (cached verdicts stand: a retiring key still
    /// verifies until every token it signed has expired).
    Keys,
    /// A subject became usable: no cached verdict concerns it.
    Nothing,
}

/// The in-memory revocation state.
#[derive(Debug)]
pub struct Revocations {
    sets: RwLock<Sets>,
    /// How long a family or a removed principal matters after the change, in seconds.
    horizon: i64,
    /// Changes applied so far: a store answer older than a change is not learnt.
    epoch: AtomicU64,
}

impl Revocations {
    pub fn new(horizon_secs: i64) -> Revocations {
        Revocations {
            sets: RwLock::new(Sets::default()),
            horizon: horizon_secs.max(1),
            epoch: AtomicU64::new(0),
        }
    }

    /// The horizon this state keeps families and removed principals for.
    pub fn horizon(&self) -> i64 {
        self.horizon
    }

    /// Takes what the tables say (before the log's rows are applied).
    pub fn load(&self, snap: RevocationSnapshot) {
        self.write(|s| {
            s.jtis.extend(snap.jtis);
            s.disabled.extend(snap.disabled_users);
            s.active.extend(snap.active);
            s.api_keys.extend(snap.revoked_api_keys);
        });
    }

    /// Applies one change of the log; returns which cached verdicts it makes stale.
    /// Applying a change twice is harmless (own changes arrive again by polling).
    pub fn apply(&self, c: &Change) -> Stale {
        let until = if c.expires_at > 0 {
            c.expires_at
        } else {
            c.created_at.saturating_add(self.horizon)
        };
        let subject = c.subject.clone();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match c.kind {
            ChangeKind::Jti => {
                self.write(|s| s.jtis.insert(subject.clone(), until));
                Stale::Jti(subject)
            }
            ChangeKind::Family => {
                self.write(|s| s.families.insert(subject.clone(), until));
                Stale::Sid(subject)
            }
            // Nothing cached names a subject that was unknown or disabled.
            ChangeKind::UserCreated | ChangeKind::ClientCreated | ChangeKind::UserEnabled => {
                self.write(|s| {
                    s.disabled.remove(&subject);
                    s.active.insert(subject)
                });
                Stale::Nothing
            }
            ChangeKind::UserDisabled => {
                self.write(|s| {
                    s.active.remove(&subject);
                    s.disabled.insert(subject.clone())
                });
                Stale::Sub(subject)
            }
            ChangeKind::UserDeleted | ChangeKind::ClientDeleted => {
                self.write(|s| {
                    s.active.remove(&subject);
                    s.disabled.remove(&subject);
                    s.gone.insert(subject.clone(), until)
                });
                Stale::Sub(subject)
            }
            ChangeKind::UserChanged => Stale::Sub(subject),
            ChangeKind::ApiKey => {
                self.write(|s| s.api_keys.insert(subject.clone()));
                Stale::ApiKey(subject)
            }
            ChangeKind::ApiKeyChanged => Stale::ApiKey(subject),
            ChangeKind::SigningKeys => Stale::Keys,
        }
    }

    /// Whether `claims` (valid otherwise) stand at `now`: not revoked, their API key not
    /// revoked, their user or client neither disabled nor removed, and known to be active
    /// (else `Unknown`).
    pub fn check(&self, claims: &Claims, now: i64) -> Result<Standing, AuthError> {
        let Ok(s) = self.sets.read() else {
            return Err(AuthError::Unavailable(
                "revocation state poisoned".to_string(),
            ));
        };
        let live = |map: &Until, k: &str| map.get(k).is_some_and(|u| *u >= now);
        if (!claims.jti.is_empty() && live(&s.jtis, &claims.jti))
            || claims.sid.as_deref().is_some_and(|f| live(&s.families, f))
            || claims
                .api_key_id
                .as_deref()
                .is_some_and(|k| s.api_keys.contains(k))
        {
            return Err(AuthError::Revoked);
        }
        if s.disabled.contains(&claims.sub) || live(&s.gone, &claims.sub) {
            return Err(AuthError::UserDisabled);
        }
        Ok(if s.active.contains(&claims.sub) {
            Standing::Known
        } else {
            Standing::Unknown
        })
    }

    /// The count of changes applied; take it before asking the store about a subject.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Records that the store called `sub` active, unless a change arrived since `epoch`
    /// (the answer may predate it; the next sighting asks again).
    pub fn learn(&self, sub: &str, epoch: u64) {
        self.write(|s| {
            if self.epoch.load(Ordering::Acquire) == epoch {
                s.active.insert(sub.to_string());
            }
        });
    }

    /// Forgets entries past their time.
    pub fn prune(&self, now: i64) {
        self.write(|s| {
            s.jtis.retain(|_, u| *u >= now);
            s.families.retain(|_, u| *u >= now);
            s.gone.retain(|_, u| *u >= now);
        });
    }

    /// Entries held (for the bounds test and the operator's gauge).
    pub fn len(&self) -> usize {
        self.sets.read().map_or(0, |s| {
            s.jtis.len()
                + s.families.len()
                + s.gone.len()
                + s.active.len()
                + s.disabled.len()
                + s.api_keys.len()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write<T>(&self, f: impl FnOnce(&mut Sets) -> T) -> T {
        match self.sets.write() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, jti: &str, sid: Option<&str>) -> Claims {
        Claims {
            sid: sid.map(str::to_string),
            ..Claims::for_test(sub, jti, 2_000)
        }
    }

    fn change(kind: ChangeKind, subject: &str, expires_at: i64) -> Change {
        Change::new(kind, subject, expires_at, 1_000)
    }

    const KNOWN: Result<Standing, AuthError> = Ok(Standing::Known);

    #[test]
    fn each_kind_refuses_what_it_names_and_nothing_else() {
        let r = Revocations::new(900);
        let ok = claims("alice", "j0", Some("f0"));
        assert_eq!(r.check(&ok, 1_000), Ok(Standing::Unknown));
        r.apply(&change(ChangeKind::UserCreated, "alice", 0));
        r.apply(&change(ChangeKind::UserCreated, "bob", 0));
        assert_eq!(r.check(&ok, 1_000), KNOWN);
        assert_eq!(
            r.apply(&change(ChangeKind::Jti, "j1", 1_500)),
            Stale::Jti("j1".into())
        );
        r.apply(&change(ChangeKind::Family, "f1", 0));
        r.apply(&change(ChangeKind::UserDisabled, "bob", 0));
        r.apply(&change(ChangeKind::UserDeleted, "carol", 0));
        r.apply(&change(ChangeKind::ApiKey, "k1", 0));
        assert_eq!(
            r.check(&claims("alice", "j1", None), 1_000),
            Err(AuthError::Revoked)
        );
        assert_eq!(
            r.check(&claims("alice", "j2", Some("f1")), 1_000),
            Err(AuthError::Revoked)
        );
        assert_eq!(
            r.check(&claims("bob", "j2", None), 1_000),
            Err(AuthError::UserDisabled)
        );
        assert_eq!(
            r.check(&claims("carol", "j2", None), 1_000),
            Err(AuthError::UserDisabled)
        );
        let mut key = claims("alice", "", None);
        key.api_key_id = Some("k1".into());
        assert_eq!(r.check(&key, 1_000), Err(AuthError::Revoked));
        assert_eq!(r.check(&ok, 1_000), KNOWN, "others unaffected");
        // Enabled again: accepted again.
        r.apply(&change(ChangeKind::UserEnabled, "bob", 0));
        assert_eq!(r.check(&claims("bob", "j2", None), 1_000), KNOWN);
        // Claims changes revoke nothing, they only make cached verdicts stale.
        assert_eq!(
            r.apply(&change(ChangeKind::UserChanged, "alice", 0)),
            Stale::Sub("alice".into())
        );
        assert_eq!(r.check(&ok, 1_000), KNOWN);
    }

    #[test]
    fn a_store_answer_older_than_a_change_is_not_learnt() {
        let r = Revocations::new(900);
        let c = claims("dan", "", None);
        let before = r.epoch();
        r.learn("dan", before);
        assert_eq!(r.check(&c, 1_000), KNOWN);
        let r = Revocations::new(900);
        let before = r.epoch();
        // Disabled while the store was being asked: the (older) answer is dropped.
        r.apply(&change(ChangeKind::UserDisabled, "dan", 0));
        r.learn("dan", before);
        assert_eq!(r.check(&c, 1_000), Err(AuthError::UserDisabled));
    }

    #[test]
    fn entries_last_until_their_tokens_have_expired_then_go() {
        let r = Revocations::new(900);
        r.apply(&change(ChangeKind::Jti, "j1", 1_500));
        r.apply(&change(ChangeKind::Family, "f1", 0));
        r.apply(&change(ChangeKind::UserDeleted, "carol", 0));
        r.apply(&change(ChangeKind::UserDisabled, "bob", 0));
        assert_eq!(r.len(), 4);
        r.prune(1_500);
        assert_eq!(r.len(), 4, "nothing before its time");
        assert_eq!(
            r.check(&claims("x", "", Some("f1")), 1_900),
            Err(AuthError::Revoked)
        );
        r.prune(1_901);
        // The family and the removed user passed the horizon, the jti its exp; a
        // disabled user stays disabled.
        assert_eq!(r.len(), 1);
        assert_eq!(
            r.check(&claims("bob", "", None), 5_000),
            Err(AuthError::UserDisabled)
        );
    }

    #[test]
    fn the_tables_snapshot_is_loaded() {
        let r = Revocations::new(900);
        r.load(RevocationSnapshot {
            jtis: vec![("j1".into(), 1_500)],
            disabled_users: vec!["bob".into()],
            active: vec!["alice".into()],
            revoked_api_keys: vec![],
        });
        assert_eq!(
            r.check(&claims("alice", "j1", None), 1_000),
            Err(AuthError::Revoked)
        );
        assert_eq!(
            r.check(&claims("bob", "j2", None), 1_000),
            Err(AuthError::UserDisabled)
        );
        assert_eq!(r.check(&claims("alice", "j2", None), 1_000), KNOWN);
    }
}
