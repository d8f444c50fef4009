//! The server's WebSocket listeners (RFC 7118): bound with the other sockets when
//! `[websocket]` names an address, served by [`crate::transport::ws::serve`] with the
//! core's flows. WSS also needs the TLS side, which the process sets once its
//! certificate is loaded ([`WsListeners::set_tls`]); without it the WSS listener is
//! not served (logged).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Core;
use crate::transport::ws::{self, TlsAccept, WebSocketConfig};
use crate::transport::{Streams, tcp};

/// Bound WebSocket listeners, not yet serving.
#[derive(Default)]
pub struct WsListeners {
    ws: Option<TcpListener>,
    wss: Option<TcpListener>,
    tls: Option<TlsAccept>,
}

impl WsListeners {
    /// Binds what the configuration names (nothing when both addresses are unset).
    pub fn bind(config: &WebSocketConfig) -> std::io::Result<WsListeners> {
        let bind = |a: Option<SocketAddr>, what: &str| {
            a.map(|a| {
                tcp::bind(a).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot bind {what} on {a}: {e}"))
                })
            })
            .transpose()
        };
        Ok(WsListeners {
            ws: bind(config.ws_listen, "WS")?,
            wss: bind(config.wss_listen, "WSS")?,
            tls: None,
        })
    }

    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.wss.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The TLS side of WSS (a new acceptor per connection, so reloads apply).
    pub fn set_tls(&mut self, tls: TlsAccept) {
        self.tls = Some(tls);
    }

    /// Starts serving; the tasks end when `stop` is cancelled.
    pub fn spawn(self, core: &Arc<Core>, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        let config = &core.config.websocket;
        // The WebSocket policy (idle timeout, pings) is in the settings; the cap is the
        // section's own.
        let streams = Streams {
            max_connections: config.max_connections,
            ..core.streams()
        };
        let mut tasks = Vec::new();
        if let Some(l) = self.ws {
            tasks.push(tokio::spawn(ws::serve(
                streams.clone(),
                l,
                None,
                config.settings(),
                stop.clone(),
            )));
        }
        match (self.wss, self.tls) {
            (Some(l), Some(tls)) => tasks.push(tokio::spawn(ws::serve(
                streams,
                l,
                Some(tls),
                config.settings(),
                stop.clone(),
            ))),
            (Some(l), None) => tracing::warn!(
                addr = ?l.local_addr().ok(),
                "WSS not served: no TLS certificate configured"
            ),
            _ => {}
        }
        tasks
    }
}
