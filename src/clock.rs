//! Wall-clock time in Unix seconds, the unit binding expiry, token `exp` and nonce ages are
//! kept in. Its own module because every layer above the transports reads it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
