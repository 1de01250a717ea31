//! The product actor: the mailbox and clocks around one product's [`ProductStock`]. Each
//! request is applied to the state at once (`state.rs` decides) and its reply waits in the
//! pending batch; a `Flush` the actor sends itself (queued behind whatever already waits)
//! hands the batch to the writer and, once it is written, answers every request in it.
//! Requests that must see the batch in flight land first wait in an explicit deferred
//! queue, replayed after the flush. A failed batch answers `Busy` and reloads the state
//! from the rows (the source of truth).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sqlx::PgPool;
use uuid::Uuid;

use bus::MessageMeta;
use platform::ids::ProductId;

use super::state::{self, Op, Step, Unit};
use super::writer::{Refusal, Together, Writer};
use super::{store, Adjustment, Held, Level, StockError, Want};
use crate::domain::{MovementKind, Tracking};

mod mailbox;

pub use mailbox::Mailbox;
use mailbox::{clock, send, Waiting};

pub type Reply<T> = RpcReplyPort<Result<T, StockError>>;

/// What the actor's mailbox carries.
pub enum Msg {
    Ask(Request),
    /// Write the pending batch.
    Flush,
    /// The idle clock.
    Tick,
}

/// What can be asked of a product's stock.
pub enum Request {
    Reserve {
        reservation_id: Uuid,
        shop_id: Uuid,
        expires_at: DateTime<Utc>,
        wants: Vec<Want>,
        /// Every product of the reservation, when it has several (see `Writer::write`).
        together: Option<Together>,
        /// The context of the request behind it, for the events its batch publishes.
        meta: MessageMeta,
        reply: Reply<Held>,
    },
    /// Stops the expiry clock of a held reservation so a multi-product commit cannot be cut
    /// in half by an expiry between its parts.
    Pin {
        reservation_id: Uuid,
        reply: Reply<()>,
    },
    Commit {
        reservation_id: Uuid,
        order_id: Option<Uuid>,
        /// Every product of the reservation, when it has several.
        together: Option<Together>,
        meta: MessageMeta,
        reply: Reply<()>,
    },
    Release {
        reservation_id: Uuid,
        reply: Reply<()>,
    },
    /// A hold's clock ran out.
    Expire {
        reservation_id: Uuid,
    },
    Adjust {
        change: Adjustment,
        reply: Reply<Level>,
    },
    /// A serialized unit was created (by the items endpoint); it is available now.
    UnitAdded {
        item_id: Uuid,
        unit: Unit,
    },
    /// A serialized unit leaves stock by hand (damaged, lost); only an available one can.
    RemoveUnit {
        item_id: Uuid,
        reason: String,
        actor_id: Option<Uuid>,
        meta: MessageMeta,
        reply: Reply<()>,
    },
    /// A sold serialized unit comes back (a return with restock).
    ReturnUnit {
        item_id: Uuid,
        return_id: Uuid,
        meta: MessageMeta,
        reply: Reply<()>,
    },
    /// Product, prices or discounts changed: reload what they affect.
    Reload,
}

/// Which product, and where it lives.
pub struct Args {
    pub product_id: ProductId,
}

pub struct ProductActor {
    pub pool: PgPool,
    pub writer: Writer,
    pub idle_after: Duration,
}

impl Actor for ProductActor {
    type Msg = Msg;
    type State = Mailbox;
    type Arguments = Args;

    async fn pre_start(&self, myself: ActorRef<Msg>, args: Args) -> Result<Mailbox, ActorProcessingErr> {
        let stock = store::load(&self.pool, args.product_id.0).await?;
        let tick = (self.idle_after / 4).max(Duration::from_millis(200));
        let mut mailbox = Mailbox {
            stock,
            pending: Vec::new(),
            together: Vec::new(),
            batch_meta: MessageMeta::default(),
            flush_scheduled: false,
            deferred: VecDeque::new(),
            clocks: HashMap::new(),
            ticker: Some(myself.send_interval(tick, || Msg::Tick)),
            last_activity: Instant::now(),
        };
        // Holds from before a restart: keep the live ones on their clock, release the rest.
        mailbox.start_clocks(&myself);
        Ok(mailbox)
    }

    async fn post_stop(&self, _myself: ActorRef<Msg>, mailbox: &mut Mailbox) -> Result<(), ActorProcessingErr> {
        if let Some(t) = mailbox.ticker.take() {
            t.abort();
        }
        mailbox.stop_clocks();
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<Msg>, msg: Msg, mailbox: &mut Mailbox) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Ask(request) => {
                mailbox.last_activity = Instant::now();
                self.request(&myself, request, mailbox).await
            }
            Msg::Flush => {
                mailbox.flush_scheduled = false;
                if !mailbox.pending.is_empty() {
                    self.flush(&myself, mailbox).await?;
                }
                for request in std::mem::take(&mut mailbox.deferred) {
                    self.request(&myself, request, mailbox).await?;
                }
                Ok(())
            }
            Msg::Tick => {
                let idle = mailbox.pending.is_empty()
                    && mailbox.deferred.is_empty()
                    && mailbox.stock.holds.is_empty()
                    && mailbox.last_activity.elapsed() >= self.idle_after;
                if idle {
                    tracing::debug!(product_id = %mailbox.stock.product_id, "idle; stopping");
                    myself.stop(Some("idle".into()));
                }
                Ok(())
            }
        }
    }
}

/// Whether a change with a source was applied already.
enum Seen {
    No,
    InBatch,
    Persisted,
}

impl ProductActor {
    async fn request(&self, me: &ActorRef<Msg>, request: Request, mb: &mut Mailbox) -> Result<(), ActorProcessingErr> {
        match request {
            Request::Reserve { reservation_id, shop_id, expires_at, wants, together, meta, reply } => {
                let step = mb.stock.reserve(shop_id, reservation_id, expires_at, &wants, Utc::now());
                if let (Step::Apply(_), Some(products)) = (&step, together) {
                    mb.together.push(products);
                }
                // A reservation answers now or after its batch; it is never deferred.
                mb.conclude(me, step, reply, Waiting::Lines, meta);
            }
            Request::Pin { reservation_id, reply } => {
                let step = mb.stock.pin(reservation_id);
                if matches!(step, Step::Answer(Ok(()))) {
                    mb.stop_clock(reservation_id);
                }
                match mb.conclude(me, step, reply, Waiting::Done, mb.batch_meta.clone()) {
                    Some((Step::Defer, reply)) => mb.deferred.push_back(Request::Pin { reservation_id, reply }),
                    Some((_, reply)) => send(reply, self.lookup(mb, reservation_id, true).await),
                    None => {}
                }
            }
            Request::Commit { reservation_id, order_id, together, meta, reply } => {
                let step = mb.stock.commit(reservation_id, order_id);
                if matches!(step, Step::Apply(_)) {
                    mb.stop_clock(reservation_id);
                    mb.together.extend(together.clone());
                }
                match mb.conclude(me, step, reply, Waiting::Done, meta.clone()) {
                    Some((Step::Defer, reply)) => {
                        mb.deferred.push_back(Request::Commit { reservation_id, order_id, together, meta, reply })
                    }
                    Some((_, reply)) => send(reply, self.lookup(mb, reservation_id, true).await),
                    None => {}
                }
            }
            Request::Release { reservation_id, reply } => {
                let step = mb.stock.release(reservation_id, false);
                if matches!(step, Step::Apply(_)) {
                    mb.stop_clock(reservation_id);
                }
                let meta = mb.batch_meta.clone();
                match mb.conclude(me, step, reply, Waiting::Done, meta) {
                    Some((Step::Defer, reply)) => mb.deferred.push_back(Request::Release { reservation_id, reply }),
                    Some((_, reply)) => {
                        let answer = match self.lookup(mb, reservation_id, false).await {
                            Err(StockError::ReservationExpired) => Ok(()), // already released: fine
                            other => other,
                        };
                        send(reply, answer);
                    }
                    None => {}
                }
            }
            Request::Expire { reservation_id } => {
                mb.clocks.remove(&reservation_id);
                if let Step::Apply(op) = mb.stock.expire(reservation_id, Utc::now()) {
                    let meta = mb.batch_meta.clone();
                    mb.queue(me, op, Waiting::Nobody, meta);
                }
            }
            Request::Adjust { change, reply } => self.adjust(me, mb, change, reply).await,
            Request::UnitAdded { item_id, unit } => mb.stock.add_unit(item_id, unit),
            Request::RemoveUnit { item_id, reason, actor_id, meta, reply } => {
                let step = mb.stock.remove_unit(item_id, reason, actor_id);
                mb.conclude(me, step, reply, Waiting::Done, meta);
            }
            Request::ReturnUnit { item_id, return_id, meta, reply } => {
                match self.seen(mb, MovementKind::Return, return_id, Some(item_id)).await {
                    Ok(Seen::InBatch) => mb.deferred.push_back(Request::ReturnUnit { item_id, return_id, meta, reply }),
                    Ok(Seen::Persisted) => send(reply, Ok(())),
                    Ok(Seen::No) => mb.queue(me, Op::ReturnUnit { item_id, return_id }, Waiting::Done(reply), meta),
                    Err(e) => send(reply, Err(e)),
                }
            }
            Request::Reload if mb.pending.is_empty() => self.reload(me, mb).await?,
            Request::Reload => mb.deferred.push_back(Request::Reload), // after the batch
        }
        Ok(())
    }

    /// A bulk change with a source (a return, an idempotent receipt or adjustment) is applied
    /// once: a second copy answers the level without applying.
    async fn adjust(&self, me: &ActorRef<Msg>, mb: &mut Mailbox, change: Adjustment, reply: Reply<Level>) {
        if let (Some(source), Tracking::Bulk) = (change.source_id, mb.stock.tracking) {
            match self.seen(mb, change.kind, source, None).await {
                Ok(Seen::InBatch) => return mb.deferred.push_back(Request::Adjust { change, reply }),
                Ok(Seen::Persisted) => return send(reply, Ok(mb.stock.level())),
                Ok(Seen::No) => {}
                Err(e) => return send(reply, Err(e)),
            }
        }
        let meta = change.meta.clone();
        let step = mb.stock.adjust(change);
        mb.conclude(me, step, reply, Waiting::Level, meta);
    }

    async fn seen(
        &self,
        mb: &Mailbox,
        kind: MovementKind,
        source: Uuid,
        item: Option<Uuid>,
    ) -> Result<Seen, StockError> {
        if state::in_batch(mb.pending.iter().map(|(op, _)| op), kind, source, item) {
            return Ok(Seen::InBatch);
        }
        match store::applied(&self.pool, mb.stock.product_id, kind, source, item).await {
            Ok(true) => Ok(Seen::Persisted),
            Ok(false) => Ok(Seen::No),
            Err(e) => Err(internal(mb, "checking whether a change was applied", e)),
        }
    }

    /// The answer for a reservation this actor does not hold (any more): the rows decide.
    async fn lookup(&self, mb: &Mailbox, reservation_id: Uuid, want_commit: bool) -> Result<(), StockError> {
        let status = store::line_status(&self.pool, mb.stock.product_id, reservation_id)
            .await
            .map_err(|e| internal(mb, "reading a settled reservation", e))?;
        state::settled_answer(status, want_commit)
    }

    /// Why a new reservation's id was refused: this product's line of it has settled (a
    /// retry after the actor that settled it stopped: idle, restarted or handed over), so
    /// the rows answer; otherwise the id is another shop's.
    async fn taken(&self, mb: &Mailbox, reservation_id: Uuid) -> StockError {
        match store::line_status(&self.pool, mb.stock.product_id, reservation_id).await {
            Ok(None) => StockError::ReservationIdTaken,
            Ok(status) => state::settled_answer(status, false).err().unwrap_or(StockError::ReservationCommitted),
            Err(e) => internal(mb, "reading a settled reservation", e),
        }
    }

    async fn reload(&self, me: &ActorRef<Msg>, mb: &mut Mailbox) -> Result<(), ActorProcessingErr> {
        mb.stop_clocks();
        let settled = std::mem::take(&mut mb.stock.settled);
        mb.stock = store::load(&self.pool, mb.stock.product_id).await?;
        mb.stock.settled = settled;
        mb.start_clocks(me);
        Ok(())
    }

    /// Writes every pending op in one batch (with other products' batches), then answers
    /// them all.
    async fn flush(&self, me: &ActorRef<Msg>, mb: &mut Mailbox) -> Result<(), ActorProcessingErr> {
        let mut pending = std::mem::take(&mut mb.pending);
        let meta = std::mem::take(&mut mb.batch_meta);
        let together = std::mem::take(&mut mb.together);
        loop {
            let ops: Vec<Op> = pending.iter().map(|(op, _)| op.clone()).collect();
            match self.writer.write(mb.stock.batch(&ops, meta.clone()), together.clone()).await {
                Ok(()) => {
                    written(me, mb, pending);
                    return Ok(());
                }
                Err(Refusal::Taken(ids)) => {
                    // Another shop's reservation ids: refuse just those and undo their holds.
                    let (refused, kept) = pending.into_iter().partition(
                        |(op, _)| matches!(op, Op::Reserve { reservation_id, .. } if ids.contains(reservation_id)),
                    );
                    pending = kept;
                    for (op, waiting) in refused {
                        if let (Op::Reserve { reservation_id, .. }, Waiting::Lines(reply)) = (op, waiting) {
                            mb.stock.undo_hold(reservation_id);
                            send(reply, Err(self.taken(mb, reservation_id).await));
                        }
                    }
                    if pending.is_empty() {
                        return Ok(());
                    }
                }
                Err(Refusal::Failed(e)) => {
                    tracing::error!(product_id = %mb.stock.product_id, error = %format!("{e:#}"), ops = pending.len(), "stock batch failed; reloading from the rows");
                    for (op, waiting) in pending {
                        // Not settled here after all (maybe elsewhere: another instance that
                        // owned the shard a moment ago): the rows answer a retry.
                        if let Op::Commit { reservation_id, .. } | Op::Release { reservation_id, .. } = op {
                            mb.stock.settled.remove(&reservation_id);
                        }
                        fail(waiting, StockError::Busy);
                    }
                    return self.reload(me, mb).await;
                }
            }
        }
    }
}

/// The batch is written: holds become visible to retries and start their clocks, and every
/// request in it is answered.
fn written(me: &ActorRef<Msg>, mb: &mut Mailbox, pending: Vec<(Op, Waiting)>) {
    if pending.iter().any(|(op, _)| matches!(op, Op::ReturnUnit { .. })) {
        // A returned unit is on sale again: read it back (returns are rare).
        mb.deferred.push_back(Request::Reload);
    }
    mb.stock.available_at_batch_start = mb.stock.available();
    let level = mb.stock.level();
    for (op, waiting) in pending {
        let lines = match op {
            Op::Reserve { reservation_id, expires_at } | Op::Extend { reservation_id, expires_at } => {
                match mb.stock.holds.get_mut(&reservation_id) {
                    Some(h) => {
                        h.persisted = true;
                        if let Some(old) = mb.clocks.insert(reservation_id, clock(me, reservation_id, expires_at)) {
                            old.abort();
                        }
                        h.lines.clone()
                    }
                    None => Vec::new(), // released within the same batch
                }
            }
            _ => Vec::new(),
        };
        match waiting {
            Waiting::Lines(r) => send(r, Ok(Held { currency: mb.stock.currency, lines })),
            Waiting::Done(r) => send(r, Ok(())),
            Waiting::Level(r) => send(r, Ok(level)),
            Waiting::Nobody => {}
        }
    }
}

/// Answers whoever waits with a refusal.
fn fail(waiting: Waiting, e: StockError) {
    match waiting {
        Waiting::Lines(r) => send(r, Err(e)),
        Waiting::Done(r) => send(r, Err(e)),
        Waiting::Level(r) => send(r, Err(e)),
        Waiting::Nobody => {}
    }
}

/// An internal failure of this product's actor (see [`super::internal`]).
fn internal(mb: &Mailbox, doing: &str, e: impl Into<anyhow::Error>) -> StockError {
    super::internal(&format!("{doing} (product {})", mb.stock.product_id), e)
}
