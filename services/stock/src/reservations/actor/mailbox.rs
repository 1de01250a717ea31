//! The actor's state around the product's stock: what waits to be written and who waits for
//! it, the deferred queue, and the clocks (each hold's expiry, the idle tick).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ractor::concurrency::JoinHandle;
use ractor::ActorRef;
use uuid::Uuid;

use bus::MessageMeta;

use super::{Msg, Reply, Request, Together};
use crate::reservations::state::{Op, ProductStock, Step};
use crate::reservations::{Held, Level, StockError};

/// Who waits for a pending op.
pub(super) enum Waiting {
    Lines(Reply<Held>),
    Done(Reply<()>),
    Level(Reply<Level>),
    Nobody,
}

pub struct Mailbox {
    pub(super) stock: ProductStock,
    /// Applied in memory, not written yet, with who waits for each.
    pub(super) pending: Vec<(Op, Waiting)>,
    /// The products of each reservation of several products the pending batch writes a
    /// part of (the writer waits for the other parts in a quiet moment).
    pub(super) together: Vec<Together>,
    /// The request context of the pending batch's latest change: its events carry it.
    pub(super) batch_meta: MessageMeta,
    pub(super) flush_scheduled: bool,
    /// Requests that wait for the batch in flight, in arrival order.
    pub(super) deferred: VecDeque<Request>,
    /// The expiry clock of each written hold.
    pub(super) clocks: HashMap<Uuid, JoinHandle<()>>,
    pub(super) ticker: Option<JoinHandle<()>>,
    pub(super) last_activity: Instant,
}

impl Mailbox {
    pub(super) fn stop_clock(&mut self, reservation_id: Uuid) {
        if let Some(t) = self.clocks.remove(&reservation_id) {
            t.abort();
        }
    }

    pub(super) fn stop_clocks(&mut self) {
        for (_, t) in self.clocks.drain() {
            t.abort();
        }
    }

    /// Starts the expiry clock of every written hold (after a load).
    pub(super) fn start_clocks(&mut self, myself: &ActorRef<Msg>) {
        let now = Utc::now();
        let holds: Vec<(Uuid, DateTime<Utc>)> = self.stock.holds.iter().map(|(id, h)| (*id, h.expires_at)).collect();
        for (id, at) in holds {
            if at <= now {
                let _ = myself.cast(Msg::Ask(Request::Expire { reservation_id: id }));
            } else {
                self.clocks.insert(id, clock(myself, id, at));
            }
        }
    }

    /// Queues an applied op; the next flush writes it and answers `waiting`.
    pub(super) fn queue(&mut self, myself: &ActorRef<Msg>, op: Op, waiting: Waiting, meta: MessageMeta) {
        self.pending.push((op, waiting));
        self.batch_meta = meta;
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            // Queued behind everything already waiting: those requests join this batch.
            let _ = myself.cast(Msg::Flush);
        }
    }

    /// Answers a step now or queues it; hands back what needs the actor (defer, lookup).
    pub(super) fn conclude<T>(
        &mut self,
        myself: &ActorRef<Msg>,
        step: Step<T>,
        reply: Reply<T>,
        waiting: fn(Reply<T>) -> Waiting,
        meta: MessageMeta,
    ) -> Option<(Step<T>, Reply<T>)> {
        match step {
            Step::Answer(a) => {
                send(reply, a);
                None
            }
            Step::Apply(op) => {
                self.queue(myself, op, waiting(reply), meta);
                None
            }
            other => Some((other, reply)),
        }
    }
}

pub(super) fn send<T>(reply: Reply<T>, answer: Result<T, StockError>) {
    if reply.send(answer).is_err() {
        tracing::debug!("reply dropped (caller gone)");
    }
}

pub(super) fn clock(myself: &ActorRef<Msg>, reservation_id: Uuid, at: DateTime<Utc>) -> JoinHandle<()> {
    let delay = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let me = myself.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = me.cast(Msg::Ask(Request::Expire { reservation_id }));
    })
}
