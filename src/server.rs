//! The server: binds the transports and dispatches requests to their handlers.

use crate::config::Config;

/// Runs until SIGINT or SIGTERM, then shuts down cleanly.
pub async fn run_until_signal(_config: Config) -> std::io::Result<()> {
    Ok(())
}
