//! Bench-only bulk provisioning (`sipreg bench-users`): many users sharing one
//! password hashed once (not one Argon2 hash each), and access tokens signed in
//! parallel through the normal signing code.

use std::num::NonZeroUsize;

use super::UsersService;
use crate::auth::now;
use crate::users::store::BulkUsers;
use crate::users::{User, UsersError, digest, policy};

/// The display name that marks bench users.
pub const BENCH_DISPLAY_NAME: &str = "bench user (sipreg bench-users)";

/// Users per transaction: large enough that commits do not dominate, small enough that
/// the server reading the same SQLite file is not held off for long.
const CHUNK: usize = 10_000;

impl UsersService {
    /// The one hash of the bench users' shared `password`, after the password policy.
    pub async fn bench_password_hash(&self, password: &str) -> Result<String, UsersError> {
        policy::check(&self.config.users, "bench", password).map_err(UsersError::WeakPassword)?;
        self.hasher.hash(password).await
    }

    /// Creates the users `names`, all with `password` whose hash is `hash` (from
    /// [`UsersService::bench_password_hash`]: no hash per user), marked with the `bench`
    /// role and [`BENCH_DISPLAY_NAME`]; a name already taken gets the password. Digest
    /// HA1s are stored as for any user.
    pub async fn create_bench_users(
        &self,
        names: &[String],
        password: &str,
        hash: &str,
    ) -> Result<Vec<User>, UsersError> {
        for n in names {
            super::check_name(n)?;
        }
        let roles = vec!["bench".to_string()];
        let scopes = self.config.users.default_scopes.clone();
        let now = now();
        let auth = &self.config.auth;
        let ha1s = |name: &str| {
            if auth.digest_enabled {
                digest::ha1_set(name, &auth.digest_realm, password)
            } else {
                Vec::new()
            }
        };
        let shared = BulkUsers {
            password_hash: hash,
            display_name: BENCH_DISPLAY_NAME,
            roles: &roles,
            scopes: &scopes,
            now,
        };
        let mut users = Vec::with_capacity(names.len());
        for chunk in names.chunks(CHUNK) {
            let ids = self.store.insert_users_bulk(chunk, ha1s, &shared).await?;
            users.extend(chunk.iter().zip(ids).map(|(name, id)| User {
                id,
                username: name.clone(),
                email: None,
                display_name: Some(BENCH_DISPLAY_NAME.to_string()),
                roles: roles.clone(),
                scopes: scopes.clone(),
                active: true,
                created_at: now,
                updated_at: now,
                last_login_at: None,
            }));
        }
        tracing::info!(count = users.len(), "bench users created");
        Ok(users)
    }

    /// `per_user` access tokens living `ttl` seconds for each of `users`, signed with
    /// the current key on every core (the calling thread blocks): `result[i]` are the
    /// tokens of `users[i]`.
    pub fn issue_bench_tokens(
        &self,
        users: &[User],
        per_user: usize,
        ttl: u64,
    ) -> Result<Vec<Vec<String>>, UsersError> {
        let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let chunk = users.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            let parts: Vec<_> = users
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|u| {
                                (0..per_user)
                                    .map(|_| Ok(self.issue_token(u, None, Some(ttl))?.access_token))
                                    .collect::<Result<Vec<_>, UsersError>>()
                            })
                            .collect::<Result<Vec<_>, UsersError>>()
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(users.len());
            for p in parts {
                let tokens = p
                    .join()
                    .map_err(|_| UsersError::Invalid("a signing thread failed".into()))??;
                out.extend(tokens);
            }
            Ok(out)
        })
    }
}
