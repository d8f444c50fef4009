//! The domains served (`[sip] domains`), shared by the registrar and presence and
//! replaced whole on reload: requests for other domains are refused.

use std::sync::Arc;

use arc_swap::ArcSwap;

/// Served domains, lower case; none: every domain (a stand-in registrar).
pub struct Domains(ArcSwap<Vec<String>>);

impl Domains {
    pub fn new(domains: Vec<String>) -> Domains {
        Domains(ArcSwap::from_pointee(lower(domains)))
    }

    /// Whether `host` is served.
    pub fn serves(&self, host: &str) -> bool {
        let domains = self.0.load();
        domains.is_empty() || domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }

    /// The domains served by the requests that follow.
    pub fn set(&self, domains: Vec<String>) {
        self.0.store(Arc::new(lower(domains)));
    }
}

fn lower(domains: Vec<String>) -> Vec<String> {
    domains
        .into_iter()
        .map(|d| d.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_serves_all_and_a_change_applies() {
        let d = Domains::new(vec![]);
        assert!(d.serves("anything.example"));
        d.set(vec!["Example.COM".into()]);
        assert!(d.serves("example.com"));
        assert!(!d.serves("other.example"));
    }
}
