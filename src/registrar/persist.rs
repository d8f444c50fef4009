//! Persistence of bindings: written behind in batches (at most `batch_max_ms` old or
//! `batch_max_changes` changes, whichever comes first), or synchronously before the answer
//! in `sync` mode; loaded at start-up with expired bindings dropped.
//!
//! The writer owns the only receiver of an unbounded queue, so the SIP path never waits
//! on the database and no change is dropped; [`Persister::close`] drains the queue on
//! shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::{AnyPool, AssertSqlSafe};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::aor::Aor;
use super::binding::{Binding, Source};
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

/// How full the queue is, so the writer is woken once per batch, not once per change.
struct Fill {
    queued: AtomicUsize,
    full: Notify,
    max_changes: usize,
    /// When the oldest change not yet written was queued (unix ms; 0: none), for metrics.
    oldest_ms: AtomicU64,
}

/// The write-behind writer.
pub struct Persister {
    tx: mpsc::UnboundedSender<Op>,
    fill: Arc<Fill>,
    stop: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    pool: AnyPool,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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

impl Persister {
    /// Starts the writer.
    pub fn start(pool: AnyPool, max_age: Duration, max_changes: usize) -> Persister {
        let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
        let stop = CancellationToken::new();
        let max_changes = max_changes.max(1);
        let fill = Arc::new(Fill {
            queued: AtomicUsize::new(0),
            full: Notify::new(),
            max_changes,
            oldest_ms: AtomicU64::new(0),
        });
        let writer_pool = pool.clone();
        let writer_stop = stop.clone();
        let writer_fill = Arc::clone(&fill);
        let task = tokio::spawn(async move {
            let fill = writer_fill;
            loop {
                // One wake-up per batch: for its first change...
                let first = tokio::select! {
                    op = rx.recv() => op,
                    _ = writer_stop.cancelled() => rx.try_recv().ok(),
                };
                let Some(first) = first else { break };
                // ...then one more when the batch is old enough or full. Waiting on each
                // change instead would wake this task (and a runtime thread) per REGISTER.
                let deadline = tokio::time::Instant::now() + max_age;
                // A wake-up left over from an earlier batch is checked and ignored.
                while !writer_stop.is_cancelled()
                    && fill.queued.load(Ordering::Acquire) < max_changes
                {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => break,
                        _ = fill.full.notified() => {}
                        _ = writer_stop.cancelled() => break,
                    }
                }
                let mut batch = vec![first];
                while batch.len() < max_changes {
                    match rx.try_recv() {
                        Ok(op) => batch.push(op),
                        Err(_) => break,
                    }
                }
                let taken_ms = now_ms();
                fill.queued.fetch_sub(batch.len(), Ordering::AcqRel);
                save(&writer_pool, &batch).await;
                // Metrics only: what is left was queued before `taken_ms` (an age a
                // little short, never too long).
                let left = fill.queued.load(Ordering::Acquire) > 0;
                fill.oldest_ms
                    .store(if left { taken_ms } else { 0 }, Ordering::Release);
            }
        });
        Persister {
            tx,
            fill,
            stop,
            task: std::sync::Mutex::new(Some(task)),
            pool,
        }
    }

    /// Queues changes for the next batch.
    pub fn enqueue(&self, ops: impl IntoIterator<Item = Op>) {
        for op in ops {
            // Fails only once the writer has exited, after shutdown.
            if self.tx.send(op).is_err() {
                continue;
            }
            let before = self.fill.queued.fetch_add(1, Ordering::AcqRel);
            if before == 0 {
                let _ = self.fill.oldest_ms.compare_exchange(
                    0,
                    now_ms(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            if before + 1 == self.fill.max_changes {
                self.fill.full.notify_one();
            }
        }
    }

    /// Changes queued and the age of the oldest, in seconds (for metrics).
    pub fn backlog(&self) -> (usize, f64) {
        let since = self.fill.oldest_ms.load(Ordering::Acquire);
        let age = if since == 0 {
            0
        } else {
            now_ms().saturating_sub(since)
        };
        (
            self.fill.queued.load(Ordering::Acquire),
            age as f64 / 1000.0,
        )
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

    #[tokio::test]
    async fn writer_writes_a_full_batch_at_once_and_the_rest_on_close() {
        let (_dir, pool) = bindings_pool().await;
        let a = Aor::parse("sip:a@example.com").unwrap();
        // Batches may wait a minute, but hold at most 3 changes.
        let p = Persister::start(pool.clone(), Duration::from_secs(60), 3);
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
