//! The `[websocket]` configuration section: where WS and WSS listen and the policy
//! ([`WsSettings`]) both listeners apply.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::WsSettings;

/// `[websocket]`. Both listeners are off unless an address is given.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// SIP over plain WebSocket (`ws://`), e.g. `0.0.0.0:5066`. Unset: off.
    pub ws_listen: Option<SocketAddr>,
    /// SIP over secure WebSocket (`wss://`), e.g. `0.0.0.0:7443`; served only when a TLS
    /// certificate is configured. Unset: off.
    pub wss_listen: Option<SocketAddr>,
    /// Origins allowed to connect (`https://phone.example.com`). Empty: any origin.
    pub origins: Vec<String>,
    /// Largest SIP message in one frame, in octets; larger closes the connection (1009).
    pub max_message_size: usize,
    /// A ping goes out after this many seconds without a frame from the client.
    pub ping_interval_secs: u64,
    /// Close after this many seconds without a frame (nor a pong) from the client.
    pub idle_timeout_secs: u64,
    /// Open WebSocket connections per listener at most.
    pub max_connections: usize,
    /// Open WebSocket connections from one IP address per listener at most.
    pub max_connections_per_ip: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        let s = WsSettings::default();
        WebSocketConfig {
            ws_listen: None,
            wss_listen: None,
            origins: s.origins,
            max_message_size: s.max_message_size,
            ping_interval_secs: s.ping_interval.as_secs(),
            idle_timeout_secs: s.idle_timeout.as_secs(),
            max_connections: 10_000,
            max_connections_per_ip: s.max_connections_per_ip,
        }
    }
}

impl WebSocketConfig {
    /// The listeners' policy (zero durations count as one second).
    pub fn settings(&self) -> WsSettings {
        WsSettings {
            origins: self.origins.clone(),
            max_message_size: self.max_message_size,
            ping_interval: Duration::from_secs(self.ping_interval_secs.max(1)),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            max_connections_per_ip: self.max_connections_per_ip,
        }
    }
}
