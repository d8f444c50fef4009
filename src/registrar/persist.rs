//! Persistence of bindings: written behind in batches (at most `batch_max_ms` old or
//! `batch_max_changes` changes, whichever comes first), or synchronously before the answer
//! in `sync` mode; loaded at start-up with expired bindings dropped.
//!
//! The writer owns the only receiver of an unbounded queue, so the SIP path never waits
//! on the database and no change is dropped; [`Persister::close`] drains the queue on
//! shutdown.

use std::time::Duration;

use sqlx::{AnyPool, Row};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::aor::Aor;
use super::binding::{Binding, Source};
use super::table::Change;
use crate::server::Transport;

/// One change for the database.
#[derive(Debug, Clone)]
pub enum Op {
    Upsert(Aor, Binding),
    Delete(Aor, u64),
}

impl Op {
    /// The operation that records a table change.
    pub fn of(aor: &Aor, change: &Change) -> Op {
        match change {
            Change::Added(b) | Change::Refreshed(b) => Op::Upsert(aor.clone(), b.clone()),
            Change::Removed(b) | Change::Expired(b) => Op::Delete(aor.clone(), b.id),
        }
    }
}

/// The write-behind writer.
pub struct Persister {
    tx: mpsc::UnboundedSender<Op>,
    stop: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    pool: AnyPool,
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Writes a batch in one transaction.
pub async fn write(pool: &AnyPool, ops: &[Op]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for op in ops {
        match op {
            Op::Upsert(aor, b) => {
                let path = serde_json::to_string(&b.path.iter().map(|p| &**p).collect::<Vec<_>>())
                    .unwrap_or_else(|_| "[]".into());
                sqlx::query(
                    "INSERT INTO bindings (aor, id, uri, instance, reg_id, q, expires_at, call_id, cseq, path, transport, source, user_agent, registered_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT (aor, id) DO UPDATE SET uri = $3, instance = $4, reg_id = $5, q = $6, expires_at = $7, \
                     call_id = $8, cseq = $9, path = $10, transport = $11, source = $12, user_agent = $13",
                )
                .bind(aor.as_str())
                .bind(i64_of(b.id))
                .bind(&*b.uri)
                .bind(b.instance.as_deref())
                .bind(b.reg_id.map(i64::from))
                .bind(b.q.map(i64::from))
                .bind(i64_of(b.expires_at))
                .bind(&*b.call_id)
                .bind(i64::from(b.cseq))
                .bind(path)
                .bind(match b.source.transport {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                })
                .bind(b.source.addr.to_string())
                .bind(b.user_agent.as_deref())
                .bind(i64_of(b.registered_at))
                .execute(&mut *tx)
                .await?;
            }
            Op::Delete(aor, id) => {
                sqlx::query("DELETE FROM bindings WHERE aor = $1 AND id = $2")
                    .bind(aor.as_str())
                    .bind(i64_of(*id))
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await
}

/// Writes a batch, retrying a few times rather than losing it.
async fn save(pool: &AnyPool, batch: &[Op]) {
    let mut attempt = 0;
    loop {
        match write(pool, batch).await {
            Ok(()) => return,
            Err(e) if attempt < 5 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "saving bindings failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, changes = batch.len(), "bindings not saved");
                return;
            }
        }
    }
}

/// Loads the bindings still alive at `now`, and deletes the expired ones.
pub async fn load(pool: &AnyPool, now: u64) -> Result<Vec<(Aor, Binding)>, sqlx::Error> {
    sqlx::query("DELETE FROM bindings WHERE expires_at <= $1")
        .bind(i64_of(now))
        .execute(pool)
        .await?;
    list(pool, now).await
}

/// Reads the bindings alive at `now` without changing anything (the CLI's view).
pub async fn list(pool: &AnyPool, now: u64) -> Result<Vec<(Aor, Binding)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT aor, id, uri, instance, reg_id, q, expires_at, call_id, cseq, path, transport, source, user_agent, registered_at \
         FROM bindings WHERE expires_at > $1 ORDER BY aor, id",
    )
    .bind(i64_of(now))
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let aor_text: String = r.try_get("aor")?;
        let Some(aor) = Aor::parse(&aor_text) else {
            tracing::warn!(aor = %aor_text, "skipping a stored binding with an invalid AOR");
            continue;
        };
        let source_text: String = r.try_get("source")?;
        let transport: String = r.try_get("transport")?;
        let Ok(addr) = source_text.parse() else {
            tracing::warn!(%aor, "skipping a stored binding with an invalid source");
            continue;
        };
        let path_text: String = r.try_get("path")?;
        let path: Vec<String> = serde_json::from_str(&path_text).unwrap_or_default();
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        out.push((
            aor,
            Binding {
                id: u(r.try_get("id")?),
                uri: r.try_get::<String, _>("uri")?.into_boxed_str(),
                instance: r
                    .try_get::<Option<String>, _>("instance")?
                    .map(String::into_boxed_str),
                reg_id: r
                    .try_get::<Option<i64>, _>("reg_id")?
                    .and_then(|v| u32::try_from(v).ok()),
                q: r.try_get::<Option<i64>, _>("q")?
                    .and_then(|v| u16::try_from(v).ok()),
                expires_at: u(r.try_get("expires_at")?),
                call_id: r.try_get::<String, _>("call_id")?.into_boxed_str(),
                cseq: u32::try_from(r.try_get::<i64, _>("cseq")?).unwrap_or(0),
                path: path.into_iter().map(String::into_boxed_str).collect(),
                source: Source {
                    transport: if transport == "tcp" {
                        Transport::Tcp
                    } else {
                        Transport::Udp
                    },
                    addr,
                    // Connections do not survive a restart.
                    connection: None,
                },
                user_agent: r
                    .try_get::<Option<String>, _>("user_agent")?
                    .map(String::into_boxed_str),
                registered_at: u(r.try_get("registered_at")?),
            },
        ));
    }
    Ok(out)
}

impl Persister {
    /// Starts the writer.
    pub fn start(pool: AnyPool, max_age: Duration, max_changes: usize) -> Persister {
        let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
        let stop = CancellationToken::new();
        let writer_pool = pool.clone();
        let writer_stop = stop.clone();
        let task = tokio::spawn(async move {
            let max_changes = max_changes.max(1);
            loop {
                let first = tokio::select! {
                    op = rx.recv() => op,
                    _ = writer_stop.cancelled() => rx.try_recv().ok(),
                };
                let Some(first) = first else { break };
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + max_age;
                while batch.len() < max_changes {
                    if writer_stop.is_cancelled() {
                        // Shutting down: take what is queued without waiting.
                        match rx.try_recv() {
                            Ok(op) => batch.push(op),
                            Err(_) => break,
                        }
                        continue;
                    }
                    tokio::select! {
                        op = tokio::time::timeout_at(deadline, rx.recv()) => match op {
                            Ok(Some(op)) => batch.push(op),
                            Ok(None) | Err(_) => break,
                        },
                        _ = writer_stop.cancelled() => {}
                    }
                }
                save(&writer_pool, &batch).await;
            }
        });
        Persister {
            tx,
            stop,
            task: std::sync::Mutex::new(Some(task)),
            pool,
        }
    }

    /// Queues changes for the next batch.
    pub fn enqueue(&self, ops: impl IntoIterator<Item = Op>) {
        for op in ops {
            // Fails only once the writer has exited, after shutdown.
            let _ = self.tx.send(op);
        }
    }

    /// Writes now (sync mode).
    pub async fn write_now(&self, ops: &[Op]) -> Result<(), sqlx::Error> {
        write(&self.pool, ops).await
    }

    /// Writes everything queued so far and stops the writer.
    pub async fn close(&self) {
        self.stop.cancel();
        let task = match self.task.lock() {
            Ok(mut t) => t.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}
