//! One writer for many products. A product actor hands its batch to the writer and waits;
//! each of the writer's workers takes every batch that is ready (up to `MAX_BATCHES`) and
//! writes them in one transaction, so products that each have one reservation to write
//! share a commit instead of paying one each. While one worker writes, the next gathers.
//! A combined write that fails is retried batch by batch, so one product's failure never
//! fails another's requests.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use super::batch::{self, Batch};
use super::store;

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
    done: oneshot::Sender<Result<(), Refusal>>,
}

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts `workers` writers on `pool` (they stop when the last `Writer` is dropped).
    pub fn start(pool: PgPool, workers: usize) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..workers.max(1) {
            let (pool, queue) = (pool.clone(), queue.clone());
            tokio::spawn(async move {
                loop {
                    let mut ready = Vec::with_capacity(MAX_BATCHES);
                    if queue.lock().await.recv_many(&mut ready, MAX_BATCHES).await == 0 {
                        return; // every sender is gone
                    }
                    // In a task of its own, so a panic fails these batches, not the worker.
                    if let Err(e) = tokio::spawn(write_all(pool.clone(), ready)).await {
                        tracing::error!(error = %e, "stock writer: a combined write panicked");
                    }
                }
            });
        }
        Self { jobs }
    }

    /// Writes `batch`, with whatever other products' batches are ready.
    pub async fn write(&self, batch: Batch) -> Result<(), Refusal> {
        let (done, answer) = oneshot::channel();
        self.jobs.send(Job { batch, done }).map_err(|_| Refusal::Failed(anyhow::anyhow!("the writer stopped")))?;
        answer.await.map_err(|_| Refusal::Failed(anyhow::anyhow!("the writer dropped the batch")))?
    }
}

fn answer(job: Job, result: Result<(), Refusal>) {
    // The actor may be gone (stopped with its caller); its batch was handled either way.
    let _ = job.done.send(result);
}

async fn write_all(pool: PgPool, jobs: Vec<Job>) {
    let fresh: Vec<(Uuid, Uuid)> =
        jobs.iter().flat_map(|j| j.batch.headers.iter().map(|(r, _)| (*r, j.batch.shop_id))).collect();
    let taken: HashSet<Uuid> = match store::taken_elsewhere(&pool, &fresh).await {
        Ok(t) => t.into_iter().collect(),
        Err(e) => {
            for job in jobs {
                answer(job, Err(Refusal::Failed(anyhow::anyhow!("{e:#}"))));
            }
            return;
        }
    };
    let mut ready = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mine: Vec<Uuid> = job.batch.headers.iter().map(|(r, _)| *r).filter(|r| taken.contains(r)).collect();
        if mine.is_empty() {
            ready.push(job);
        } else {
            answer(job, Err(Refusal::Taken(mine)));
        }
    }
    if ready.is_empty() {
        return;
    }
    let all: Vec<&Batch> = ready.iter().map(|j| &j.batch).collect();
    match batch::write(&pool, &all).await {
        Ok(()) => ready.into_iter().for_each(|job| answer(job, Ok(()))),
        Err(e) if ready.len() == 1 => {
            if let Some(job) = ready.pop() {
                answer(job, Err(Refusal::Failed(e)));
            }
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), batches = ready.len(), "stock writer: a combined write failed; writing batch by batch");
            for job in ready {
                let result = batch::write(&pool, &[&job.batch]).await.map_err(Refusal::Failed);
                answer(job, result);
            }
        }
    }
}
