//! The event state compositor's store (RFC 3903 §6): the live publications of each AOR,
//! each under an entity-tag that changes on every successful PUBLISH, with expiry on a
//! deadline queue (the registrar's [`ExpiryQueue`]).
//!
//! Publications are kept per AOR in a short vector (one per publishing device), so an
//! entity-tag is looked up within the Request-URI's AOR only: a tag of another AOR is
//! as unknown as an expired one (412).

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::compose::Publication;
use super::model::Presence;
use crate::registrar::Aor;
use crate::registrar::expiry::ExpiryQueue;

/// One stored publication.
#[derive(Debug, Clone)]
struct Stored {
    id: u64,
    etag: String,
    publication: Publication,
    /// Unix seconds.
    expires_at: u64,
}

/// What a PUBLISH with `SIP-If-Match` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated {
    /// Refreshed or replaced: the new entity-tag, and whether the document changed.
    Kept { etag: String, body_changed: bool },
    /// `Expires: 0`: the publication is gone.
    Removed,
}

/// Every live publication, by AOR.
#[derive(Default)]
pub struct Publications {
    by_aor: DashMap<Aor, Vec<Stored>>,
    expiry: ExpiryQueue,
    next_id: AtomicU64,
}

/// A fresh entity-tag: 64 random bits in hex (a token, RFC 3903 §11.3).
fn new_etag() -> String {
    let mut b = [0u8; 8];
    rand::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Publications {
    pub fn new() -> Publications {
        Publications::default()
    }

    /// Stores a new publication (PUBLISH without `SIP-If-Match`); returns its entity-tag,
    /// or `None` when `aor` already has `max` live publications.
    pub fn create(
        &self,
        aor: &Aor,
        doc: Presence,
        expires: u32,
        now: u64,
        max: usize,
    ) -> Option<String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let etag = new_etag();
        let expires_at = now + u64::from(expires);
        let mut list = self.by_aor.entry(aor.clone()).or_default();
        // Expired ones not yet swept do not count.
        if list.iter().filter(|s| s.expires_at > now).count() >= max {
            return None;
        }
        list.push(Stored {
            id,
            etag: etag.clone(),
            publication: Publication {
                doc,
                published_at: now,
            },
            expires_at,
        });
        drop(list);
        self.expiry.schedule(expires_at, id, aor.clone());
        Some(etag)
    }

    /// Refreshes (`doc: None`), replaces or removes (`expires == 0`) the publication of
    /// `aor` tagged `etag`. `None` when there is no such live publication (412).
    pub fn update(
        &self,
        aor: &Aor,
        etag: &str,
        doc: Option<Presence>,
        expires: u32,
        now: u64,
    ) -> Option<Updated> {
        let mut list = self.by_aor.get_mut(aor)?;
        let i = list
            .iter()
            .position(|s| s.etag == etag && s.expires_at > now)?;
        if expires == 0 {
            list.remove(i);
            let empty = list.is_empty();
            drop(list);
            if empty {
                self.by_aor.remove_if(aor, |_, v| v.is_empty());
            }
            return Some(Updated::Removed);
        }
        let s = &mut list[i];
        s.etag = new_etag();
        s.expires_at = now + u64::from(expires);
        let body_changed = doc.is_some();
        if let Some(doc) = doc {
            s.publication = Publication {
                doc,
                published_at: now,
            };
        }
        let (id, at, etag) = (s.id, s.expires_at, s.etag.clone());
        drop(list);
        self.expiry.schedule(at, id, aor.clone());
        Some(Updated::Kept { etag, body_changed })
    }

    /// The live publications of `aor`.
    pub fn live(&self, aor: &Aor, now: u64) -> Vec<Publication> {
        self.by_aor
            .get(aor)
            .map(|v| {
                v.iter()
                    .filter(|s| s.expires_at > now)
                    .map(|s| s.publication.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of live publications in all.
    pub fn len(&self) -> usize {
        self.by_aor.iter().map(|e| e.value().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the publications due at `now`; returns the AORs that lost one.
    pub fn expire_due(&self, now: u64) -> Vec<Aor> {
        let mut changed: Vec<Aor> = Vec::new();
        for (id, aor) in self.expiry.due(now) {
            let Some(mut list) = self.by_aor.get_mut(&aor) else {
                continue;
            };
            let before = list.len();
            // A refreshed publication has a later deadline queued: only a due one goes.
            list.retain(|s| s.id != id || s.expires_at > now);
            let (gone, empty) = (list.len() < before, list.is_empty());
            drop(list);
            if empty {
                self.by_aor.remove_if(&aor, |_, v| v.is_empty());
            }
            if gone && !changed.contains(&aor) {
                changed.push(aor);
            }
        }
        changed
    }

    /// Waits until the next deadline (or an earlier one is scheduled).
    pub async fn wait(&self) {
        self.expiry.wait().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(entity: &str) -> Presence {
        Presence {
            entity: entity.to_string(),
            ..Presence::default()
        }
    }

    #[test]
    fn etag_lifecycle() {
        let p = Publications::new();
        let aor = Aor::parse("sip:alice@example.com").unwrap();
        let other = Aor::parse("sip:bob@example.com").unwrap();
        let e1 = p.create(&aor, doc("a"), 60, 1000, 8).unwrap();
        assert_eq!(p.live(&aor, 1000).len(), 1);
        // Another AOR does not know the tag.
        assert_eq!(p.update(&other, &e1, None, 60, 1001), None);
        let Some(Updated::Kept {
            etag: e2,
            body_changed,
        }) = p.update(&aor, &e1, None, 60, 1001)
        else {
            panic!("refresh failed");
        };
        assert!(!body_changed);
        assert_ne!(e1, e2);
        // The old tag is spent.
        assert_eq!(p.update(&aor, &e1, None, 60, 1002), None);
        assert_eq!(
            p.update(&aor, &e2, Some(doc("b")), 60, 1002)
                .map(|u| matches!(
                    u,
                    Updated::Kept {
                        body_changed: true,
                        ..
                    }
                )),
            Some(true)
        );
        assert_eq!(p.live(&aor, 1002)[0].doc.entity, "b");
        assert_eq!(p.live(&aor, 1002)[0].published_at, 1002);
    }

    #[test]
    fn removal_and_expiry() {
        let p = Publications::new();
        let aor = Aor::parse("sip:alice@example.com").unwrap();
        let e1 = p.create(&aor, doc("a"), 60, 1000, 8).unwrap();
        let e2 = p.create(&aor, doc("b"), 30, 1000, 8).unwrap();
        assert_eq!(p.update(&aor, &e1, None, 0, 1001), Some(Updated::Removed));
        assert_eq!(p.len(), 1);
        assert!(p.expire_due(1029).is_empty());
        assert_eq!(p.expire_due(1030), vec![aor.clone()]);
        assert!(p.is_empty());
        assert_eq!(p.update(&aor, &e2, None, 60, 1031), None);
    }

    #[test]
    fn publications_per_aor_are_bounded() {
        let p = Publications::new();
        let aor = Aor::parse("sip:alice@example.com").unwrap();
        assert!(p.create(&aor, doc("a"), 60, 1000, 2).is_some());
        assert!(p.create(&aor, doc("b"), 10, 1000, 2).is_some());
        assert!(p.create(&aor, doc("c"), 60, 1000, 2).is_none());
        // Once one has expired there is room again, swept or not.
        assert!(p.create(&aor, doc("c"), 60, 1010, 2).is_some());
    }

    #[test]
    fn a_refresh_outlives_its_old_deadline() {
        let p = Publications::new();
        let aor = Aor::parse("sip:alice@example.com").unwrap();
        let e1 = p.create(&aor, doc("a"), 10, 1000, 8).unwrap();
        assert!(p.update(&aor, &e1, None, 60, 1005).is_some());
        assert!(p.expire_due(1010).is_empty());
        assert_eq!(p.len(), 1);
        assert_eq!(p.expire_due(1065), vec![aor]);
    }
}
