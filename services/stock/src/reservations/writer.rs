//! One writer for many products. A product actor hands its batch to the writer and waits;
//! each of the writer's workers takes every batch that is ready (up to `MAX_BATCHES`) and
//! writes them in one transaction, so products that each have one reservation to write
//! share a commit instead of paying one each. While one worker writes, the next gathers.
//! A combined write that fails is retried batch by batch, so one product's failure never
//! fails another's requests.
//!
//! A reservation of several products is a batch of each product's actor. In a quiet moment
//! (no write in flight, none in the last millisecond: when the parts would otherwise pay a
//! commit each), the worker waits a moment for the other parts of the reservations in hand
//! (`gather_parts`), so one reservation is one transaction. Under load writes follow each
//! other closely, and batches gather behind them on their own.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use super::batch::{self, Batch};

/// The most batches one transaction writes.
pub const MAX_BATCHES: usize = 128;

/// Why a batch was not written.
#[derive(Debug)]
pub enum Refusal {
    /// These new reservation ids belong to another shop; nothing of the batch was written.
    Taken(Vec<Uuid>),
    /// The write failed and was rolled back.
    Failed(anyhow::Error),
}

struct Job {
    batch: Batch,
    /// Every product of each reservation of several products the batch writes a part of.
    together: Vec<Together>,
    done: oneshot::Sender<Result<(), Refusal>>,
}

/// The products of one reservation of several products.
pub type Together = Arc<[Uuid]>;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts `workers` writers on `pool` (they stop when the last `Writer` is dropped); a
    /// quiet worker waits up to `gather` for a reservation's other parts.
    pub fn start(pool: PgPool, workers: usize, gather: Duration) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        let activity = Arc::new(Activity::new());
        for _ in 0..workers.max(1) {
            let (pool, queue, activity) = (pool.clone(), queue.clone(), activity.clone());
            tokio::spawn(async move {
                loop {
                    let mut ready = Vec::with_capacity(MAX_BATCHES);
                    {
                        let mut queue = queue.lock().await;
                        if queue.recv_many(&mut ready, MAX_BATCHES).await == 0 {
                            return; // every sender is gone
                        }
                        if activity.quiet() {
                            gather_parts(&mut queue, &mut ready, gather).await;
                        }
                        activity.writing.fetch_add(1, Ordering::AcqRel);
                    }
                    // In a task of its own, so a panic fails these batches, not the worker.
                    if let Err(e) = tokio::spawn(write_all(pool.clone(), ready)).await {
                        tracing::error!(error = %e, "stock writer: a combined write panicked");
                    }
                    activity.written();
                }
            });
        }
        Self { jobs }
    }

    /// Writes `batch`, with whatever other products' batches are ready. `together`: the
    /// products of each reservation of several products it writes a part of.
    pub async fn write(&self, batch: Batch, together: Vec<Together>) -> Result<(), Refusal> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { batch, together, done })
            .map_err(|_| Refusal::Failed(anyhow::anyhow!("the writer stopped")))?;
        answer.await.map_err(|_| Refusal::Failed(anyhow::anyhow!("the writer dropped the batch")))?
    }
}

/// How long without a write makes a quiet moment.
const QUIET: Duration = Duration::from_millis(1);

/// What the workers are doing: whether a moment is quiet (no write in flight, none ended
/// within `QUIET`). Under load writes follow each other closely and a worker never waits:
/// waiting there only delays what is in hand (a closed loop of reservations lost a quarter or more of
/// its rate to it).
struct Activity {
    writing: AtomicUsize,
    since: std::time::Instant,
    /// When the last write ended, in nanoseconds after `since`.
    last_end: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self { writing: AtomicUsize::new(0), since: std::time::Instant::now(), last_end: AtomicU64::new(0) }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn quiet(&self) -> bool {
        // `writing` first: seeing a write's end there, its `last_end` is seen too.
        if self.writing.load(Ordering::Acquire) != 0 {
            return false;
        }
        let idle = self.now().saturating_sub(self.last_end.load(Ordering::Acquire));
        Duration::from_nanos(idle) >= QUIET
    }

    fn written(&self) {
        // `fetch_max`: two workers ending together leave the later end.
        self.last_end.fetch_max(self.now(), Ordering::AcqRel);
        self.writing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits, until `wait` has passed, for the parts of the reservations in hand that can still
/// come: a part of a product whose batch is in hand cannot (its actor waits for this write),
/// and a part that never comes (a product that refused) costs at most `wait`. It stops at
/// the first batch that is not such a part or brings parts of other reservations: that is
/// load, under which batches gather on their own and a writer waiting would only idle.
async fn gather_parts(queue: &mut mpsc::UnboundedReceiver<Job>, ready: &mut Vec<Job>, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    let mut missing = missing_parts(ready);
    while !missing.is_empty() && ready.len() < MAX_BATCHES {
        let Ok(Some(job)) = tokio::time::timeout_at(deadline, queue.recv()).await else {
            return;
        };
        let awaited = missing.contains(&job.batch.product_id);
        ready.push(job);
        let still = missing_parts(ready);
        if !awaited || !still.is_subset(&missing) {
            return;
        }
        missing = still;
    }
}

/// The products, with no batch in hand, of the reservations in hand.
fn missing_parts(ready: &[Job]) -> HashSet<Uuid> {
    let here: HashSet<Uuid> = ready.iter().map(|j| j.batch.product_id).collect();
    ready.iter().flat_map(|j| j.together.iter().flat_map(|t| t.iter())).filter(|p| !here.contains(p)).copied().collect()
}

fn answer(job: Job, result: Result<(), Refusal>) {
    // The actor may be gone (stopped with its caller); its batch was handled either way.
    let _ = job.done.send(result);
}

async fn write_all(pool: PgPool, mut jobs: Vec<Job>) {
    loop {
        let all: Vec<&Batch> = jobs.iter().map(|j| &j.batch).collect();
        match batch::write(&pool, &all).await {
            Ok(taken) if taken.is_empty() => return jobs.into_iter().for_each(|job| answer(job, Ok(()))),
            Ok(taken) => {
                // Nothing was written: refuse the batches with taken ids, write the rest.
                let (refused, rest) = take_refused(jobs, &taken);
                refused.into_iter().for_each(|(job, ids)| answer(job, Err(Refusal::Taken(ids))));
                if rest.is_empty() {
                    return;
                }
                jobs = rest;
            }
            Err(e) if jobs.len() == 1 => {
                if let Some(job) = jobs.pop() {
                    answer(job, Err(Refusal::Failed(e)));
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), batches = jobs.len(), "stock writer: a combined write failed; writing batch by batch");
                for job in jobs {
                    let result = match batch::write(&pool, &[&job.batch]).await {
                        Ok(taken) if taken.is_empty() => Ok(()),
                        Ok(taken) => Err(Refusal::Taken(taken)),
                        Err(e) => Err(Refusal::Failed(e)),
                    };
                    answer(job, result);
                }
                return;
            }
        }
    }
}

/// Splits off the jobs whose new reservations include `taken` ids (with those ids).
fn take_refused(jobs: Vec<Job>, taken: &[Uuid]) -> (Vec<(Job, Vec<Uuid>)>, Vec<Job>) {
    let mut refused = Vec::new();
    let mut rest = Vec::new();
    for job in jobs {
        let mine: Vec<Uuid> = job.batch.headers.iter().map(|(r, _)| *r).filter(|r| taken.contains(r)).collect();
        if mine.is_empty() {
            rest.push(job);
        } else {
            refused.push((job, mine));
        }
    }
    (refused, rest)
}
