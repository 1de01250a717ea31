//! The product actor: owns one product's availability. Requests are applied in memory as
//! they arrive and queued; a `Flush` the actor sends itself (queued behind whatever already
//! waits) persists the whole batch in one transaction and then replies to each request.
//! Nothing holds a transaction across messages; failures of a batch reload the state from
//! the rows (the source of truth) and answer `Busy`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sqlx::PgPool;
use uuid::Uuid;

use bus::MessageMeta;
use platform::{Currency, Money};

use super::store::{self, Batch, Low, Movement, Settled};
use super::{HeldLine, Level, StockError, Want};

pub type Reply<T> = RpcReplyPort<Result<T, StockError>>;

/// What can change a product's stock.
pub enum Msg {
    Reserve {
        reservation_id: Uuid,
        shop_id: Uuid,
        expires_at: DateTime<Utc>,
        wants: Vec<Want>,
        /// The context of the request behind it, for the events its batch publishes.
        meta: MessageMeta,
        reply: Reply<Vec<HeldLine>>,
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
        meta: MessageMeta,
        reply: Reply<()>,
    },
    Release {
        reservation_id: Uuid,
        reply: Reply<()>,
    },
    Adjust {
        change: Adjustment,
        reply: Reply<Level>,
    },
    /// A serialized unit was created (by the items endpoint); it is available now.
    UnitAdded {
        item_id: Uuid,
        barcode: String,
        price_minor: i64,
        warranty_months: Option<i32>,
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
    Flush,
    Expire {
        reservation_id: Uuid,
    },
    Tick,
}

/// A change to a bulk level that does not come from a reservation.
#[derive(Debug, Clone)]
pub struct Adjustment {
    pub delta: i64,
    /// RECEIPT, ADJUSTMENT or RETURN
    pub kind: &'static str,
    pub reason: Option<String>,
    pub actor_id: Option<Uuid>,
    pub unit_cost_minor: Option<i64>,
    /// What it belongs to, so a second copy applies nothing: the return (RETURN), or the
    /// idempotency key's effect id (RECEIPT, ADJUSTMENT).
    pub source_id: Option<Uuid>,
    /// For RECEIPT: the supplier it came from (one of the shop's).
    pub supplier_id: Option<Uuid>,
    /// The context of the request behind it, for the events its batch publishes.
    pub meta: MessageMeta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracking {
    Bulk,
    Serialized,
}

#[derive(Debug, Clone)]
pub(super) struct Unit {
    pub(super) barcode: String,
    pub(super) price_minor: i64,
    pub(super) warranty_months: Option<i32>,
    /// None: available; Some(reservation): held.
    pub(super) held_by: Option<Uuid>,
}

pub(super) struct Hold {
    pub(super) lines: Vec<HeldLine>,
    pub(super) quantity: i64,
    pub(super) items: Vec<Uuid>,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) timer: Option<JoinHandle<()>>,
    pub(super) persisted: bool,
}

pub(super) enum Op {
    Reserve { reservation_id: Uuid, expires_at: DateTime<Utc>, reply: Reply<Vec<HeldLine>> },
    Commit { reservation_id: Uuid, quantity: i64, items: Vec<Uuid>, order_id: Option<Uuid>, reply: Reply<()> },
    Release { reservation_id: Uuid, quantity: i64, items: Vec<Uuid>, expired: bool, reply: Option<Reply<()>> },
    Adjust { change: Adjustment, reply: Reply<Level> },
    ReturnUnit { item_id: Uuid, return_id: Uuid, reply: Reply<()> },
    RemoveUnit { item_id: Uuid, reason: String, actor_id: Option<Uuid>, reply: Reply<()> },
}

pub struct State {
    pub(super) product_id: Uuid,
    pub(super) shop_id: Uuid,
    pub(super) name: String,
    pub(super) tracking: Tracking,
    pub(super) currency: Currency,
    pub(super) price_minor: i64,
    pub(super) warranty_months: i32,
    pub(super) loyalty_points: i64,
    pub(super) keeping_units: i64,
    pub(super) on_hand: i64,
    pub(super) reserved: i64,
    pub(super) units: HashMap<Uuid, Unit>,
    /// (basis points, from, until) of the product's discounts.
    pub(super) discounts: Vec<(i64, DateTime<Utc>, DateTime<Utc>)>,
    pub(super) holds: HashMap<Uuid, Hold>,
    /// Reservations settled during this actor's life, for idempotent answers.
    pub(super) settled: HashMap<Uuid, &'static str>,
    pub(super) pending: Vec<Op>,
    pub(super) flush_scheduled: bool,
    pub(super) last_activity: Instant,
    pub(super) ticker: Option<JoinHandle<()>>,
    /// Available before the pending batch (to see a low-stock crossing).
    pub(super) available_at_batch_start: i64,
    /// The request context of the pending batch's latest change: its events carry it.
    pub(super) batch_meta: MessageMeta,
}

impl State {
    pub(super) fn available(&self) -> i64 {
        match self.tracking {
            Tracking::Bulk => self.on_hand - self.reserved,
            Tracking::Serialized => self.units.values().filter(|u| u.held_by.is_none()).count() as i64,
        }
    }

    fn level(&self) -> Level {
        match self.tracking {
            Tracking::Bulk => {
                Level { on_hand: self.on_hand, reserved: self.reserved, available: self.on_hand - self.reserved }
            }
            Tracking::Serialized => {
                let reserved = self.units.values().filter(|u| u.held_by.is_some()).count() as i64;
                let on_hand = self.units.len() as i64;
                Level { on_hand, reserved, available: on_hand - reserved }
            }
        }
    }

    /// The price after the best discount active now. Rounding happens here, once per unit.
    fn discounted(&self, list: i64) -> i64 {
        let now = Utc::now();
        let best =
            self.discounts.iter().filter(|(_, from, until)| *from <= now && now < *until).map(|(bp, _, _)| *bp).max();
        match best {
            None => list,
            Some(bp) => {
                let money = Money::from_minor(list, self.currency);
                money.percentage(10_000 - bp).map(|m| m.minor()).unwrap_or(list)
            }
        }
    }
}

/// Whether a return was applied already.
enum Seen {
    No,
    InBatch,
    Persisted,
    Failed(StockError),
}

/// An internal failure of this product's actor (see [`super::internal`]).
fn internal(state: &State, doing: &str, e: impl Into<anyhow::Error>) -> StockError {
    super::internal(&format!("{doing} (product {})", state.product_id), e)
}

/// Arguments: which product, and where it lives.
pub struct Args {
    pub product_id: Uuid,
}

pub struct ProductActor {
    pub pool: PgPool,
    pub idle_after: Duration,
}

fn log_err<T>(r: Result<T, impl std::fmt::Display>) {
    if let Err(e) = r {
        tracing::debug!(error = %e, "reply dropped (caller gone)");
    }
}

impl Actor for ProductActor {
    type Msg = Msg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(&self, myself: ActorRef<Msg>, args: Args) -> Result<State, ActorProcessingErr> {
        let mut state = store::load(&self.pool, args.product_id).await?;
        let tick = (self.idle_after / 4).max(Duration::from_millis(200));
        state.ticker = Some(myself.send_interval(tick, || Msg::Tick));
        // Holds from before a restart: keep the live ones on their clock, release the rest.
        let now = Utc::now();
        let ids: Vec<(Uuid, DateTime<Utc>)> = state.holds.iter().map(|(id, h)| (*id, h.expires_at)).collect();
        for (id, expires_at) in ids {
            if expires_at <= now {
                let _ = myself.cast(Msg::Expire { reservation_id: id });
            } else if let Some(h) = state.holds.get_mut(&id) {
                h.timer = Some(schedule_expiry(&myself, id, expires_at));
            }
        }
        Ok(state)
    }

    async fn post_stop(&self, _myself: ActorRef<Msg>, state: &mut State) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        for h in state.holds.values_mut() {
            if let Some(t) = h.timer.take() {
                t.abort();
            }
        }
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<Msg>, msg: Msg, state: &mut State) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, Msg::Tick) {
            state.last_activity = Instant::now();
        }
        match msg {
            Msg::Reserve { reservation_id, shop_id, expires_at, wants, meta, reply } => {
                if shop_id != state.shop_id {
                    log_err(reply.send(Err(StockError::ProductNotFound(state.product_id))));
                    return Ok(());
                }
                if let Some(h) = state.holds.get(&reservation_id) {
                    // A retry of the same reservation: the same answer, no second hold.
                    let lines = h.lines.clone();
                    if h.persisted {
                        log_err(reply.send(Ok(lines)));
                    } else {
                        log_err(reply.send(Err(StockError::Busy)));
                    }
                    return Ok(());
                }
                if let Some(status) = state.settled.get(&reservation_id) {
                    let e = if *status == "COMMITTED" {
                        StockError::ReservationCommitted
                    } else {
                        StockError::ReservationExpired
                    };
                    log_err(reply.send(Err(e)));
                    return Ok(());
                }
                match self.apply_reserve(state, reservation_id, expires_at, &wants) {
                    Ok(()) => {
                        state.pending.push(Op::Reserve { reservation_id, expires_at, reply });
                        state.batch_meta = meta;
                        schedule_flush(&myself, state);
                    }
                    Err(e) => log_err(reply.send(Err(e))),
                }
            }
            Msg::Pin { reservation_id, reply } if state.holds.get(&reservation_id).is_some_and(|h| !h.persisted) => {
                // Still being written: ask again after the batch that writes it.
                let _ = myself.cast(Msg::Pin { reservation_id, reply });
            }
            Msg::Commit { reservation_id, order_id, meta, reply }
                if state.holds.get(&reservation_id).is_some_and(|h| !h.persisted) =>
            {
                let _ = myself.cast(Msg::Commit { reservation_id, order_id, meta, reply });
            }
            Msg::Release { reservation_id, reply }
                if state.holds.get(&reservation_id).is_some_and(|h| !h.persisted) =>
            {
                let _ = myself.cast(Msg::Release { reservation_id, reply });
            }
            Msg::Pin { reservation_id, reply } => {
                let answer = match state.holds.get_mut(&reservation_id) {
                    Some(h) => {
                        if let Some(t) = h.timer.take() {
                            t.abort();
                        }
                        Ok(())
                    }
                    None => self.settled_answer(state, reservation_id, true).await,
                };
                log_err(reply.send(answer));
            }
            Msg::Commit { reservation_id, order_id, meta, reply } => match state.holds.remove(&reservation_id) {
                Some(mut h) => {
                    if let Some(t) = h.timer.take() {
                        t.abort();
                    }
                    match state.tracking {
                        Tracking::Bulk => {
                            state.on_hand -= h.quantity;
                            state.reserved -= h.quantity;
                        }
                        Tracking::Serialized => {
                            for item in &h.items {
                                state.units.remove(item);
                            }
                        }
                    }
                    state.settled.insert(reservation_id, "COMMITTED");
                    state.pending.push(Op::Commit {
                        reservation_id,
                        quantity: h.quantity,
                        items: h.items,
                        order_id,
                        reply,
                    });
                    state.batch_meta = meta;
                    schedule_flush(&myself, state);
                }
                None => {
                    let answer = self.settled_answer(state, reservation_id, true).await;
                    log_err(reply.send(answer));
                }
            },
            Msg::Release { reservation_id, reply } => {
                if state.holds.contains_key(&reservation_id) {
                    self.release(state, reservation_id, false, Some(reply));
                    schedule_flush(&myself, state);
                } else {
                    let answer = match self.settled_answer(state, reservation_id, false).await {
                        Err(StockError::ReservationExpired) => Ok(()), // already released: fine
                        other => other,
                    };
                    log_err(reply.send(answer));
                }
            }
            Msg::Expire { reservation_id } => {
                if state.holds.get(&reservation_id).is_some_and(|h| h.persisted) {
                    self.release(state, reservation_id, true, None);
                    schedule_flush(&myself, state);
                }
            }
            Msg::Adjust { change, reply } => {
                if state.tracking != Tracking::Bulk {
                    log_err(
                        reply.send(Err(StockError::Invalid("serialized stock changes unit by unit (items)".into()))),
                    );
                    return Ok(());
                }
                // A change with a source (a return, an idempotent receipt or adjustment) is
                // applied once: a second copy answers the level without applying.
                if let Some(source) = change.source_id {
                    match self.seen(state, change.kind, source, None).await {
                        Seen::InBatch => {
                            // The first copy is in the unflushed batch: decide after it lands.
                            let _ = myself.cast(Msg::Adjust { change, reply });
                            return Ok(());
                        }
                        Seen::Persisted => {
                            log_err(reply.send(Ok(state.level())));
                            return Ok(());
                        }
                        Seen::No => {}
                        Seen::Failed(e) => {
                            log_err(reply.send(Err(e)));
                            return Ok(());
                        }
                    }
                }
                let next = state.on_hand + change.delta;
                if next < state.reserved {
                    let available = state.on_hand - state.reserved;
                    log_err(reply.send(Err(StockError::Insufficient {
                        product_id: state.product_id,
                        requested: -change.delta,
                        available,
                    })));
                    return Ok(());
                }
                state.on_hand = next;
                state.batch_meta = change.meta.clone();
                state.pending.push(Op::Adjust { change, reply });
                schedule_flush(&myself, state);
            }
            Msg::UnitAdded { item_id, barcode, price_minor, warranty_months } => {
                state.units.entry(item_id).or_insert(Unit { barcode, price_minor, warranty_months, held_by: None });
            }
            Msg::RemoveUnit { item_id, reason, actor_id, meta, reply } => match state.units.get(&item_id) {
                Some(u) if u.held_by.is_none() => {
                    state.units.remove(&item_id);
                    state.pending.push(Op::RemoveUnit { item_id, reason, actor_id, reply });
                    state.batch_meta = meta;
                    schedule_flush(&myself, state);
                }
                Some(u) => log_err(reply.send(Err(StockError::UnitUnavailable { barcode: u.barcode.clone() }))),
                None => log_err(reply.send(Err(StockError::UnitNotFound(item_id.to_string())))),
            },
            Msg::ReturnUnit { item_id, return_id, meta, reply } => {
                match self.seen(state, "RETURN", return_id, Some(item_id)).await {
                    Seen::InBatch => {
                        let _ = myself.cast(Msg::ReturnUnit { item_id, return_id, meta, reply });
                    }
                    Seen::Persisted => log_err(reply.send(Ok(()))),
                    Seen::Failed(e) => log_err(reply.send(Err(e))),
                    Seen::No => {
                        state.pending.push(Op::ReturnUnit { item_id, return_id, reply });
                        state.batch_meta = meta;
                        schedule_flush(&myself, state);
                    }
                }
            }
            Msg::Reload => {
                if state.pending.is_empty() {
                    self.reload(&myself, state).await?;
                } else {
                    let _ = myself.cast(Msg::Reload); // after the batch
                }
            }
            Msg::Flush => {
                state.flush_scheduled = false;
                if !state.pending.is_empty() {
                    self.flush(&myself, state).await?;
                }
            }
            Msg::Tick => {
                if state.pending.is_empty()
                    && state.holds.is_empty()
                    && state.last_activity.elapsed() >= self.idle_after
                {
                    tracing::debug!(product_id = %state.product_id, "idle; stopping");
                    myself.stop(Some("idle".into()));
                }
            }
        }
        Ok(())
    }
}

fn schedule_flush(myself: &ActorRef<Msg>, state: &mut State) {
    if !state.flush_scheduled {
        state.flush_scheduled = true;
        // Queued behind everything already waiting: those requests join this batch.
        let _ = myself.cast(Msg::Flush);
    }
}

fn schedule_expiry(myself: &ActorRef<Msg>, reservation_id: Uuid, at: DateTime<Utc>) -> JoinHandle<()> {
    let delay = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let me = myself.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = me.cast(Msg::Expire { reservation_id });
    })
}

impl ProductActor {
    fn apply_reserve(
        &self,
        state: &mut State,
        reservation_id: Uuid,
        expires_at: DateTime<Utc>,
        wants: &[Want],
    ) -> Result<(), StockError> {
        let mut lines = Vec::with_capacity(wants.len());
        let mut quantity = 0i64;
        let mut items = Vec::new();
        let now = Utc::now();
        match state.tracking {
            Tracking::Bulk => {
                if wants.iter().any(|w| w.item_id.is_some()) {
                    return Err(StockError::Invalid("a bulk product is reserved by quantity, not by barcode".into()));
                }
                quantity = wants.iter().map(|w| w.quantity).sum();
                let available = state.on_hand - state.reserved;
                if quantity > available {
                    return Err(StockError::Insufficient {
                        product_id: state.product_id,
                        requested: quantity,
                        available,
                    });
                }
                state.reserved += quantity;
                let price = state.discounted(state.price_minor);
                let warranty = (state.warranty_months > 0)
                    .then(|| now + chrono::Months::new(u32::try_from(state.warranty_months).unwrap_or(0)));
                for w in wants {
                    lines.push(HeldLine {
                        line_no: w.line_no,
                        unit_no: 0,
                        product_id: state.product_id,
                        name: state.name.clone(),
                        quantity: w.quantity,
                        unit_price_minor: price,
                        list_price_minor: state.price_minor,
                        item_id: None,
                        barcode: None,
                        warranty_until: warranty,
                        loyalty_points: state.loyalty_points,
                        currency: state.currency,
                    });
                }
            }
            Tracking::Serialized => {
                // Specific units first (by barcode), then any available units for counts.
                let mut chosen: Vec<(i32, Uuid)> = Vec::new();
                for w in wants.iter().filter(|w| w.item_id.is_some()) {
                    let id = w.item_id.unwrap_or_default();
                    match state.units.get(&id) {
                        Some(u) if u.held_by.is_none() && !chosen.iter().any(|(_, c)| *c == id) => {
                            chosen.push((w.line_no, id))
                        }
                        Some(u) => return Err(StockError::UnitUnavailable { barcode: u.barcode.clone() }),
                        None => return Err(StockError::UnitUnavailable { barcode: id.to_string() }),
                    }
                }
                for w in wants.iter().filter(|w| w.item_id.is_none()) {
                    let mut free = state
                        .units
                        .iter()
                        .filter(|(id, u)| u.held_by.is_none() && !chosen.iter().any(|(_, c)| c == *id))
                        .map(|(id, _)| *id)
                        .collect::<Vec<_>>();
                    free.sort();
                    let n = usize::try_from(w.quantity).unwrap_or(usize::MAX);
                    if free.len() < n {
                        let available = state.units.values().filter(|u| u.held_by.is_none()).count() as i64;
                        return Err(StockError::Insufficient {
                            product_id: state.product_id,
                            requested: w.quantity,
                            available,
                        });
                    }
                    chosen.extend(free.into_iter().take(n).map(|id| (w.line_no, id)));
                }
                for (k, (line_no, id)) in chosen.iter().enumerate() {
                    let unit_no = i32::try_from(chosen[..k].iter().filter(|(l, _)| l == line_no).count()).unwrap_or(0);
                    let Some(list) = state.units.get(id).map(|u| u.price_minor) else { continue };
                    let price = state.discounted(list);
                    let Some(u) = state.units.get_mut(id) else { continue };
                    u.held_by = Some(reservation_id);
                    let months = u.warranty_months.unwrap_or(state.warranty_months);
                    lines.push(HeldLine {
                        line_no: *line_no,
                        unit_no,
                        product_id: state.product_id,
                        name: state.name.clone(),
                        quantity: 1,
                        unit_price_minor: price,
                        list_price_minor: u.price_minor,
                        item_id: Some(*id),
                        barcode: Some(u.barcode.clone()),
                        warranty_until: (months > 0)
                            .then(|| now + chrono::Months::new(u32::try_from(months).unwrap_or(0))),
                        loyalty_points: state.loyalty_points,
                        currency: state.currency,
                    });
                    items.push(*id);
                    quantity += 1;
                }
            }
        }
        state.holds.insert(reservation_id, Hold { lines, quantity, items, expires_at, timer: None, persisted: false });
        Ok(())
    }

    fn release(&self, state: &mut State, reservation_id: Uuid, expired: bool, reply: Option<Reply<()>>) {
        let Some(h) = take_hold(state, reservation_id) else { return };
        state.settled.insert(reservation_id, if expired { "EXPIRED" } else { "RELEASED" });
        state.pending.push(Op::Release { reservation_id, quantity: h.quantity, items: h.items, expired, reply });
    }

    /// Whether a change with this source (a return of a bulk quantity or of one unit, an
    /// idempotent receipt or adjustment) was already applied: a redelivered return restocks
    /// once, a re-run request counts once. A copy whose twin waits in the unflushed batch is
    /// asked again after that batch.
    async fn seen(&self, state: &State, kind: &str, source: Uuid, item: Option<Uuid>) -> Seen {
        let in_batch = state.pending.iter().any(|op| match op {
            Op::Adjust { change, .. } => item.is_none() && change.kind == kind && change.source_id == Some(source),
            Op::ReturnUnit { item_id, return_id: r, .. } => Some(*item_id) == item && *r == source,
            _ => false,
        });
        if in_batch {
            return Seen::InBatch;
        }
        // The source travels in the ledger's reservation_id column (see `persist`).
        let seen = sqlx::query_scalar!(
            r#"select exists(select 1 from stock.movements
                              where product_id = $1 and kind = $4 and reservation_id = $2
                                and item_id is not distinct from $3) as "seen!""#,
            state.product_id,
            source,
            item as Option<Uuid>,
            kind
        )
        .fetch_one(&self.pool)
        .await;
        match seen {
            Ok(true) => Seen::Persisted,
            Ok(false) => Seen::No,
            Err(e) => Seen::Failed(internal(state, "checking whether a return was applied", e)),
        }
    }

    /// The answer for a reservation this actor does not hold (any more).
    async fn settled_answer(&self, state: &State, reservation_id: Uuid, want_commit: bool) -> Result<(), StockError> {
        let status = match state.settled.get(&reservation_id) {
            Some(s) => Some((*s).to_owned()),
            None => sqlx::query_scalar!(
                "select status from stock.reservation_lines where reservation_id = $1 and product_id = $2 limit 1",
                reservation_id,
                state.product_id
            )
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| internal(state, "reading a settled reservation", e))?,
        };
        match (status.as_deref(), want_commit) {
            (None, _) => Err(StockError::ReservationNotFound),
            (Some("COMMITTED"), true) => Ok(()),
            (Some("COMMITTED"), false) => Err(StockError::ReservationCommitted),
            (Some("HELD"), _) => Err(StockError::Busy), // being written right now
            (Some(_), _) => Err(StockError::ReservationExpired),
        }
    }

    async fn reload(&self, myself: &ActorRef<Msg>, state: &mut State) -> Result<(), ActorProcessingErr> {
        let ticker = state.ticker.take();
        for h in state.holds.values_mut() {
            if let Some(t) = h.timer.take() {
                t.abort();
            }
        }
        let settled = std::mem::take(&mut state.settled);
        *state = store::load(&self.pool, state.product_id).await?;
        state.ticker = ticker;
        state.settled = settled;
        let ids: Vec<(Uuid, DateTime<Utc>)> = state.holds.iter().map(|(id, h)| (*id, h.expires_at)).collect();
        for (id, at) in ids {
            if let Some(h) = state.holds.get_mut(&id) {
                h.timer = Some(schedule_expiry(myself, id, at));
            }
        }
        Ok(())
    }

    /// Persists every pending operation in one transaction, then answers them all.
    async fn flush(&self, myself: &ActorRef<Msg>, state: &mut State) -> Result<(), ActorProcessingErr> {
        let mut ops = std::mem::take(&mut state.pending);
        let meta = std::mem::take(&mut state.batch_meta);
        let written = match self.refuse_taken_ids(state, &mut ops).await {
            Ok(()) => batch(state, &ops).write(&self.pool, &meta).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                if ops.iter().any(|op| matches!(op, Op::ReturnUnit { .. })) {
                    // A returned unit is on sale again: read it back (returns are rare).
                    let _ = myself.cast(Msg::Reload);
                }
                state.available_at_batch_start = state.available();
                for op in ops {
                    match op {
                        Op::Reserve { reservation_id, expires_at, reply } => {
                            let lines = match state.holds.get_mut(&reservation_id) {
                                Some(h) => {
                                    h.persisted = true;
                                    h.timer = Some(schedule_expiry(myself, reservation_id, expires_at));
                                    h.lines.clone()
                                }
                                None => Vec::new(), // released within the same batch
                            };
                            log_err(reply.send(Ok(lines)));
                        }
                        Op::Commit { reply, .. } | Op::ReturnUnit { reply, .. } | Op::RemoveUnit { reply, .. } => {
                            log_err(reply.send(Ok(())))
                        }
                        Op::Release { reply, .. } => {
                            if let Some(r) = reply {
                                log_err(r.send(Ok(())));
                            }
                        }
                        Op::Adjust { reply, .. } => log_err(reply.send(Ok(state.level()))),
                    }
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(product_id = %state.product_id, error = %format!("{e:#}"), ops = ops.len(), "stock batch failed; reloading from the rows");
                for op in ops {
                    match op {
                        Op::Reserve { reply, .. } => log_err(reply.send(Err(StockError::Busy))),
                        Op::Commit { reply, .. } | Op::ReturnUnit { reply, .. } | Op::RemoveUnit { reply, .. } => {
                            log_err(reply.send(Err(StockError::Busy)))
                        }
                        Op::Release { reply, .. } => {
                            if let Some(r) = reply {
                                log_err(r.send(Err(StockError::Busy)));
                            }
                        }
                        Op::Adjust { reply, .. } => log_err(reply.send(Err(StockError::Busy))),
                    }
                }
                self.reload(myself, state).await
            }
        }
    }
}

/// Removes a hold from memory and gives its stock back to what is available.
fn take_hold(state: &mut State, reservation_id: Uuid) -> Option<Hold> {
    let mut h = state.holds.remove(&reservation_id)?;
    if let Some(t) = h.timer.take() {
        t.abort();
    }
    match state.tracking {
        Tracking::Bulk => state.reserved -= h.quantity,
        Tracking::Serialized => {
            for item in &h.items {
                if let Some(u) = state.units.get_mut(item) {
                    u.held_by = None;
                }
            }
        }
    }
    Some(h)
}

impl ProductActor {
    /// Reservation ids are the callers': one another shop already used is refused with
    /// RESERVATION_ID_TAKEN and its hold undone before anything is written. One query per
    /// batch (a query per reservation in front of the actor halved its hot-product
    /// throughput; see BENCHMARKS.md).
    async fn refuse_taken_ids(&self, state: &mut State, ops: &mut Vec<Op>) -> anyhow::Result<()> {
        let fresh: Vec<Uuid> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Reserve { reservation_id, .. } => Some(*reservation_id),
                _ => None,
            })
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let taken = store::taken_elsewhere(&self.pool, state.shop_id, &fresh).await?;
        if taken.is_empty() {
            return Ok(());
        }
        let (refused, kept): (Vec<Op>, Vec<Op>) = std::mem::take(ops)
            .into_iter()
            .partition(|op| matches!(op, Op::Reserve { reservation_id, .. } if taken.contains(reservation_id)));
        *ops = kept;
        for op in refused {
            if let Op::Reserve { reservation_id, reply, .. } = op {
                take_hold(state, reservation_id);
                log_err(reply.send(Err(StockError::ReservationIdTaken)));
            }
        }
        Ok(())
    }
}

/// The rows and events a flush writes for `ops` (applied to `state` already).
fn batch(state: &State, ops: &[Op]) -> Batch {
    let bulk = state.tracking == Tracking::Bulk;
    let mut b = Batch::new(state.product_id, state.shop_id);
    for op in ops {
        match op {
            Op::Reserve { reservation_id, expires_at, .. } => {
                let Some(h) = state.holds.get(reservation_id) else { continue };
                b.headers.push((*reservation_id, *expires_at));
                for l in &h.lines {
                    b.lines.push((*reservation_id, l.clone()));
                    if let Some(i) = l.item_id {
                        b.held_units.push((i, *reservation_id));
                    }
                }
                if bulk {
                    b.reserved_delta += h.quantity;
                    b.movements
                        .push(Movement { source: Some(*reservation_id), ..Movement::new("RESERVE", 0, h.quantity) });
                } else {
                    for i in &h.items {
                        b.movements.push(Movement {
                            item: Some(*i),
                            source: Some(*reservation_id),
                            ..Movement::new("RESERVE", 0, 1)
                        });
                    }
                }
            }
            Op::Commit { reservation_id, quantity, items, order_id, .. } => {
                b.settled.push((*reservation_id, Settled::Committed));
                if let Some(o) = order_id {
                    b.orders.push((*reservation_id, *o));
                }
                let sale = |on: i64, item: Option<Uuid>| Movement {
                    item,
                    source: Some(*reservation_id),
                    order: *order_id,
                    ..Movement::new("SALE", on, on)
                };
                if bulk {
                    b.on_hand_delta -= quantity;
                    b.reserved_delta -= quantity;
                    b.movements.push(sale(-quantity, None));
                } else {
                    for i in items {
                        b.sold_units.push((*i, *order_id));
                        b.movements.push(sale(-1, Some(*i)));
                    }
                }
            }
            Op::Release { reservation_id, quantity, items, expired, .. } => {
                let (kind, outcome) =
                    if *expired { ("EXPIRE", Settled::Expired) } else { ("RELEASE", Settled::Released) };
                b.settled.push((*reservation_id, outcome));
                if bulk {
                    b.reserved_delta -= quantity;
                    b.movements.push(Movement { source: Some(*reservation_id), ..Movement::new(kind, 0, -quantity) });
                } else {
                    for i in items {
                        b.freed_units.push(*i);
                        b.movements.push(Movement {
                            item: Some(*i),
                            source: Some(*reservation_id),
                            ..Movement::new(kind, 0, -1)
                        });
                    }
                }
            }
            Op::Adjust { change, .. } => {
                b.on_hand_delta += change.delta;
                b.movements.push(Movement {
                    reason: change.reason.clone(),
                    actor: change.actor_id,
                    source: change.source_id,
                    unit_cost: change.unit_cost_minor,
                    supplier: change.supplier_id,
                    ..Movement::new(change.kind, change.delta, 0)
                });
            }
            Op::ReturnUnit { item_id, return_id, .. } => {
                b.returned_units.push(*item_id);
                b.movements.push(Movement {
                    item: Some(*item_id),
                    source: Some(*return_id),
                    ..Movement::new("RETURN", 1, 0)
                });
            }
            Op::RemoveUnit { item_id, reason, actor_id, .. } => {
                b.removed_units.push(*item_id);
                b.movements.push(Movement {
                    item: Some(*item_id),
                    reason: Some(reason.clone()),
                    actor: *actor_id,
                    ..Movement::new("ADJUSTMENT", -1, 0)
                });
            }
        }
    }
    if !bulk {
        // Serialized products have no level row: their units are the level.
        b.on_hand_delta = 0;
        b.reserved_delta = 0;
    }
    let level = state.level();
    let on_hand_moved =
        b.on_hand_delta != 0 || !b.sold_units.is_empty() || !b.returned_units.is_empty() || !b.removed_units.is_empty();
    if on_hand_moved {
        b.level_changed = Some(level);
    }
    // A low-stock notice when availability crossed the product's keepingUnits going down.
    if state.keeping_units > 0
        && state.available_at_batch_start > state.keeping_units
        && level.available <= state.keeping_units
    {
        b.low = Some(Low {
            product_name: state.name.clone(),
            available: level.available,
            keeping_units: state.keeping_units,
        });
    }
    b
}
