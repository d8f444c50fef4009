//! The seam through which the validator looks up, and may create, the local user an
//! external token names. The users service implements it; the validator holds it
//! weakly (the service owns the validator).

use std::future::Future;
use std::pin::Pin;

/// A local user as the validator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalUser {
    pub id: String,
    pub username: String,
    pub active: bool,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Finds users by name and creates passwordless ones.
pub trait Provisioner: Send + Sync {
    /// The user named `username`, if any. `Err` is a store failure.
    fn find<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<LocalUser>, String>>;

    /// Creates `username` without a password and without scopes of its own (an
    /// external user's scopes come from its tokens). `Err` says why it could not.
    fn create<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<LocalUser, String>>;
}
