//! Persistence of bindings: written behind in batches (at most `batch_max_ms` old or
//! `batch_max_changes` changes, whichever comes first), or synchronously before the answer
//! in `sync` mode; loaded at start-up with expired bindings dropped.
//!
//! The SIP path never waits on the database in write-behind mode: changes go to a bounded
//! queue ([`super::queue`], one slot per binding) that the writer drains. A failed write
//! stays queued and is retried, with a growing pause, until the store takes it; while the
//! queue is full, REGISTERs that would change bindings are refused ([`Persister::admit`])
//! rather than accepted and lost. [`Persister::close`] drains the queue on shutdown.
//! Nothing is ever thrown away without an `error!`/`warn!` line and the
//! [`Persister::dropped`] counter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{AnyPool, AssertSqlSafe};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::aor::Aor;
use super::binding::{Binding, Source};
use super::queue::{Full, Queue};
use super::table::Change;
use crate::transport::Transport;

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

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Rows per multi-row INSERT, largest first; a batch is cut greedily into statements of
/// these sizes, so only a few statements are ever prepared (and all stay cached).
const UPSERT_ROWS: [usize; 4] = [64, 16, 4, 1];

/// How a statement names its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholders {
    /// `$1, $2, ...` (PostgreSQL).
    Numbered,
    /// `?, ?, ...` (SQLite). sqlx's SQLite driver asks SQLite for each parameter's name
    /// when it binds, and SQLite finds a name by scanning all of them: numbered
    /// parameters make binding quadratic in their count (it was 9 % of the CPU of a
    /// REGISTER); anonymous ones have no names to scan.
    Anonymous,
}

impl Placeholders {
    fn of(pool: &AnyPool) -> Placeholders {
        if pool.connect_options().database_url.scheme() == "sqlite" {
            Placeholders::Anonymous
        } else {
            Placeholders::Numbered
        }
    }
}

/// Splits `n` rows into statement sizes from [`UPSERT_ROWS`].
fn chunk_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let size = UPSERT_ROWS.into_iter().find(|s| *s <= n)?;
        n -= size;
        Some(size)
    })
}

/// A batch reduced to one upsert or delete per binding.
type Coalesced<'a> = (Vec<(&'a Aor, &'a Binding)>, Vec<(&'a Aor, u64)>);

/// Keeps the last operation of each binding, in batch order. Every operation carries a
/// binding's whole state (or its removal), so an earlier one for the same `(aor, id)`
/// is superseded; what is left touches each row once.
fn coalesce(ops: &[Op]) -> Coalesced<'_> {
    let mut seen = std::collections::HashSet::with_capacity(ops.len());
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for op in ops.iter().rev() {
        match op {
            Op::Upsert(aor, b) => {
                if seen.insert((aor, b.id)) {
                    upserts.push((aor, b));
                }
            }
            Op::Delete(aor, id) => {
                if seen.insert((aor, *id)) {
                    deletes.push((aor, *id));
                }
            }
        }
    }
    upserts.reverse();
    deletes.reverse();
    (upserts, deletes)
}

/// `INSERT ... VALUES (...), (...) ON CONFLICT ... DO UPDATE` for `rows` bindings.
fn upsert_sql(rows: usize, style: Placeholders) -> String {
    use std::fmt::Write as _;
    const COLUMNS: usize = 14;
    let mut sql = String::with_capacity(200 + rows * 80);
    sql.push_str(
        "INSERT INTO bindings (aor, id, uri, instance, reg_id, q, expires_at, call_id, cseq, path, transport, source, user_agent, registered_at) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..COLUMNS {
            if c > 0 {
                sql.push_str(", ");
            }
            match style {
                Placeholders::Numbered => {
                    let _ = write!(sql, "${}", r * COLUMNS + c + 1);
                }
                Placeholders::Anonymous => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql.push_str(
        " ON CONFLICT (aor, id) DO UPDATE SET uri = excluded.uri, instance = excluded.instance, \
         reg_id = excluded.reg_id, q = excluded.q, expires_at = excluded.expires_at, \
         call_id = excluded.call_id, cseq = excluded.cseq, path = excluded.path, \
         transport = excluded.transport, source = excluded.source, user_agent = excluded.user_agent",
    );
    sql
}

/// Writes a batch in one transaction: repeated changes of a binding collapse to the last
/// one, upserts go in multi-row statements (one database round trip for up to 16
/// bindings instead of one per binding).
pub async fn write(pool: &AnyPool, ops: &[Op]) -> Result<(), sqlx::Error> {
    let (upserts, deletes) = coalesce(ops);
    let style = Placeholders::of(pool);
    let mut tx = pool.begin().await?;
    let mut rest = &upserts[..];
    for size in chunk_sizes(upserts.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut q = sqlx::query(AssertSqlSafe(upsert_sql(size, style)));
        for (aor, b) in chunk {
            let path = serde_json::to_string(&b.path.iter().map(|p| &**p).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into());
            q = q
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
                .bind(b.source.transport.as_str())
                .bind(b.source.addr.to_string())
                .bind(b.user_agent.as_deref())
                .bind(i64_of(b.registered_at));
        }
        q.execute(&mut *tx).await?;
    }
    for (aor, id) in deletes {
        sqlx::query("DELETE FROM bindings WHERE aor = $1 AND id = $2")
            .bind(aor.as_str())
            .bind(i64_of(id))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Rows read per query at start-up: the rows of a page are converted and dropped before
/// the next page is read, so a million stored bindings never sit in memory twice.
const LOAD_PAGE: i64 = 10_000;

/// Loads the bindings still alive at `now`, and deletes the expired ones.
pub async fn load(pool: &AnyPool, now: u64) -> Result<Vec<(Aor, Binding)>, sqlx::Error> {
    let mut out = Vec::new();
    load_into(pool, now, |aor, b| out.push((aor, b))).await?;
    Ok(out)
}

/// Deletes the expired bindings and hands each live one to `each`, page by page;
/// returns how many were handed over.
pub async fn load_into(
    pool: &AnyPool,
    now: u64,
    each: impl FnMut(Aor, Binding),
) -> Result<usize, sqlx::Error> {
    sqlx::query("DELETE FROM bindings WHERE expires_at <= $1")
        .bind(i64_of(now))
        .execute(pool)
        .await?;
    for_each(pool, now, each).await
}

/// Reads the bindings alive at `now` without changing anything (the CLI's view).
pub async fn list(pool: &AnyPool, now: u64) -> Result<Vec<(Aor, Binding)>, sqlx::Error> {
    let mut out = Vec::new();
    for_each(pool, now, |aor, b| out.push((aor, b))).await?;
    Ok(out)
}

/// One stored row, columns in [`SELECT`] order. Read by position as a tuple: looking
/// each column up by name, per row, was a good part of the start-up time.
type Stored = (
    String,
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    i64,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
    i64,
);

const SELECT: &str = "SELECT aor, id, uri, instance, reg_id, q, expires_at, call_id, cseq, path, transport, source, user_agent, registered_at FROM bindings";

/// Where pages are read from: SQLite natively (no conversion through `Any` for a
/// million rows), anything else through the shared pool.
enum Reader {
    Sqlite(sqlx::SqlitePool),
    Any(AnyPool),
}

impl Reader {
    async fn open(pool: &AnyPool) -> Reader {
        let url = pool.connect_options().database_url.clone();
        if url.scheme() == "sqlite" {
            let opened = async {
                let opts: sqlx::sqlite::SqliteConnectOptions = url.as_str().parse()?;
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts)
                    .await
            };
            match opened.await {
                Ok(p) => return Reader::Sqlite(p),
                Err(e) => tracing::debug!(error = %e, "reading bindings through the shared pool"),
            }
        }
        Reader::Any(pool.clone())
    }

    /// The next page after `after` (keyset pagination on the primary key).
    async fn page(
        &self,
        now: u64,
        after: Option<&(String, i64)>,
    ) -> Result<Vec<Stored>, sqlx::Error> {
        match (self, after) {
            (Reader::Sqlite(p), after) => {
                // The page comes back as one JSON array built inside SQLite: handing a
                // million rows one by one from the database thread to this task cost
                // more than everything else in a start-up.
                let keyset = if after.is_some() {
                    " AND (aor, id) > (?, ?)"
                } else {
                    ""
                };
                let sql = format!(
                    "SELECT json_group_array(json_array(aor, id, uri, instance, reg_id, q, expires_at, call_id, cseq, path, transport, source, user_agent, registered_at)) \
                     FROM ({SELECT} WHERE expires_at > ?{keyset} ORDER BY aor, id LIMIT ?)"
                );
                let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).bind(i64_of(now));
                if let Some((aor, id)) = after {
                    q = q.bind(aor.as_str()).bind(*id);
                }
                let text = q.bind(LOAD_PAGE).fetch_one(p).await?;
                serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
            }
            (Reader::Any(p), None) => {
                sqlx::query_as(AssertSqlSafe(format!(
                    "{SELECT} WHERE expires_at > $1 ORDER BY aor, id LIMIT $2"
                )))
                .bind(i64_of(now))
                .bind(LOAD_PAGE)
                .fetch_all(p)
                .await
            }
            (Reader::Any(p), Some((aor, id))) => sqlx::query_as(AssertSqlSafe(format!(
                "{SELECT} WHERE expires_at > $1 AND (aor, id) > ($2, $3) ORDER BY aor, id LIMIT $4"
            )))
            .bind(i64_of(now))
            .bind(aor.as_str())
            .bind(*id)
            .bind(LOAD_PAGE)
            .fetch_all(p)
            .await,
        }
    }

    async fn close(self) {
        if let Reader::Sqlite(p) = self {
            p.close().await;
        }
    }
}

/// Hands every binding alive at `now` to `each`, in (aor, id) order, [`LOAD_PAGE`] rows
/// at a time. The next page is read (on the database's thread) while this one is
/// converted and handed over, so the two halves of a load overlap on two cores.
async fn for_each(
    pool: &AnyPool,
    now: u64,
    mut each: impl FnMut(Aor, Binding),
) -> Result<usize, sqlx::Error> {
    let reader = Reader::open(pool).await;
    let (tx, mut rx) = mpsc::channel::<Result<Vec<Stored>, sqlx::Error>>(2);
    let read = tokio::spawn(async move {
        let mut after: Option<(String, i64)> = None;
        loop {
            let page = reader.page(now, after.as_ref()).await;
            let more = match &page {
                Ok(rows) => {
                    // The greatest key, not the last row: nothing promises that an
                    // aggregate keeps the subquery's order.
                    after = rows
                        .iter()
                        .map(|r| (&r.0, r.1))
                        .max()
                        .map(|(aor, id)| (aor.clone(), id));
                    rows.len() as i64 == LOAD_PAGE
                }
                Err(_) => false,
            };
            if tx.send(page).await.is_err() || !more {
                break;
            }
        }
        reader.close().await;
    });
    let mut count = 0;
    while let Some(page) = rx.recv().await {
        for row in page? {
            if let Some((aor, b)) = binding_of(row) {
                each(aor, b);
                count += 1;
            }
        }
    }
    let _ = read.await;
    Ok(count)
}

/// One stored row as a binding; `None` (with a warning) for a row that cannot be used.
fn binding_of(r: Stored) -> Option<(Aor, Binding)> {
    let (
        aor_text,
        id,
        uri,
        instance,
        reg_id,
        q,
        expires_at,
        call_id,
        cseq,
        path_text,
        transport,
        source_text,
        user_agent,
        registered_at,
    ) = r;
    let Some(aor) = Aor::from_stored(aor_text) else {
        tracing::warn!("skipping a stored binding with an invalid AOR");
        return None;
    };
    let Ok(addr) = source_text.parse() else {
        tracing::warn!(%aor, "skipping a stored binding with an invalid source");
        return None;
    };
    // Almost every binding has no Path: skip the JSON parser for those.
    let path: Vec<String> = if path_text == "[]" {
        Vec::new()
    } else {
        serde_json::from_str(&path_text).unwrap_or_default()
    };
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    Some((
        aor,
        Binding {
            id: u(id),
            uri: uri.into_boxed_str(),
            instance: instance.map(String::into_boxed_str),
            reg_id: reg_id.and_then(|v| u32::try_from(v).ok()),
            q: q.and_then(|v| u16::try_from(v).ok()),
            expires_at: u(expires_at),
            call_id: call_id.into_boxed_str(),
            cseq: u32::try_from(cseq).unwrap_or(0),
            path: path.into_iter().map(String::into_boxed_str).collect(),
            source: Source {
                transport: Transport::parse(&transport).unwrap_or(Transport::Udp),
                addr,
                // Connections do not survive a restart.
                connection: None,
            },
            user_agent: user_agent.map(String::into_boxed_str),
            registered_at: u(registered_at),
        },
    ))
}

/// The first pause after a failed write; it doubles per failure up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest pause between attempts while the store stays unreachable.
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long shutdown keeps retrying an unreachable store before giving up on what is
/// queued (logged and counted as dropped).
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Whether the store refused a write for what it holds (it would refuse it on every
/// retry: a constraint, a value out of range), rather than for being unreachable, locked,
/// full or read-only. SQLite names errors by number (primary code in the low byte),
/// PostgreSQL by SQLSTATE.
pub fn rejects_content(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return matches!(e, sqlx::Error::Encode(_));
    };
    let Some(code) = db.code() else {
        return false;
    };
    match code.parse::<i64>() {
        // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE.
        Ok(n) => matches!(n & 0xff, 18 | 19 | 20 | 25),
        // Class 22 (data exception), 23 (integrity constraint violation).
        Err(_) => code.starts_with("22") || code.starts_with("23"),
    }
}

/// A batch the store refused for its content: each change is written on its own, and
/// the ones refused for their content are given up (logged and counted; retrying them
/// would stall every change behind them for ever). Returns, per change, whether it is
/// settled; a change that failed for any other reason stays for the next attempt.
async fn isolate(pool: &AnyPool, batch: &[Op], counters: &Counters) -> Vec<bool> {
    let mut done = vec![false; batch.len()];
    for (i, op) in batch.iter().enumerate() {
        match write(pool, std::slice::from_ref(op)).await {
            Ok(()) => {
                done[i] = true;
                counters.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if rejects_content(&e) => {
                done[i] = true;
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                let (aor, id) = match op {
                    Op::Upsert(aor, b) => (aor, b.id),
                    Op::Delete(aor, id) => (aor, *id),
                };
                tracing::error!(error = %e, %aor, binding = id, "the store refuses this binding change: not saved");
            }
            // Unreachable again: the rest waits for the next attempt.
            Err(_) => break,
        }
    }
    done
}

fn retry_pause(failures: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(RETRY_MAX)
}

/// What the writer has done, for operators (the metrics read these).
#[derive(Default)]
struct Counters {
    /// Changes thrown away: refused by the store for their content, still queued when
    /// shutdown gave up on the store, or arriving after the writer stopped.
    dropped: AtomicU64,
    /// REGISTERs answered 503 because their changes could not be stored (queue full in
    /// write-behind mode, a failed write in sync mode).
    refused: AtomicU64,
    /// Store writes that failed (each retry counts).
    write_failures: AtomicU64,
    /// Changes written to the store.
    written: AtomicU64,
}

struct Shared {
    queue: Queue,
    /// Wakes the writer: a first change arrived, a batch filled, or shutdown.
    wake: Notify,
    max_changes: usize,
    counters: Counters,
    /// Set while client changes are being refused (so the log says so once, not per
    /// REGISTER).
    refusing: AtomicBool,
}

impl Shared {
    /// Wakes the writer when the queue became non-empty or a batch filled: once per
    /// batch, not once per change.
    fn grew(&self, (before, after): (usize, usize)) {
        if before == 0 && after > 0 || before < self.max_changes && after >= self.max_changes {
            self.wake.notify_one();
        }
    }
}

/// The store writer: the write-behind queue and the task draining it, plus the counters
/// operators watch.
pub struct Persister {
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    pool: AnyPool,
}

impl Persister {
    /// Starts the writer: batches at most `max_age` old or `max_changes` changes, and a
    /// queue of at most `bound` bindings for client changes.
    pub fn start(pool: AnyPool, max_age: Duration, max_changes: usize, bound: usize) -> Persister {
        Self::start_with(pool, max_age, max_changes, bound, CLOSE_GRACE)
    }

    fn start_with(
        pool: AnyPool,
        max_age: Duration,
        max_changes: usize,
        bound: usize,
        close_grace: Duration,
    ) -> Persister {
        let shared = Arc::new(Shared {
            queue: Queue::new(bound),
            wake: Notify::new(),
            max_changes: max_changes.max(1),
            counters: Counters::default(),
            refusing: AtomicBool::new(false),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            Arc::clone(&shared),
            pool.clone(),
            max_age,
            close_grace,
            stop.clone(),
        ));
        Persister {
            shared,
            stop,
            task: std::sync::Mutex::new(Some(task)),
            pool,
        }
    }

    /// Queues the changes a client's REGISTER made, all or none: `false` when the queue
    /// has no room for them (the REGISTER is then refused and the table left as it
    /// was). Changes that only drop expired bindings are always taken.
    pub fn admit(&self, aor: &Aor, changes: &[Change]) -> bool {
        let ops: Vec<Op> = changes.iter().map(|c| Op::of(aor, c)).collect();
        if changes.iter().all(|c| matches!(c, Change::Expired(_))) {
            self.enqueue(ops);
            return true;
        }
        let s = &self.shared;
        match s.queue.offer(ops) {
            Ok(depth) => {
                s.grew(depth);
                if s.refusing.load(Ordering::Relaxed) && s.refusing.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        queued = depth.1,
                        refused_total = s.counters.refused.load(Ordering::Relaxed),
                        "write-behind queue has room again: accepting REGISTERs"
                    );
                }
                true
            }
            Err(Full) => {
                s.counters.refused.fetch_add(1, Ordering::Relaxed);
                if !s.refusing.swap(true, Ordering::AcqRel) {
                    tracing::error!(
                        bound = s.queue.bound(),
                        oldest_secs = s.queue.oldest_age().as_secs(),
                        "write-behind queue full (the store is not keeping up or unreachable): \
                         REGISTERs that change bindings are answered 503 until it drains"
                    );
                }
                false
            }
        }
    }

    /// Queues changes that are not refused: removals by expiry or a closed connection,
    /// stored bindings dropped at start-up.
    pub fn enqueue(&self, ops: impl IntoIterator<Item = Op>) {
        let s = &self.shared;
        let ops: Vec<Op> = ops.into_iter().collect();
        let n = ops.len() as u64;
        match s.queue.push(ops) {
            Some(depth) => s.grew(depth),
            None if n > 0 => {
                s.counters.dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(
                    changes = n,
                    "binding changes not saved: the store writer has stopped"
                );
            }
            None => {}
        }
    }

    /// Writes now (sync mode); a failure is counted.
    pub async fn write_now(&self, ops: &[Op]) -> Result<(), sqlx::Error> {
        let r = write(&self.pool, ops).await;
        if r.is_err() {
            self.shared
                .counters
                .write_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Counts a REGISTER refused because its changes could not be stored (sync mode).
    pub fn note_refused(&self) {
        self.shared.counters.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Bindings whose latest change is not yet in the store.
    pub fn queue_depth(&self) -> usize {
        self.shared.queue.len()
    }

    /// Changes queued and the age of the oldest, in seconds (for metrics; scans the
    /// queue, so at scrape rate, not per request).
    pub fn backlog(&self) -> (usize, f64) {
        (self.queue_depth(), self.oldest_age().as_secs_f64())
    }

    /// The queue's bound for client changes (`[registrar] write_behind_max`).
    pub fn queue_bound(&self) -> usize {
        self.shared.queue.bound()
    }

    /// How long the oldest change not yet in the store has waited (zero when none).
    pub fn oldest_age(&self) -> Duration {
        self.shared.queue.oldest_age()
    }

    /// Changes thrown away without reaching the store (each also logged).
    pub fn dropped(&self) -> u64 {
        self.shared.counters.dropped.load(Ordering::Relaxed)
    }

    /// REGISTERs answered 503 because their changes could not be stored.
    pub fn refused(&self) -> u64 {
        self.shared.counters.refused.load(Ordering::Relaxed)
    }

    /// Failed store writes (every retry counts).
    pub fn write_failures(&self) -> u64 {
        self.shared.counters.write_failures.load(Ordering::Relaxed)
    }

    /// Changes written by the write-behind writer.
    pub fn written(&self) -> u64 {
        self.shared.counters.written.load(Ordering::Relaxed)
    }

    /// Writes everything queued so far and stops the writer (retrying an unreachable
    /// store for [`CLOSE_GRACE`] at most).
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

/// The writer: waits for a batch to fill or age, writes it, and keeps failed batches
/// queued, retrying with a growing pause, until the store takes them.
async fn run(
    shared: Arc<Shared>,
    pool: AnyPool,
    max_age: Duration,
    close_grace: Duration,
    stop: CancellationToken,
) {
    let max_changes = shared.max_changes;
    let mut failures: u32 = 0;
    let mut stopping_since: Option<tokio::time::Instant> = None;
    loop {
        // One wake-up for a batch's first change...
        while shared.queue.is_empty() {
            if stop.is_cancelled() && shared.queue.close_if_empty() {
                return;
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = stop.cancelled() => {}
            }
        }
        // ...then one more when it is old enough or full. Waiting on each change instead
        // would wake this task (and a runtime thread) per REGISTER.
        let deadline = tokio::time::Instant::now() + max_age;
        while failures == 0 && !stop.is_cancelled() && shared.queue.len() < max_changes {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = shared.wake.notified() => {}
                _ = stop.cancelled() => break,
            }
        }
        let batch = shared.queue.take_batch(max_changes);
        if batch.is_empty() {
            continue;
        }
        match write(&pool, &batch).await {
            Ok(()) => {
                shared.queue.committed();
                shared
                    .counters
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                if failures > 0 {
                    tracing::info!(
                        failed_attempts = failures,
                        queued = shared.queue.len(),
                        "the store takes bindings again; writing what was queued"
                    );
                    failures = 0;
                }
            }
            Err(e) if rejects_content(&e) => {
                tracing::warn!(error = %e, changes = batch.len(), "the store refuses part of a batch; writing its changes one by one");
                let done = isolate(&pool, &batch, &shared.counters).await;
                shared.queue.settle(&done);
            }
            Err(e) => {
                shared.queue.failed();
                shared
                    .counters
                    .write_failures
                    .fetch_add(1, Ordering::Relaxed);
                failures = failures.saturating_add(1);
                let queued = shared.queue.len();
                tracing::warn!(
                    error = %e,
                    attempt = failures,
                    queued,
                    oldest_secs = shared.queue.oldest_age().as_secs(),
                    "saving bindings failed; they stay queued and are retried"
                );
                if stop.is_cancelled() {
                    let since = *stopping_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= close_grace {
                        let lost = shared.queue.discard() as u64;
                        shared.counters.dropped.fetch_add(lost, Ordering::Relaxed);
                        tracing::error!(
                            changes = lost,
                            "shutting down with the store unreachable: binding changes not saved"
                        );
                        return;
                    }
                    tokio::time::sleep(retry_pause(failures)).await;
                } else {
                    // Shutdown cuts the pause short (the next attempt starts its grace).
                    tokio::select! {
                        _ = tokio::time::sleep(retry_pause(failures)) => {}
                        _ = stop.cancelled() => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh SQLite store with the bindings table (the folder lives as long as the guard).
    async fn bindings_pool() -> (tempfile::TempDir, AnyPool) {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/b.db?mode=rwc", dir.path().display());
        let pool = AnyPool::connect(&url).await.unwrap();
        sqlx::raw_sql(include_str!("../../migrations/20261201000002_bindings.sql"))
            .execute(&pool)
            .await
            .unwrap();
        (dir, pool)
    }

    fn binding(id: u64, cseq: u32) -> Binding {
        Binding {
            id,
            uri: format!("sip:a@192.0.2.1:{}", 5000 + id).into(),
            instance: None,
            reg_id: None,
            q: None,
            expires_at: 100,
            call_id: "c".into(),
            cseq,
            path: Vec::new(),
            source: Source {
                transport: Transport::Udp,
                addr: "127.0.0.1:5060".parse().unwrap(),
                connection: None,
            },
            user_agent: None,
            registered_at: 0,
        }
    }

    #[test]
    fn coalesce_keeps_the_last_change_of_each_binding() {
        let a = Aor::parse("sip:a@example.com").unwrap();
        let b = Aor::parse("sip:b@example.com").unwrap();
        let ops = vec![
            Op::Upsert(a.clone(), binding(1, 1)),
            Op::Upsert(b.clone(), binding(1, 1)),
            Op::Upsert(a.clone(), binding(1, 2)),
            Op::Upsert(a.clone(), binding(2, 1)),
            Op::Delete(a.clone(), 2),
            Op::Delete(b.clone(), 7),
            Op::Upsert(b.clone(), binding(7, 3)),
        ];
        let (upserts, deletes) = coalesce(&ops);
        let up: Vec<(&str, u64, u32)> = upserts
            .iter()
            .map(|(aor, b)| (aor.as_str(), b.id, b.cseq))
            .collect();
        assert_eq!(
            up,
            [
                ("sip:b@example.com", 1, 1),
                ("sip:a@example.com", 1, 2),
                ("sip:b@example.com", 7, 3)
            ]
        );
        let del: Vec<(&str, u64)> = deletes
            .iter()
            .map(|(aor, id)| (aor.as_str(), *id))
            .collect();
        assert_eq!(del, [("sip:a@example.com", 2)]);
    }

    #[test]
    fn chunk_sizes_cover_every_row() {
        assert_eq!(chunk_sizes(0).count(), 0);
        assert_eq!(chunk_sizes(39).collect::<Vec<_>>(), [16, 16, 4, 1, 1, 1]);
        assert_eq!(chunk_sizes(84).collect::<Vec<_>>(), [64, 16, 4]);
        assert_eq!(chunk_sizes(600).sum::<usize>(), 600);
    }

    #[test]
    fn upsert_sql_numbers_every_parameter() {
        let sql = upsert_sql(2, Placeholders::Numbered);
        assert!(
            sql.contains("($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14), ($15,")
        );
        assert!(sql.contains("$28)"));
        assert!(!sql.contains("$29"));
    }

    #[test]
    fn upsert_sql_for_sqlite_uses_anonymous_parameters() {
        let sql = upsert_sql(2, Placeholders::Anonymous);
        assert_eq!(sql.matches('?').count(), 28);
        assert!(!sql.contains('$'));
        assert!(sql.contains("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), (?,"));
    }

    #[tokio::test]
    async fn batched_write_round_trips_and_applies_the_last_change() {
        let (_dir, pool) = bindings_pool().await;
        let a = Aor::parse("sip:a@example.com").unwrap();
        // More rows than one statement holds, each written twice.
        let mut ops: Vec<Op> = (1..=600)
            .map(|i| Op::Upsert(a.clone(), binding(i, 1)))
            .collect();
        ops.extend((1..=600).map(|i| Op::Upsert(a.clone(), binding(i, 2))));
        ops.push(Op::Delete(a.clone(), 600));
        write(&pool, &ops).await.unwrap();
        // A later batch updates an existing row.
        write(&pool, &[Op::Upsert(a.clone(), binding(1, 9))])
            .await
            .unwrap();
        let rows = list(&pool, 0).await.unwrap();
        assert_eq!(rows.len(), 599);
        assert_eq!(rows[0].1.cseq, 9);
        assert!(rows[1..].iter().all(|(_, b)| b.cseq == 2));
        assert!(rows.iter().all(|(_, b)| b.id != 600));
    }

    #[tokio::test]
    async fn load_pages_through_every_row_and_keeps_text_exactly() {
        let (_dir, pool) = bindings_pool().await;
        // More than two pages, over many AORs, one binding with awkward text.
        let n = 2 * LOAD_PAGE as u64 + 123;
        let ops: Vec<Op> = (1..=n)
            .map(|i| {
                let aor = Aor::parse(&format!("sip:u{}@example.com", i % 7_001)).unwrap();
                let mut b = binding(i, 1);
                b.expires_at = 10_000;
                if i == 77 {
                    b.user_agent = Some("Ph\\one \"Q\" 名前 \u{1}".into());
                    b.instance = Some("<urn:uuid:0001>".into());
                    b.path = vec![
                        "<sip:p1@192.0.2.9;lr>".into(),
                        "<sip:p2@192.0.2.8;lr>".into(),
                    ];
                    b.q = Some(500);
                    b.reg_id = Some(2);
                    b.source.transport = Transport::Tcp;
                    b.source.addr = "[2001:db8::1]:5070".parse().unwrap();
                }
                Op::Upsert(aor, b)
            })
            .collect();
        write(&pool, &ops).await.unwrap();
        let rows = load(&pool, 100).await.unwrap();
        assert_eq!(rows.len() as u64, n);
        let mut ids: Vec<u64> = rows.iter().map(|(_, b)| b.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len() as u64, n, "no row read twice or skipped");
        let keys: Vec<(&str, u64)> = rows.iter().map(|(a, b)| (a.as_str(), b.id)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "in key order");
        let (aor, odd) = rows.iter().find(|(_, b)| b.id == 77).unwrap();
        let Op::Upsert(want_aor, want) = &ops[76] else {
            panic!("op 77 is an upsert")
        };
        assert_eq!(aor, want_aor);
        assert_eq!(odd, want);
    }

    /// Makes every write fail at once ("no such table"), as a store that lost its
    /// schema or its disk would, without waiting on a lock.
    async fn break_store(pool: &AnyPool) {
        sqlx::raw_sql("ALTER TABLE bindings RENAME TO bindings_away")
            .execute(pool)
            .await
            .unwrap();
    }

    async fn mend_store(pool: &AnyPool) {
        sqlx::raw_sql("ALTER TABLE bindings_away RENAME TO bindings")
            .execute(pool)
            .await
            .unwrap();
    }

    async fn until(mut done: impl FnMut() -> bool) {
        for _ in 0..600 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn added(id: u64, cseq: u32) -> Change {
        Change::Added(binding(id, cseq))
    }

    #[tokio::test]
    async fn failed_writes_stay_queued_past_any_retry_count_and_land_when_the_store_is_back() {
        let (_dir, pool) = bindings_pool().await;
        let a = Aor::parse("sip:a@example.com").unwrap();
        let p = Persister::start(pool.clone(), Duration::from_millis(10), 100, 100);
        break_store(&pool).await;
        for id in 1..=10 {
            assert!(p.admit(&a, &[added(id, 1)]));
        }
        // Refreshes of binding 1 coalesce into its slot; the last one is what is stored.
        for cseq in 2..=20 {
            assert!(p.admit(&a, &[Change::Refreshed(binding(1, cseq))]));
        }
        // More failed attempts than the writer used to allow before it dropped a batch.
        until(|| p.write_failures() >= 7).await;
        assert!(p.write_failures() >= 7);
        assert_eq!(p.queue_depth(), 10, "nothing given up");
        assert!(p.oldest_age() > Duration::ZERO);
        mend_store(&pool).await;
        until(|| p.queue_depth() == 0).await;
        let rows = list(&pool, 0).await.unwrap();
        assert_eq!(rows.len(), 10);
        assert_eq!(rows.iter().find(|(_, b)| b.id == 1).unwrap().1.cseq, 20);
        assert_eq!(p.dropped(), 0);
        assert_eq!(p.written(), 10);
        p.close().await;
    }

    #[tokio::test]
    async fn admit_refuses_beyond_the_bound_but_not_expiry() {
        let (_dir, pool) = bindings_pool().await;
        let a = Aor::parse("sip:a@example.com").unwrap();
        let p = Persister::start(pool.clone(), Duration::from_secs(60), 1000, 3);
        break_store(&pool).await;
        assert!(p.admit(&a, &[added(1, 1), added(2, 1)]));
        assert!(
            !p.admit(&a, &[added(3, 1), added(4, 1)]),
            "two slots, one left"
        );
        assert!(p.admit(&a, &[added(3, 1)]));
        assert!(!p.admit(&a, &[added(4, 1)]));
        assert!(
            p.admit(&a, &[Change::Removed(binding(1, 1))]),
            "no new slot"
        );
        assert!(
            p.admit(&a, &[Change::Expired(binding(9, 1))]),
            "expiry is never refused"
        );
        assert_eq!(p.refused(), 2);
        assert_eq!((p.queue_depth(), p.queue_bound()), (4, 3));
        mend_store(&pool).await;
        p.close().await;
        let ids: Vec<u64> = list(&pool, 0)
            .await
            .unwrap()
            .iter()
            .map(|(_, b)| b.id)
            .collect();
        assert_eq!(ids, [2, 3], "written on close: 1 removed, 9 never stored");
        assert_eq!(p.dropped(), 0);
    }

    #[tokio::test]
    async fn a_change_the_store_refuses_is_given_up_alone_and_counted() {
        let (_dir, pool) = bindings_pool().await;
        // The store refuses one binding for its content (as a constraint would).
        sqlx::raw_sql(
            "CREATE TRIGGER poison BEFORE INSERT ON bindings WHEN NEW.uri LIKE '%:5002' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .execute(&pool)
        .await
        .unwrap();
        let a = Aor::parse("sip:a@example.com").unwrap();
        let p = Persister::start(pool.clone(), Duration::from_millis(10), 100, 100);
        assert!(p.admit(&a, &(1..=4).map(|i| added(i, 1)).collect::<Vec<_>>()));
        until(|| p.queue_depth() == 0).await;
        let ids: Vec<u64> = list(&pool, 0)
            .await
            .unwrap()
            .iter()
            .map(|(_, b)| b.id)
            .collect();
        assert_eq!(ids, [1, 3, 4], "the others are stored");
        assert_eq!(p.dropped(), 1);
        // The queue is not stalled: later changes are written.
        assert!(p.admit(&a, &[added(5, 1)]));
        p.close().await;
        assert_eq!(list(&pool, 0).await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn shutdown_with_the_store_down_counts_what_it_gives_up() {
        let (_dir, pool) = bindings_pool().await;
        let a = Aor::parse("sip:a@example.com").unwrap();
        let p = Persister::start_with(
            pool.clone(),
            Duration::from_millis(10),
            100,
            100,
            Duration::from_millis(300),
        );
        break_store(&pool).await;
        assert!(p.admit(&a, &[added(1, 1), added(2, 1)]));
        p.close().await;
        assert_eq!(p.dropped(), 2);
        assert_eq!(p.queue_depth(), 0);
        // After the writer stopped, nothing is taken silently.
        assert!(!p.admit(&a, &[added(3, 1)]));
        p.enqueue([Op::Delete(a.clone(), 1)]);
        assert_eq!(p.dropped(), 3);
    }

    #[tokio::test]
    async fn writer_writes_a_full_batch_at_once_and_the_rest_on_close() {
        let (_dir, pool) = bindings_pool().await;
        let a = Aor::parse("sip:a@example.com").unwrap();
        // Batches may wait a minute, but hold at most 3 changes.
        let p = Persister::start(pool.clone(), Duration::from_secs(60), 3, 100);
        p.enqueue((1..=4).map(|i| Op::Upsert(a.clone(), binding(i, 1))));
        let mut stored = 0;
        for _ in 0..100 {
            stored = list(&pool, 0).await.unwrap().len();
            if stored > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            stored, 3,
            "the full batch is written without waiting for its age"
        );
        p.close().await;
        assert_eq!(
            list(&pool, 0).await.unwrap().len(),
            4,
            "close writes the rest"
        );
    }
}
