//! The product actor: owns one product's availability. Requests are applied in memory as
//! they arrive and queued; a `Flush` the actor sends itself (queued behind whatever already
//! waits) persists the whole batch in one transaction and then replies to each request.
//! Nothing holds a transaction across messages; failures of a batch reload the state from
//! the rows (the source of truth) and answer `Busy`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sqlx::PgPool;
use uuid::Uuid;

use bus::MessageMeta;
use contracts::common::{Recipient, ShopBrand};
use contracts::stock::{LevelChanged, LevelLow};
use platform::{Currency, Money};

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
struct Unit {
    barcode: String,
    price_minor: i64,
    warranty_months: Option<i32>,
    /// None: available; Some(reservation): held.
    held_by: Option<Uuid>,
}

struct Hold {
    lines: Vec<HeldLine>,
    quantity: i64,
    items: Vec<Uuid>,
    expires_at: DateTime<Utc>,
    timer: Option<JoinHandle<()>>,
    persisted: bool,
}

enum Op {
    Reserve { reservation_id: Uuid, expires_at: DateTime<Utc>, reply: Reply<Vec<HeldLine>> },
    Commit { reservation_id: Uuid, quantity: i64, items: Vec<Uuid>, order_id: Option<Uuid>, reply: Reply<()> },
    Release { reservation_id: Uuid, quantity: i64, items: Vec<Uuid>, expired: bool, reply: Option<Reply<()>> },
    Adjust { change: Adjustment, reply: Reply<Level> },
    ReturnUnit { item_id: Uuid, return_id: Uuid, reply: Reply<()> },
    RemoveUnit { item_id: Uuid, reason: String, actor_id: Option<Uuid>, reply: Reply<()> },
}

pub struct State {
    product_id: Uuid,
    shop_id: Uuid,
    name: String,
    tracking: Tracking,
    currency: Currency,
    price_minor: i64,
    warranty_months: i32,
    loyalty_points: i64,
    keeping_units: i64,
    on_hand: i64,
    reserved: i64,
    units: HashMap<Uuid, Unit>,
    /// (basis points, from, until) of the product's discounts.
    discounts: Vec<(i64, DateTime<Utc>, DateTime<Utc>)>,
    holds: HashMap<Uuid, Hold>,
    /// Reservations settled during this actor's life, for idempotent answers.
    settled: HashMap<Uuid, &'static str>,
    pending: Vec<Op>,
    flush_scheduled: bool,
    last_activity: Instant,
    ticker: Option<JoinHandle<()>>,
    /// Available before the pending batch (to see a low-stock crossing).
    available_at_batch_start: i64,
    /// The request context of the pending batch's latest change: its events carry it.
    batch_meta: MessageMeta,
}

impl State {
    fn available(&self) -> i64 {
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
        let mut state = load(&self.pool, args.product_id).await?;
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
        let Some(mut h) = state.holds.remove(&reservation_id) else { return };
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
        *state = load(&self.pool, state.product_id).await?;
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
        let ops = std::mem::take(&mut state.pending);
        let meta = std::mem::take(&mut state.batch_meta);
        match self.persist(state, &ops, &meta).await {
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

    async fn persist(&self, state: &State, ops: &[Op], meta: &MessageMeta) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await.context("starting the batch")?;
        let p = state.product_id;
        let mut on_hand_delta = 0i64;
        let mut reserved_delta = 0i64;
        // movements
        let mut m_kind: Vec<&str> = Vec::new();
        let mut m_on: Vec<i32> = Vec::new();
        let mut m_res: Vec<i32> = Vec::new();
        let mut m_item: Vec<Option<Uuid>> = Vec::new();
        let mut m_reason: Vec<Option<String>> = Vec::new();
        let mut m_actor: Vec<Option<Uuid>> = Vec::new();
        let mut m_resv: Vec<Option<Uuid>> = Vec::new();
        let mut m_order: Vec<Option<Uuid>> = Vec::new();
        let mut m_cost: Vec<Option<i64>> = Vec::new();
        let mut m_supplier: Vec<Option<Uuid>> = Vec::new();
        let mut push = |kind: &'static str,
                        on: i64,
                        res: i64,
                        item: Option<Uuid>,
                        reason: Option<String>,
                        actor: Option<Uuid>,
                        resv: Option<Uuid>,
                        order: Option<Uuid>,
                        cost: Option<i64>,
                        supplier: Option<Uuid>| {
            m_kind.push(kind);
            m_on.push(i32::try_from(on).unwrap_or(i32::MAX));
            m_res.push(i32::try_from(res).unwrap_or(i32::MAX));
            m_item.push(item);
            m_reason.push(reason);
            m_actor.push(actor);
            m_resv.push(resv);
            m_order.push(order);
            m_cost.push(cost);
            m_supplier.push(supplier);
        };
        // reservation headers and lines
        let mut h_id: Vec<Uuid> = Vec::new();
        let mut h_exp: Vec<DateTime<Utc>> = Vec::new();
        let mut l_res: Vec<Uuid> = Vec::new();
        let mut l_no: Vec<i32> = Vec::new();
        let mut l_unit: Vec<i32> = Vec::new();
        let mut l_qty: Vec<i32> = Vec::new();
        let mut l_item: Vec<Option<Uuid>> = Vec::new();
        let mut l_name: Vec<String> = Vec::new();
        let mut l_price: Vec<i64> = Vec::new();
        // settled lines by outcome
        let mut committed: Vec<Uuid> = Vec::new();
        let mut released: Vec<Uuid> = Vec::new();
        let mut expired: Vec<Uuid> = Vec::new();
        // serialized unit changes
        let mut hold_items: Vec<Uuid> = Vec::new();
        let mut hold_by: Vec<Uuid> = Vec::new();
        let mut free_items: Vec<Uuid> = Vec::new();
        let mut sold_items: Vec<Uuid> = Vec::new();
        let mut sold_orders: Vec<Option<Uuid>> = Vec::new();
        let mut returned_items: Vec<Uuid> = Vec::new();
        let mut removed_items: Vec<Uuid> = Vec::new();
        let mut order_of: Vec<(Uuid, Option<Uuid>)> = Vec::new();

        for op in ops {
            match op {
                Op::Reserve { reservation_id, expires_at, .. } => {
                    let Some(h) = state.holds.get(reservation_id) else { continue };
                    h_id.push(*reservation_id);
                    h_exp.push(*expires_at);
                    for l in &h.lines {
                        l_res.push(*reservation_id);
                        l_no.push(l.line_no);
                        l_unit.push(l.unit_no);
                        l_qty.push(i32::try_from(l.quantity).unwrap_or(i32::MAX));
                        l_item.push(l.item_id);
                        l_name.push(l.name.clone());
                        l_price.push(l.unit_price_minor);
                        if let Some(i) = l.item_id {
                            hold_items.push(i);
                            hold_by.push(*reservation_id);
                        }
                    }
                    if state.tracking == Tracking::Bulk {
                        reserved_delta += h.quantity;
                        push("RESERVE", 0, h.quantity, None, None, None, Some(*reservation_id), None, None, None);
                    } else {
                        for i in &h.items {
                            push("RESERVE", 0, 1, Some(*i), None, None, Some(*reservation_id), None, None, None);
                        }
                    }
                }
                Op::Commit { reservation_id, quantity, items, order_id, .. } => {
                    committed.push(*reservation_id);
                    order_of.push((*reservation_id, *order_id));
                    if state.tracking == Tracking::Bulk {
                        on_hand_delta -= quantity;
                        reserved_delta -= quantity;
                        push(
                            "SALE",
                            -quantity,
                            -quantity,
                            None,
                            None,
                            None,
                            Some(*reservation_id),
                            *order_id,
                            None,
                            None,
                        );
                    } else {
                        for i in items {
                            sold_items.push(*i);
                            sold_orders.push(*order_id);
                            push("SALE", -1, -1, Some(*i), None, None, Some(*reservation_id), *order_id, None, None);
                        }
                    }
                }
                Op::Release { reservation_id, quantity, items, expired: is_expiry, .. } => {
                    let kind = if *is_expiry { "EXPIRE" } else { "RELEASE" };
                    if *is_expiry {
                        expired.push(*reservation_id)
                    } else {
                        released.push(*reservation_id)
                    }
                    if state.tracking == Tracking::Bulk {
                        reserved_delta -= quantity;
                        push(kind, 0, -quantity, None, None, None, Some(*reservation_id), None, None, None);
                    } else {
                        for i in items {
                            free_items.push(*i);
                            push(kind, 0, -1, Some(*i), None, None, Some(*reservation_id), None, None, None);
                        }
                    }
                }
                Op::Adjust { change, .. } => {
                    on_hand_delta += change.delta;
                    push(
                        change.kind,
                        change.delta,
                        0,
                        None,
                        change.reason.clone(),
                        change.actor_id,
                        change.source_id,
                        None,
                        change.unit_cost_minor,
                        change.supplier_id,
                    );
                }
                Op::ReturnUnit { item_id, return_id, .. } => {
                    returned_items.push(*item_id);
                    push("RETURN", 1, 0, Some(*item_id), None, None, Some(*return_id), None, None, None);
                }
                Op::RemoveUnit { item_id, reason, actor_id, .. } => {
                    removed_items.push(*item_id);
                    push("ADJUSTMENT", -1, 0, Some(*item_id), Some(reason.clone()), *actor_id, None, None, None, None);
                }
            }
        }

        // Headers, lines, the ledger and the level in one statement: one round trip for the
        // whole batch on the common path.
        let (on_delta, res_delta) = if state.tracking == Tracking::Bulk {
            (i32::try_from(on_hand_delta)?, i32::try_from(reserved_delta)?)
        } else {
            (0, 0)
        };
        // `as _` on the arrays of optional values: the macro infers `uuid[]` as `Vec<Uuid>`,
        // but these arrays carry nulls.
        sqlx::query!(
            "with h as (
                 insert into stock.reservations (reservation_id, shop_id, expires_at)
                 select r, $2, e from unnest($3::uuid[], $4::timestamptz[]) as t(r, e)
                 on conflict (reservation_id) do nothing),
             l as (
                 insert into stock.reservation_lines (reservation_id, line_no, unit_no, product_id, item_id, quantity, name, unit_price_minor)
                 select r, n, u, $1, i, q, nm, pr
                   from unnest($5::uuid[], $6::int[], $7::int[], $8::uuid[], $9::int[], $10::text[], $11::bigint[])
                     as t(r, n, u, i, q, nm, pr)),
             m as (
                 insert into stock.movements (shop_id, product_id, kind, on_hand_delta, reserved_delta, item_id, reason, actor_id,
                                              reservation_id, order_id, unit_cost_minor, supplier_id)
                 select $2, $1, k, o, rd, i, re, a, rv, od, c, su
                   from unnest($12::text[], $13::int[], $14::int[], $15::uuid[], $16::text[], $17::uuid[], $18::uuid[],
                               $19::uuid[], $20::bigint[], $23::uuid[]) as t(k, o, rd, i, re, a, rv, od, c, su)),
             v as (
                 update stock.levels set on_hand = on_hand + $21, reserved = reserved + $22, updated_at = now()
                  where product_id = $1 and ($21 <> 0 or $22 <> 0))
             select 1 as done",
            p,
            state.shop_id,
            &h_id,
            &h_exp,
            &l_res,
            &l_no,
            &l_unit,
            &l_item as _,
            &l_qty,
            &l_name,
            &l_price,
            &m_kind as _,
            &m_on,
            &m_res,
            &m_item as _,
            &m_reason as _,
            &m_actor as _,
            &m_resv as _,
            &m_order as _,
            &m_cost as _,
            on_delta,
            res_delta,
            &m_supplier as _
        )
        .fetch_one(&mut *tx)
        .await
        .context("writing the batch's reservations, lines, movements and level")?;
        if !hold_items.is_empty() {
            let n = sqlx::query!(
                "update stock.items i set status = 'RESERVED', reservation_id = t.r
                   from unnest($1::uuid[], $2::uuid[]) as t(item, r)
                  where i.item_id = t.item and i.status = 'AVAILABLE'",
                &hold_items,
                &hold_by
            )
            .execute(&mut *tx)
            .await
            .context("holding units")?
            .rows_affected();
            anyhow::ensure!(n == hold_items.len() as u64, "a unit to hold was not available in the database");
        }
        if !free_items.is_empty() {
            sqlx::query!(
                "update stock.items set status = 'AVAILABLE', reservation_id = null
                  where item_id = any($1) and status = 'RESERVED'",
                &free_items
            )
            .execute(&mut *tx)
            .await
            .context("freeing units")?;
        }
        if !sold_items.is_empty() {
            sqlx::query!(
                "update stock.items i set status = 'SOLD', reservation_id = null, order_id = t.o, sold_at = now()
                   from unnest($1::uuid[], $2::uuid[]) as t(item, o) where i.item_id = t.item",
                &sold_items,
                &sold_orders as _
            )
            .execute(&mut *tx)
            .await
            .context("selling units")?;
        }
        if !removed_items.is_empty() {
            let n = sqlx::query!(
                "update stock.items set status = 'REMOVED' where item_id = any($1) and status = 'AVAILABLE'",
                &removed_items
            )
            .execute(&mut *tx)
            .await
            .context("removing units")?
            .rows_affected();
            anyhow::ensure!(n == removed_items.len() as u64, "a unit to remove was not available in the database");
        }
        if !returned_items.is_empty() {
            sqlx::query!(
                "update stock.items set status = 'AVAILABLE', order_id = null, sold_at = null
                  where item_id = any($1) and status = 'SOLD'",
                &returned_items
            )
            .execute(&mut *tx)
            .await
            .context("returning units")?;
        }
        for (ids, status) in [(&committed, "COMMITTED"), (&released, "RELEASED"), (&expired, "EXPIRED")] {
            if ids.is_empty() {
                continue;
            }
            sqlx::query!(
                "update stock.reservation_lines set status = $3
                  where reservation_id = any($1) and product_id = $2 and status = 'HELD'",
                ids,
                p,
                status
            )
            .execute(&mut *tx)
            .await
            .context("settling reservation lines")?;
            // The header follows once no line of it is held (locked in id order, so two
            // products settling one reservation serialise here and the last one sees all).
            sqlx::query!(
                "select 1 as locked from stock.reservations where reservation_id = any($1) order by reservation_id for update",
                ids
            )
            .fetch_all(&mut *tx)
            .await
            .context("locking reservation headers")?;
            sqlx::query!(
                "update stock.reservations r set status = $2, settled_at = now()
                  where r.reservation_id = any($1) and r.status = 'HELD'
                    and not exists (select 1 from stock.reservation_lines l
                                     where l.reservation_id = r.reservation_id and l.status = 'HELD')",
                ids,
                status
            )
            .execute(&mut *tx)
            .await
            .context("settling reservation headers")?;
        }
        for (r, o) in order_of.iter().filter(|(_, o)| o.is_some()) {
            sqlx::query!(
                "update stock.reservations set order_id = coalesce(order_id, $2) where reservation_id = $1",
                r,
                *o
            )
            .execute(&mut *tx)
            .await
            .context("linking the order")?;
        }
        // Events: the new level, and a low-stock notice when availability crossed the
        // product's keepingUnits going down.
        let level = state.level();
        // `stock.level.changed` when what is on hand changed (receipts, adjustments, sales,
        // returns). Holds come and go by the thousand a second on a busy product; each event
        // is an outbox row whose commit NOTIFYs the relay, and NOTIFY serialises commits
        // across the database, so reservations alone do not announce themselves.
        let on_hand_moved =
            on_hand_delta != 0 || !sold_items.is_empty() || !returned_items.is_empty() || !removed_items.is_empty();
        if on_hand_moved {
            bus::enqueue(
                &mut tx,
                &LevelChanged {
                    shop_id: state.shop_id,
                    product_id: p,
                    on_hand: level.on_hand,
                    reserved: level.reserved,
                    available: level.available,
                    occurred_at: Utc::now(),
                },
                meta,
            )
            .await?;
        }
        if state.keeping_units > 0
            && state.available_at_batch_start > state.keeping_units
            && level.available <= state.keeping_units
        {
            let shop = sqlx::query!(
                "select name, owner_email, owner_name, logo_url from stock.shops where shop_id = $1",
                state.shop_id
            )
            .fetch_optional(&mut *tx)
            .await
            .context("reading the shop's owner")?
            .map(|r| (r.name, r.owner_email, r.owner_name, r.logo_url));
            match shop {
                Some((name, Some(email), owner_name, logo)) => {
                    let event = LevelLow {
                        shop: ShopBrand { id: state.shop_id, name, logo_url: logo, address: None, contact_phone: None },
                        owner: Recipient { email, name: owner_name },
                        product_id: p,
                        product_name: state.name.clone(),
                        sku: None,
                        available: level.available,
                        keeping_units: state.keeping_units,
                        occurred_at: Utc::now(),
                    };
                    bus::enqueue(&mut tx, &event, meta).await?;
                }
                _ => tracing::warn!(shop_id = %state.shop_id, "low stock, but the shop's owner is not known yet"),
            }
        }
        tx.commit().await.context("committing the batch")?;
        Ok(())
    }
}

/// Builds a product's state from the rows: the product, its level or available units, the
/// held reservations and its discounts.
async fn load(pool: &PgPool, product_id: Uuid) -> anyhow::Result<State> {
    let row = sqlx::query!(
        r#"select p.shop_id, p.name, p.tracking, p.sell_price_minor, p.warranty_months, p.keeping_units,
                  p.loyalty_points, s.currency as "currency?"
             from stock.products p left join stock.shops s using (shop_id)
            where p.product_id = $1 and p.status <> 'DELETED'"#,
        product_id
    )
    .fetch_optional(pool)
    .await
    .context("reading the product")?
    .ok_or_else(|| anyhow::anyhow!("product {product_id} not found"))?;
    let (shop_id, name, price, warranty, keeping, loyalty) =
        (row.shop_id, row.name, row.sell_price_minor, row.warranty_months, row.keeping_units, row.loyalty_points);
    let tracking = if row.tracking == "SERIALIZED" { Tracking::Serialized } else { Tracking::Bulk };
    // A shop not announced by auth yet has the platform default; a code we cannot read is a bug.
    let currency: Currency = match row.currency {
        None => Currency::LKR,
        Some(code) => code.parse().map_err(|_| anyhow::anyhow!("shop {shop_id} has an unknown currency {code:?}"))?,
    };
    let (on_hand, reserved): (i32, i32) = if tracking == Tracking::Bulk {
        sqlx::query!("select on_hand, reserved from stock.levels where product_id = $1", product_id)
            .fetch_optional(pool)
            .await
            .context("reading the level")?
            .map_or((0, 0), |l| (l.on_hand, l.reserved))
    } else {
        (0, 0)
    };
    let mut units = HashMap::new();
    if tracking == Tracking::Serialized {
        let rows = sqlx::query!(
            "select item_id, barcode, sell_price_minor, warranty_months, reservation_id from stock.items
              where product_id = $1 and status in ('AVAILABLE', 'RESERVED')",
            product_id
        )
        .fetch_all(pool)
        .await
        .context("reading the units")?;
        for r in rows {
            units.insert(
                r.item_id,
                Unit {
                    barcode: r.barcode,
                    price_minor: r.sell_price_minor,
                    warranty_months: r.warranty_months,
                    held_by: r.reservation_id,
                },
            );
        }
    }
    let lines = sqlx::query!(
        "select l.reservation_id, l.line_no, l.unit_no, l.quantity, l.item_id, l.name, l.unit_price_minor, r.expires_at
           from stock.reservation_lines l join stock.reservations r using (reservation_id)
          where l.product_id = $1 and l.status = 'HELD'",
        product_id
    )
    .fetch_all(pool)
    .await
    .context("reading the held lines")?;
    let mut holds: HashMap<Uuid, Hold> = HashMap::new();
    for l in lines {
        let h = holds.entry(l.reservation_id).or_insert(Hold {
            lines: Vec::new(),
            quantity: 0,
            items: Vec::new(),
            expires_at: l.expires_at,
            timer: None,
            persisted: true,
        });
        h.quantity += i64::from(l.quantity);
        if let Some(i) = l.item_id {
            h.items.push(i);
        }
        let barcode = l.item_id.and_then(|i| units.get(&i).map(|u| u.barcode.clone()));
        h.lines.push(HeldLine {
            line_no: l.line_no,
            unit_no: l.unit_no,
            product_id,
            name: l.name,
            quantity: i64::from(l.quantity),
            unit_price_minor: l.unit_price_minor,
            list_price_minor: l.unit_price_minor,
            item_id: l.item_id,
            barcode,
            warranty_until: None,
            loyalty_points: i64::from(loyalty),
            currency,
        });
    }
    let discounts: Vec<(i64, DateTime<Utc>, DateTime<Utc>)> = sqlx::query!(
        "select dp.basis_points, d.starts_at, d.ends_at
           from stock.discount_products dp join stock.discounts d using (discount_id)
          where dp.product_id = $1 and d.status = 'ACTIVE' and d.ends_at > now()",
        product_id
    )
    .fetch_all(pool)
    .await
    .context("reading the discounts")?
    .into_iter()
    .map(|d| (i64::from(d.basis_points), d.starts_at, d.ends_at))
    .collect();
    let mut state = State {
        product_id,
        shop_id,
        name,
        tracking,
        currency,
        price_minor: price.unwrap_or(0),
        warranty_months: warranty,
        loyalty_points: i64::from(loyalty),
        keeping_units: i64::from(keeping),
        on_hand: i64::from(on_hand),
        reserved: i64::from(reserved),
        units,
        discounts,
        holds,
        settled: HashMap::new(),
        pending: Vec::new(),
        flush_scheduled: false,
        last_activity: Instant::now(),
        ticker: None,
        available_at_batch_start: 0,
        batch_meta: MessageMeta::default(),
    };
    state.available_at_batch_start = state.available();
    Ok(state)
}
