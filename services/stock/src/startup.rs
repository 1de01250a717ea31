//! Wiring: the shared runtime plus the reservation registry, its RPC server, the event
//! consumer and the catalog routes.

use std::sync::Arc;

use bus::RpcServer;
use platform::shutdown::CancellationToken;
use service::{Running, ServiceBase};

use crate::consumer::{StockEvents, BINDINGS};
use crate::http::AppState;
use crate::reservations::{Stock, Tuning};
use crate::rpc::StockRpc;
use crate::shards::{Change, Shards};
use crate::Config;

/// Request body limit; nginx enforces the same in front.
pub const BODY_LIMIT: usize = 1 << 20;

pub struct Application {
    running: Running,
    stock: Stock,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // The actors write through a pool of their own: a consumer or handler that holds a
        // connection while it waits for an actor (the order events' commits do, inside their
        // inbox transaction) can then never take the connection the actor needs to answer.
        let actor_pool = platform::db::pool(
            &config.common.database_url,
            &config.common.database_schema,
            config.common.database_max_connections,
        )?;
        let mut base = ServiceBase::new(config.common)?;
        let tuning = Tuning {
            idle_after: config.actor_idle,
            call_timeout: config.actor_call_timeout,
            writers: config.writers,
            gather: config.gather,
        };
        // Sharded even alone: a second instance started later finds the shards owned.
        let forwarding = bus::RpcClient::new(base.broker.clone());
        let (shards, owners) =
            Shards::new(config.shards, &config.rpc_queue, forwarding, config.actor_call_timeout, actor_pool.clone());
        let shards = Arc::new(shards);
        let stock = Stock::start(actor_pool, tuning).await?.sharded(shards.clone());

        base.project_access(&config.queue);
        base.consume(&config.queue, BINDINGS, StockEvents { stock: stock.clone() }).await;
        let handler: Arc<dyn bus::RpcHandler> = Arc::new(StockRpc { stock: stock.local() });
        let queues = shards.queues();
        for (k, (queue, owner)) in (0_u16..).zip(queues.iter().zip(owners)) {
            let server = RpcServer::new(base.broker.clone(), queue, handler.clone())
                .single_active(owner)
                .step_down_on(shards.step_down_signal(k));
            base.serve_rpc_with(server, queue);
        }
        let pinging = shards.clone();
        let broker = base.broker.clone();
        let (ping_every, spread) = (config.shard_ping_every, config.spread_shards);
        base.task("shard pings", move |stop| {
            Box::pin(async move {
                let mut every = tokio::time::interval(ping_every);
                // A round slowed by a hand-over is not made up for by rounds back to back.
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let rounds = async {
                    loop {
                        every.tick().await;
                        pinging.ping_all(ping_every).await;
                        if !spread {
                            continue;
                        }
                        // Every instance consumes every shard queue: the first one's
                        // consumers are the instances serving now; and the shard let go
                        // must have someone waiting for it (not one still subscribing).
                        let Ok(n) = broker.consumers(&queues[0]).await else { continue };
                        let Some(k) = pinging.over_share(n) else { continue };
                        if broker.consumers(&queues[usize::from(k)]).await.is_ok_and(|waiting| waiting >= 2) {
                            tracing::info!(shard = k, instances = n, "letting a stock shard go to spread the shards");
                            pinging.step_down(k);
                        }
                    }
                };
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = rounds => {}
                }
            })
        });
        let handed = stock.clone();
        let mut changes = shards.changes();
        // Which shards this instance owns, for the engineer on call (and the tests that kill
        // a shard's owner): 1 on the owner, 0 elsewhere.
        let owned = base.metrics.gauges_by("stock_shard_owned", "1 when this instance owns the stock shard");
        let shard = |k: u16| vec![("shard".to_owned(), k.to_string())];
        for k in 0..config.shards.max(1) {
            owned.get_or_create(&shard(k)).set(0);
        }
        base.task("shard hand-over", move |stop| {
            Box::pin(async move {
                loop {
                    let change = tokio::select! {
                        () = stop.cancelled() => return,
                        change = changes.next() => change,
                    };
                    match change {
                        Change::Lost(k) => {
                            owned.get_or_create(&shard(k)).set(0);
                            tracing::warn!(shard = k, "a stock shard went to another instance; its actors here stop");
                            // The other shards' actors run on.
                            handed.forget_where(|shop| shards.shard_of(shop) == k).await;
                        }
                        Change::Gained(k) => {
                            owned.get_or_create(&shard(k)).set(1);
                            // Actors of this shard left from an earlier turn (a request in
                            // flight when it went) would serve from stale memory.
                            handed.forget_where(|shop| shards.shard_of(shop) == k).await;
                            match handed.revive_held(|shop| shards.shard_of(shop) == k).await {
                                Ok(n) => tracing::info!(shard = k, products_with_holds = n, "owning a stock shard"),
                                Err(e) => {
                                    tracing::warn!(shard = k, error = %e, "could not start the shard's held products")
                                }
                            }
                        }
                    }
                }
            })
        });

        let state = AppState { pool: base.pool.clone(), stock: stock.clone() };
        let running = base.start(crate::http::router(state), BODY_LIMIT).await?;
        Ok(Self { running, stock })
    }

    pub fn port(&self) -> u16 {
        self.running.port()
    }

    /// The reservation core (tests ask it as the handlers do).
    pub fn stock(&self) -> &Stock {
        &self.stock
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.running.shutdown_token()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stock = self.stock.clone();
        let result = self.running.run_until_stopped().await;
        stock.stop_all();
        result
    }
}
