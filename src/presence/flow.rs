//! Subscriptions held over a WebSocket end when it closes: the watcher can be reached
//! only over that connection (RFC 7118 §5), so no NOTIFY, not even the final one, could
//! reach it. A subscription refreshed since over another connection stays.

use super::service::PresenceService;
use crate::transport::Transport;

impl PresenceService {
    /// Connection `flow` closed: ends the WebSocket subscriptions whose NOTIFYs went over
    /// it (other transports' entries are only forgotten; their NOTIFYs fail and end them).
    pub fn flow_closed(&self, flow: u64, transport: Transport) {
        let ids = self.subscriptions.take_flow(flow);
        if !transport.is_websocket() {
            return;
        }
        for id in ids {
            if let Some(sub) = self.subscriptions.remove(id) {
                tracing::debug!(presentity = %sub.presentity, flow, "subscription ended: its WebSocket closed");
                self.unwatch(&sub.presentity);
            }
        }
    }
}
