//! Argon2id password hashing (PHC strings) and the dummy verification that keeps
//! login time the same whether or not the username exists.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use super::{UsersConfig, UsersError};

/// Hashes and verifies passwords with the configured Argon2id cost.
pub struct PasswordHasherArgon {
    argon: Argon2<'static>,
    /// A hash of a random password, verified against for unknown users.
    dummy: String,
}

impl std::fmt::Debug for PasswordHasherArgon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasherArgon")
    }
}

impl PasswordHasherArgon {
    pub fn new(cfg: &UsersConfig) -> Result<Self, UsersError> {
        let params = Params::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_parallelism,
            None,
        )
        .map_err(|e| UsersError::Invalid(format!("argon2 parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut random = [0u8; 24];
        rand::fill(&mut random);
        let mut hasher = PasswordHasherArgon {
            argon,
            dummy: String::new(),
        };
        hasher.dummy = hasher.hash(&crate::auth::secret::hex(&random))?;
        Ok(hasher)
    }

    /// A PHC string (`$argon2id$v=19$m=...`).
    pub fn hash(&self, password: &str) -> Result<String, UsersError> {
        self.argon
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| UsersError::Internal(format!("password hashing failed: {e}")))
    }

    /// Whether `password` matches `hash`; `None` verifies against the dummy hash so
    /// the time spent does not reveal that the user is missing.
    pub fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let matched = self
            .argon
            .verify_password(password.as_bytes(), hash.unwrap_or(&self.dummy))
            .is_ok();
        matched && hash.is_some()
    }
}
