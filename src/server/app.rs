//! The whole sipreg process: the users service, the registrar (with its bindings loaded
//! from the store), the SIP server and the admin HTTP API, started together and stopped
//! together (SIP first, then pending bindings are written, then HTTP).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Server, Services};
use crate::auth::challenge::ChallengePolicy;
use crate::auth::sip::{SipAuth, SipAuthSettings};
use crate::clock::unix_now;
use crate::config::Config;
use crate::presence::{PresenceHandler, PresenceService};
use crate::registrar::persist::{self, Persister};
use crate::registrar::{Persistence, Registrar, RegistrarHandler};
use crate::transaction::client::Uac;
use crate::users::UsersService;

/// A built, bound sipreg.
pub struct App {
    pub sip: Server,
    /// SIP authentication, when required (its settings change on reload).
    pub auth: Option<Arc<SipAuth>>,
    pub registrar: Arc<Registrar>,
    pub users: Arc<UsersService>,
    pub presence: Arc<PresenceService>,
    /// sipreg's own requests (NOTIFY) go out through this, from the SIP sockets.
    pub uac: Arc<Uac>,
    http: tokio::net::TcpListener,
    /// The public HTTPS listener, when `[http] public_listen` is set.
    public: Option<crate::http::https::HttpsListener>,
    /// The Prometheus recorder's handle; `None` with `[metrics] enabled = false`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl App {
    /// Opens the store, loads bindings, binds SIP and HTTP.
    pub async fn build(config: Config) -> Result<App, String> {
        // Before anything counts (no recorder: every count is a no-op).
        let metrics = if config.metrics.enabled {
            crate::metrics::install()
        } else {
            None
        };
        // First, so a missing or bad certificate stops the start before anything is loaded.
        let tls =
            crate::transport::tls::TlsListener::bind(&config.tls).map_err(|e| e.to_string())?;
        let users = UsersService::open(&config)
            .await
            .map_err(|e| format!("cannot open the store {}: {e}", config.database.url))?;
        // Other processes' revocations (CLI, other nodes), by polling the store's log.
        users.validator().watch();
        let settings = auth_settings(&config.auth)?;
        let auth = if config.auth.required {
            let auth = SipAuth::new(users.clone(), settings);
            auth.set_max_failure_sources(config.limits.max_auth_failure_sources);
            Some(Arc::new(auth))
        } else {
            tracing::warn!(
                "authentication is OFF: anybody may register any address (lab use only)"
            );
            None
        };
        let pool = users.store().pool().clone();
        // In memory only: no writer, and nothing from an earlier run is restored.
        let durable = config.registrar.persistence != Persistence::Memory;
        let persister = durable.then(|| {
            Persister::start(
                pool.clone(),
                Duration::from_millis(config.registrar.batch_max_ms.max(1)),
                config.registrar.batch_max_changes,
                config.registrar.write_behind_max,
            )
        });
        let registrar = Registrar::new(
            config.registrar.clone(),
            config.sip.domains.clone(),
            auth.clone(),
            Some(users.clone()),
            persister,
        );
        if durable {
            // Straight from the store's pages into the table: the rows are never all in
            // memory at once.
            let count =
                persist::load_into(&pool, unix_now(), |aor, b| registrar.restore_one(aor, b))
                    .await
                    .map_err(|e| format!("cannot load bindings: {e}"))?;
            tracing::info!(bindings = count, "bindings loaded");
        } else {
            tracing::warn!("registrar.persistence = \"memory\": bindings are lost on restart");
        }
        release_freed_memory();
        let http = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .map_err(|e| format!("cannot bind the HTTP API on {}: {e}", config.http.listen))?;
        let public = match (config.http.public_listen, &tls) {
            (None, _) => None,
            (Some(addr), None) => {
                return Err(format!(
                    "http.public_listen ({addr}) is HTTPS only: set [tls] cert_file and key_file"
                ));
            }
            (Some(addr), Some(t)) => {
                let tcp = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot bind the public HTTPS listener on {addr}: {e}"))?;
                Some(
                    crate::http::https::HttpsListener::new(
                        tcp,
                        Arc::clone(&t.acceptor),
                        t.limits.handshake_timeout,
                    )
                    .map_err(|e| format!("cannot serve HTTPS on {addr}: {e}"))?,
                )
            }
        };
        let uac = Uac::new(Duration::from_millis(config.sip.t1_ms));
        let presence = PresenceService::new(
            config.presence.clone(),
            config.sip.domains.clone(),
            auth.clone(),
            registrar.clone(),
            Arc::clone(&uac),
        );
        let services = Services::new(vec![
            Arc::new(RegistrarHandler(registrar.clone())),
            Arc::new(PresenceHandler(presence.clone())),
        ]);
        let sip = Server::bind_with(config.clone(), Arc::new(services), Arc::clone(&uac))
            .await
            .map_err(|e| format!("cannot bind SIP on {}: {e}", config.sip.listen))?
            .with_tls(tls);
        Ok(App {
            sip,
            auth,
            registrar,
            users,
            presence,
            uac,
            http,
            public,
            metrics,
        })
    }

    pub fn sip_addr(&self) -> SocketAddr {
        self.sip.local_addr()
    }

    /// Where SIP over TLS listens; `None` when TLS is off.
    pub fn sips_addr(&self) -> Option<SocketAddr> {
        self.sip.sips_addr()
    }

    /// The TLS acceptor, for another TLS listener (WSS) or a reload.
    pub fn tls(&self) -> Option<Arc<crate::transport::tls::ReloadableAcceptor>> {
        self.sip.tls()
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.local_addr().ok()
    }

    /// The public HTTPS listener's address, when `[http] public_listen` is set.
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public
            .as_ref()
            .and_then(|p| axum::serve::Listener::local_addr(p).ok())
    }

    /// SIP over WebSocket, when configured.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.sip.ws_addr()
    }

    /// SIP over secure WebSocket, when configured.
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.sip.wss_addr()
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let expiry = self.registrar.spawn_expiry();
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let presence_tasks = self.presence.spawn();
        let extra = crate::http::registrations::routes(self.users.clone(), self.registrar.clone())
            .merge(crate::http::presence::routes(
                self.users.clone(),
                self.presence.clone(),
            ))
            .merge(crate::http::ops::routes(super::observe::ops(
                &self.sip.core(),
                &self.uac,
                &self.registrar,
                &self.presence,
                &self.users,
                self.metrics.clone(),
            )));
        let http = tokio::spawn(crate::http::serve_split(
            self.http,
            self.public,
            self.users.clone(),
            extra,
            async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            },
        ));
        let result = self.sip.run(shutdown).await;
        expiry.abort();
        for t in presence_tasks {
            t.abort();
        }
        self.registrar.flush().await;
        tracing::info!("bindings saved");
        let _ = stop_tx.send(true);
        match tokio::time::timeout(Duration::from_secs(5), http).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP API stopped with an error"),
            Err(_) => tracing::warn!("HTTP API did not stop within 5 s"),
            _ => {}
        }
        result
    }
}

/// SIP authentication's settings from `[auth]` (at start, and again on reload).
pub fn auth_settings(c: &crate::auth::AuthConfig) -> Result<SipAuthSettings, String> {
    Ok(SipAuthSettings {
        realm: c.digest_realm.clone(),
        policy: ChallengePolicy::from_config(c)?,
        nonce_ttl: Duration::from_secs(c.nonce_ttl_secs.max(1)),
        max_failures: c.max_failures.max(1),
        failure_window: Duration::from_secs(c.failure_window_secs.max(1)),
    })
}

/// Hands the memory the start-up load freed (its pages of rows, the tables it outgrew)
/// back to the system now. The `sipreg` binary allocates with mimalloc, which purges
/// freed pages lazily, on later allocations: an idle server kept ~38 MB of them after
/// loading 1,000,000 bindings. Harmless where mimalloc is not the allocator.
fn release_freed_memory() {
    // SAFETY: mi_collect only walks mimalloc's own bookkeeping; it takes no pointers.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
