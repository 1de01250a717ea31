//! Finds or starts the actor of a product. Actors are started on demand, stop when idle,
//! and are restarted (with backoff after failures) from the rows on the next message. A
//! supervisor actor hears of every stop and failure and forgets the dead reference.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform::ids::ProductId;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort, SupervisionEvent};
use sqlx::PgPool;

use super::actor::{Args, Msg, ProductActor};
use super::writer::Writer;
use super::{StockError, Tuning};

#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    writer: Writer,
    idle_after: Duration,
    call_timeout: Duration,
    actors: Mutex<HashMap<ProductId, ActorRef<Msg>>>,
    ids: Mutex<HashMap<ActorId, ProductId>>,
    failures: Mutex<HashMap<ProductId, (u32, Instant)>>,
    supervisor: Mutex<Option<ActorRef<()>>>,
    /// Serialises spawning so two callers do not start two actors for one product.
    spawn_lock: tokio::sync::Mutex<()>,
}

struct Supervisor;

impl Actor for Supervisor {
    type Msg = ();
    type State = Registry;
    type Arguments = Registry;

    async fn pre_start(&self, _myself: ActorRef<()>, registry: Registry) -> Result<Registry, ActorProcessingErr> {
        Ok(registry)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<()>,
        evt: SupervisionEvent,
        registry: &mut Registry,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                tracing::error!(actor = %cell.get_id(), error = %err, "stock actor failed; it restarts from the rows on its next message");
                registry.forget(&cell, true);
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => registry.forget(&cell, false),
            _ => {}
        }
        Ok(())
    }
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << failures.min(6))).min(Duration::from_secs(3))
}

impl Registry {
    pub async fn start(pool: PgPool, tuning: Tuning) -> anyhow::Result<Self> {
        let registry = Self {
            inner: Arc::new(Inner {
                writer: Writer::start(pool.clone(), tuning.writers, tuning.gather),
                pool,
                idle_after: tuning.idle_after,
                call_timeout: tuning.call_timeout,
                actors: Mutex::default(),
                ids: Mutex::default(),
                failures: Mutex::default(),
                supervisor: Mutex::new(None),
                spawn_lock: tokio::sync::Mutex::new(()),
            }),
        };
        let (sup, _) =
            Actor::spawn(None, Supervisor, registry.clone()).await.map_err(|e| anyhow::anyhow!("supervisor: {e}"))?;
        if let Ok(mut s) = registry.inner.supervisor.lock() {
            *s = Some(sup);
        }
        Ok(registry)
    }

    fn forget(&self, cell: &ActorCell, failed: bool) {
        let id = cell.get_id();
        let product = self.inner.ids.lock().ok().and_then(|mut ids| ids.remove(&id));
        if let Some(product) = product {
            if let Ok(mut actors) = self.inner.actors.lock() {
                if actors.get(&product).is_some_and(|a| a.get_id() == id) {
                    actors.remove(&product);
                }
            }
            if let Ok(mut f) = self.inner.failures.lock() {
                if failed {
                    let e = f.entry(product).or_insert((0, Instant::now()));
                    *e = (e.0 + 1, Instant::now());
                } else {
                    f.remove(&product);
                }
            }
        }
    }

    fn live(&self, product: ProductId) -> Option<ActorRef<Msg>> {
        let actors = self.inner.actors.lock().ok()?;
        actors.get(&product).filter(|a| matches!(a.get_status(), ActorStatus::Running | ActorStatus::Starting)).cloned()
    }

    /// The running actor of `product`, started from the rows if needed.
    pub async fn actor(&self, product: ProductId) -> Result<ActorRef<Msg>, StockError> {
        if let Some(a) = self.live(product) {
            return Ok(a);
        }
        let _guard = self.inner.spawn_lock.lock().await;
        if let Some(a) = self.live(product) {
            return Ok(a);
        }
        let wait = self
            .inner
            .failures
            .lock()
            .ok()
            .and_then(|f| f.get(&product).map(|(n, at)| backoff(*n).saturating_sub(at.elapsed())))
            .unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let supervisor = self.inner.supervisor.lock().ok().and_then(|s| s.clone()).ok_or(StockError::Busy)?;
        let actor = ProductActor {
            pool: self.inner.pool.clone(),
            writer: self.inner.writer.clone(),
            idle_after: self.inner.idle_after,
        };
        match Actor::spawn_linked(None, actor, Args { product_id: product }, supervisor.get_cell()).await {
            Ok((a, _)) => {
                if let Ok(mut ids) = self.inner.ids.lock() {
                    ids.insert(a.get_id(), product);
                }
                if let Ok(mut actors) = self.inner.actors.lock() {
                    actors.insert(product, a.clone());
                }
                Ok(a)
            }
            Err(e) => {
                let exists: bool = sqlx::query_scalar(
                    "select exists(select 1 from stock.products where product_id = $1 and status <> 'DELETED')",
                )
                .bind(product.0)
                .fetch_one(&self.inner.pool)
                .await
                .map_err(|db| super::internal(&format!("starting the actor of {product} ({e})"), db))?;
                if exists {
                    tracing::error!(%product, error = %e, "stock actor could not start");
                    Err(StockError::Busy)
                } else {
                    Err(StockError::ProductNotFound(product.0))
                }
            }
        }
    }

    /// Asks the product's actor and waits (bounded) for the answer; a dead actor is
    /// restarted and asked once more.
    pub async fn ask<T: Send + 'static>(
        &self,
        product: ProductId,
        build: impl Fn(RpcReplyPort<Result<T, StockError>>) -> Msg,
    ) -> Result<T, StockError> {
        for _ in 0..3 {
            let actor = self.actor(product).await?;
            match actor.call(&build, Some(self.inner.call_timeout)).await {
                Ok(CallResult::Success(answer)) => return answer,
                Ok(CallResult::Timeout) => return Err(StockError::Busy),
                Ok(CallResult::SenderError) | Err(_) => {
                    // Stopped (idle) between lookup and call: forget it and start it again.
                    if let Ok(mut actors) = self.inner.actors.lock() {
                        if actors.get(&product).is_some_and(|a| a.get_id() == actor.get_id()) {
                            actors.remove(&product);
                        }
                    }
                }
            }
        }
        Err(StockError::Busy)
    }

    /// Tells a running actor something (no answer); not-running actors load it anyway.
    pub fn tell(&self, product: ProductId, msg: Msg) {
        if let Some(a) = self.live(product) {
            let _ = a.cast(msg);
        }
    }

    /// The products whose actors run.
    pub fn products(&self) -> Vec<ProductId> {
        self.inner.actors.lock().map(|a| a.keys().copied().collect()).unwrap_or_default()
    }

    /// Stops the actors of the products `pick` selects; the registry stays and starts them
    /// again from the rows on their next message. Taken out of the map and stopped as one
    /// step, so an actor started meanwhile is not dropped from the map while running on.
    pub fn stop_actors_where(&self, pick: impl Fn(ProductId) -> bool) {
        let picked: Vec<ActorRef<Msg>> = self
            .inner
            .actors
            .lock()
            .map(|mut actors| {
                let ids: Vec<ProductId> = actors.keys().copied().filter(|p| pick(*p)).collect();
                ids.iter().filter_map(|p| actors.remove(p)).collect()
            })
            .unwrap_or_default();
        for a in picked {
            a.stop(Some("shard handed over".into()));
        }
    }

    /// Stops every actor (shutdown); their state is in the rows.
    pub fn stop_all(&self) {
        let actors: Vec<ActorRef<Msg>> =
            self.inner.actors.lock().map(|a| a.values().cloned().collect()).unwrap_or_default();
        for a in actors {
            a.stop(Some("shutdown".into()));
        }
        if let Some(s) = self.inner.supervisor.lock().ok().and_then(|s| s.clone()) {
            s.stop(Some("shutdown".into()));
        }
    }

    pub fn running(&self) -> usize {
        self.inner.actors.lock().map(|a| a.len()).unwrap_or(0)
    }
}
