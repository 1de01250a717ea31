//! The reservation core. One ractor actor per stocked product is the only writer of that
//! product's availability (bulk level or serialized units). It applies each request to its
//! in-memory state at once (`state`), collects what is waiting in its mailbox (`actor`), and
//! hands the batch to the writer (`writer`), which writes the batches of every product that
//! has one ready in one transaction (`batch`); only then does the actor reply. A
//! per-request coordinator reserves multi-line requests all-or-nothing without any actor
//! waiting on another.
//!
//! [`Stock`] is the front door: HTTP handlers, the RPC server and the event consumer ask it;
//! the actors' messages are private to this module.

mod actor;
mod batch;
mod coordinator;
mod recent;
mod registry;
mod state;
mod store;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use bus::MessageMeta;
use contracts::stock::ReservationView;

use crate::domain::{ItemId, MovementKind, ReserveCommand};
use actor::{Msg, Request};
use coordinator::Coordinator;
use platform::ids::{OrderId, ProductId, ReservationId, ShopId};
use registry::Registry;

use crate::shards::{Op, Route, Shards, WireAdjustment};

/// Why a stock operation was refused. Business outcomes travel in replies; an actor only
/// fails (and is restarted) on bugs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum StockError {
    #[error("not enough stock of {product_id}: {requested} requested, {available} available")]
    Insufficient { product_id: Uuid, requested: i64, available: i64 },
    #[error("unit {barcode} is not available")]
    UnitUnavailable { barcode: String },
    #[error("no such product {0}")]
    ProductNotFound(Uuid),
    #[error("no such unit {0}")]
    UnitNotFound(String),
    #[error("no such reservation")]
    ReservationNotFound,
    #[error("the reservation expired or was released")]
    ReservationExpired,
    #[error("the reservation is already committed")]
    ReservationCommitted,
    #[error("this reservation id is already in use; use a new one")]
    ReservationIdTaken,
    #[error("invalid: {0}")]
    Invalid(String),
    /// Genuine overload: the batch could not be written (and was rolled back); retry.
    #[error("stock is busy; try again")]
    Busy,
    /// A failure of ours (logged where it happened); nothing was changed.
    #[error("internal error")]
    Internal,
}

impl StockError {
    pub fn code(&self) -> &'static str {
        match self {
            StockError::Insufficient { .. } => "STOCK_INSUFFICIENT",
            StockError::UnitUnavailable { .. } => "STOCK_UNIT_UNAVAILABLE",
            StockError::ProductNotFound(_) => "PRODUCT_NOT_FOUND",
            StockError::UnitNotFound(_) => "ITEM_NOT_FOUND",
            StockError::ReservationNotFound => "RESERVATION_NOT_FOUND",
            StockError::ReservationExpired => "RESERVATION_EXPIRED",
            StockError::ReservationCommitted => "RESERVATION_COMMITTED",
            StockError::ReservationIdTaken => "RESERVATION_ID_TAKEN",
            StockError::Invalid(_) => "VALIDATION_FAILED",
            StockError::Busy => "STOCK_BUSY",
            StockError::Internal => "INTERNAL",
        }
    }

    /// Refusals a caller can act on rank before transient ones when several lines fail.
    fn rank(&self) -> u8 {
        match self {
            StockError::Busy | StockError::Internal => 0,
            _ => 1,
        }
    }
}

impl From<StockError> for platform::Problem {
    fn from(e: StockError) -> Self {
        use axum::http::StatusCode;
        let status = match &e {
            StockError::Insufficient { .. } | StockError::UnitUnavailable { .. } => StatusCode::CONFLICT,
            StockError::ReservationExpired | StockError::ReservationCommitted | StockError::ReservationIdTaken => {
                StatusCode::CONFLICT
            }
            StockError::ProductNotFound(_) | StockError::UnitNotFound(_) | StockError::ReservationNotFound => {
                StatusCode::NOT_FOUND
            }
            StockError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StockError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            StockError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        platform::Problem::new(status, e.code(), e.to_string())
    }
}

/// An internal failure, logged once here with its cause chain and what we were doing; the
/// caller gets an opaque 500 (`INTERNAL`), never a retryable `STOCK_BUSY`.
pub(crate) fn internal(doing: &str, e: impl Into<anyhow::Error>) -> StockError {
    let e = e.into();
    tracing::error!(error = %format!("{e:#}"), "stock: {doing} failed");
    StockError::Internal
}

/// One line an actor holds for a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLine {
    pub line_no: i32,
    pub unit_no: i32,
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub list_price_minor: i64,
    pub item_id: Option<Uuid>,
    pub barcode: Option<String>,
    pub warranty_until: Option<DateTime<Utc>>,
    /// Loyalty points per unit.
    pub loyalty_points: i64,
}

/// What a product's actor holds for a reservation, priced in the shop's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub currency: platform::Currency,
    pub lines: Vec<HeldLine>,
}

/// A line as a product's actor is asked for it.
#[derive(Debug, Clone)]
pub struct Want {
    pub line_no: i32,
    pub quantity: i64,
    /// A specific serialized unit (reserved by barcode).
    pub item_id: Option<Uuid>,
}

/// A bulk product's level after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

/// A change to a bulk level that does not come from a reservation.
#[derive(Debug, Clone)]
pub struct Adjustment {
    pub delta: i64,
    /// Receipt, Adjustment or Return.
    pub kind: MovementKind,
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

/// A serialized unit new in stock.
#[derive(Debug, Clone)]
pub struct NewUnit {
    pub item_id: ItemId,
    pub barcode: String,
    pub price_minor: i64,
    pub warranty_months: Option<i32>,
}

/// How the reservation core runs.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// A product's actor stops after this long without messages or holds.
    pub idle_after: Duration,
    /// How long a caller waits for an actor's answer.
    pub call_timeout: Duration,
    /// Concurrent writer transactions (each writes every product's ready batch).
    pub writers: usize,
    /// How long a quiet writer waits for a reservation's other products, so that it is one
    /// transaction (`writer`).
    pub gather: Duration,
}

/// Stock's front door: everything that changes or reads availability goes through here.
/// Sharded (several instances, see `crate::shards`), an operation on a shard another
/// instance owns is forwarded to it; [`Stock::local`] is the owner's own side.
#[derive(Clone)]
pub struct Stock {
    registry: Registry,
    coordinator: Coordinator,
    shards: Option<Arc<Shards>>,
    pool: PgPool,
}

impl Stock {
    /// Starts the reservation core on `pool` (a pool of its own: see `startup`).
    pub async fn start(pool: PgPool, tuning: Tuning) -> anyhow::Result<Self> {
        let registry = Registry::start(pool.clone(), tuning).await?;
        Ok(Self { coordinator: Coordinator::new(registry.clone(), pool.clone()), registry, shards: None, pool })
    }

    /// Forwards what belongs to shards this instance does not own.
    #[must_use]
    pub fn sharded(mut self, shards: Arc<Shards>) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Runs everything here: what a shard's queue delivered is this instance's to do.
    #[must_use]
    pub fn local(&self) -> Self {
        Self { shards: None, ..self.clone() }
    }

    /// Every actor stops and what was remembered goes (the next owner, maybe this one again,
    /// rebuilds from the rows).
    pub fn forget_all(&self) {
        self.registry.stop_actors_where(|_| true);
        self.coordinator.forget_all();
    }

    /// A shard went (or just came, and actors left from an earlier turn must not serve it
    /// from stale memory): the actors of products in the shops `pick` selects stop, as do
    /// those whose shop cannot be read; the others run on. Remembered answers all go (the
    /// rows answer instead).
    pub async fn forget_where(&self, pick: impl Fn(ShopId) -> bool) {
        let running: Vec<Uuid> = self.registry.products().into_iter().map(|p| p.0).collect();
        let shops: std::collections::HashMap<Uuid, Uuid> = if running.is_empty() {
            std::collections::HashMap::new()
        } else {
            sqlx::query!("select product_id, shop_id from stock.products where product_id = any($1)", &running)
                .fetch_all(&self.pool)
                .await
                .map(|rows| rows.into_iter().map(|r| (r.product_id, r.shop_id)).collect())
                .unwrap_or_default()
        };
        self.registry.stop_actors_where(|p| shops.get(&p.0).is_none_or(|s| pick(ShopId(*s))));
        self.coordinator.forget_all();
    }

    /// Starts the actors of products with live holds in the shops `owned` says are this
    /// instance's (a shard just gained, after a start or a hand-over): an actor expires its
    /// holds on time, and an actor that is not running expires nothing.
    pub async fn revive_held(&self, owned: impl Fn(ShopId) -> bool) -> Result<usize, StockError> {
        let held = sqlx::query!(
            r#"select distinct r.shop_id as "shop_id!", l.product_id as "product_id!"
                 from stock.reservations r join stock.reservation_lines l using (reservation_id)
                where r.status = 'HELD' and l.status = 'HELD'"#
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| internal("finding products with live holds", e))?;
        let mut started = 0;
        for row in held.into_iter().filter(|r| owned(ShopId(r.shop_id))) {
            match self.registry.actor(ProductId(row.product_id)).await {
                Ok(_) => started += 1,
                Err(e) => {
                    tracing::warn!(product = %row.product_id, error = %e, "a product with live holds did not start")
                }
            }
        }
        Ok(started)
    }

    /// The queue of the instance that owns `shop`'s shard, when that is not this one.
    fn elsewhere(&self, shop: ShopId) -> Option<(&Shards, String)> {
        let shards = self.shards.as_deref()?;
        match shards.route(shop) {
            Route::Here => None,
            Route::There(queue) => Some((shards, queue)),
        }
    }

    async fn elsewhere_product(&self, product: ProductId) -> Result<Option<(&Shards, String)>, StockError> {
        let Some(shards) = self.shards.as_deref() else { return Ok(None) };
        Ok(match shards.route_product(product).await? {
            Route::Here => None,
            Route::There(queue) => Some((shards, queue)),
        })
    }

    /// `shop`, when the caller knows it (an order event carries it), spares reading it.
    async fn elsewhere_reservation(
        &self,
        id: ReservationId,
        shop: Option<ShopId>,
    ) -> Result<Option<(&Shards, String)>, StockError> {
        if self.shards.is_none() {
            return Ok(None);
        }
        let shop = match shop {
            Some(shop) => shop,
            None => self.coordinator.shop_of(id).await?,
        };
        Ok(self.elsewhere(shop))
    }

    /// Reserves every line or none.
    pub async fn reserve(&self, cmd: &ReserveCommand, meta: &MessageMeta) -> Result<ReservationView, StockError> {
        if let Some((shards, queue)) = self.elsewhere(cmd.shop_id) {
            return shards.forward(&queue, &Op::Reserve(cmd.clone()), meta).await;
        }
        self.coordinator.reserve(cmd, meta).await
    }

    /// Stock leaves. Idempotent: committing a committed reservation answers the same.
    pub async fn commit(
        &self,
        reservation_id: ReservationId,
        order_id: Option<OrderId>,
        meta: &MessageMeta,
    ) -> Result<ReservationView, StockError> {
        self.commit_in(None, reservation_id, order_id, meta).await
    }

    /// [`Stock::commit`] of a reservation of `shop`, when the caller knows it: an instance
    /// not owning the shop's shard forwards without reading the reservation's shop.
    pub async fn commit_in(
        &self,
        shop: Option<ShopId>,
        reservation_id: ReservationId,
        order_id: Option<OrderId>,
        meta: &MessageMeta,
    ) -> Result<ReservationView, StockError> {
        if let Some((shards, queue)) = self.elsewhere_reservation(reservation_id, shop).await? {
            let op = Op::Commit { reservation_id: reservation_id.0, order_id: order_id.map(|o| o.0) };
            return shards.forward(&queue, &op, meta).await;
        }
        self.coordinator.commit(reservation_id, order_id, meta).await
    }

    /// A sale booked after its hold expired: the order's event arrived once the hold had
    /// run out (the order service or the broker was down past it). The goods left the shop
    /// all the same, so the expired reservation's lines (its very units, by barcode) are
    /// reserved again under an id derived from it and committed to the order: redelivered,
    /// the derived reservation is the same one and commits once. What is no longer there
    /// (sold or held again meanwhile) is refused as any reservation would be: that is logged
    /// as an error, for someone to count the shelf, and not retried. While the rows still
    /// say HELD (an actor's expiry not written yet) it answers `Busy`, to be tried again.
    pub async fn sell_expired(
        &self,
        shop: ShopId,
        expired: ReservationId,
        order_id: OrderId,
        meta: &MessageMeta,
    ) -> Result<Option<ReservationView>, StockError> {
        const LATE: Uuid = Uuid::from_u128(0x6a0e_51c2_93d4_4f7b_b2e8_0c5d_7f31_a9e6);
        let rows = sqlx::query!(
            r#"select r.status, l.product_id, l.quantity, i.barcode as "barcode?"
                 from stock.reservation_lines l
                 join stock.reservations r using (reservation_id)
                 left join stock.items i on i.item_id = l.item_id
                where l.reservation_id = $1 and r.shop_id = $2
                order by l.line_no, l.unit_no"#,
            expired.0,
            shop.0
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| internal("reading an expired reservation's lines", e))?;
        match rows.first().map(|r| r.status.as_str()) {
            Some("EXPIRED") => {}
            // An actor answered "expired" before its batch (or another product's actor, on
            // its own clock) wrote it: again later, when the rows say so.
            Some("HELD") => return Err(StockError::Busy),
            // Not this shop's, committed meanwhile, or released: a sale's reservation is
            // released only when nothing was booked, so that is not one to sell.
            _ => return Ok(None),
        }
        let lines = rows
            .into_iter()
            .map(|r| match r.barcode {
                Some(barcode) => crate::domain::Wanted::Unit { barcode, product_id: Some(ProductId(r.product_id)) },
                None => {
                    crate::domain::Wanted::Quantity { product_id: ProductId(r.product_id), quantity: r.quantity.into() }
                }
            })
            .collect();
        let again = ReservationId(Uuid::new_v5(&LATE, expired.0.as_bytes()));
        let cmd = ReserveCommand { reservation_id: again, shop_id: shop, ttl_seconds: 120, lines };
        match self.reserve(&cmd, meta).await {
            Ok(_) => {}
            Err(StockError::ReservationCommitted) => return Ok(None), // sold late already (a redelivery)
            Err(e @ (StockError::Insufficient { .. } | StockError::UnitUnavailable { .. })) => {
                tracing::error!(
                    reservation_id = %expired.0, order_id = %order_id.0, error = %e,
                    "a sale booked after its hold expired found its stock gone: the shelf holds less than the levels say"
                );
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        tracing::warn!(reservation_id = %expired.0, order_id = %order_id.0, "a sale booked after its hold expired took its stock late");
        self.commit_in(Some(shop), again, Some(order_id), meta).await.map(Some)
    }

    /// Stock returns. Idempotent; releasing a committed reservation is refused.
    pub async fn release(&self, reservation_id: ReservationId) -> Result<ReservationView, StockError> {
        self.release_in(None, reservation_id).await
    }

    /// [`Stock::release`] of a reservation of `shop`, when the caller knows it.
    pub async fn release_in(
        &self,
        shop: Option<ShopId>,
        reservation_id: ReservationId,
    ) -> Result<ReservationView, StockError> {
        if let Some((shards, queue)) = self.elsewhere_reservation(reservation_id, shop).await? {
            let op = Op::Release { reservation_id: reservation_id.0 };
            return shards.forward(&queue, &op, &MessageMeta::default()).await;
        }
        self.coordinator.release(reservation_id).await
    }

    /// A reservation as its rows (or, on its owner, its memory) tell it.
    pub async fn load(&self, reservation_id: ReservationId) -> Result<ReservationView, StockError> {
        self.coordinator.load(reservation_id).await
    }

    /// The shop a reservation belongs to.
    pub async fn shop_of(&self, reservation_id: ReservationId) -> Result<ShopId, StockError> {
        self.coordinator.shop_of(reservation_id).await
    }

    /// Receives, adjusts or restocks a bulk product; answers its level after the change.
    pub async fn adjust(&self, product: ProductId, change: Adjustment) -> Result<Level, StockError> {
        if let Some((shards, queue)) = self.elsewhere_product(product).await? {
            let op = Op::Adjust { product_id: product.0, change: WireAdjustment::from(&change) };
            return shards.forward(&queue, &op, &change.meta).await;
        }
        self.registry.ask(product, |reply| Msg::Ask(Request::Adjust { change: change.clone(), reply })).await
    }

    /// A serialized unit was created (its row is written): a running actor sells it at once.
    /// Told, not asked: an owner that cannot be told reads the unit from the rows when its
    /// actor next starts (logged).
    pub async fn add_unit(&self, product: ProductId, unit: NewUnit) {
        match self.elsewhere_product(product).await {
            Ok(None) => {}
            Ok(Some((shards, queue))) => {
                let told = shards.forward::<()>(&queue, &Op::add_unit(product, &unit), &MessageMeta::default()).await;
                if let Err(e) = told {
                    tracing::warn!(%product, error = %e, "the shard's owner was not told of a new unit");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(%product, error = %e, "a new unit's shard is unknown");
                return;
            }
        }
        let unit_state = state::Unit {
            barcode: unit.barcode,
            price_minor: unit.price_minor,
            warranty_months: unit.warranty_months,
            held_by: None,
        };
        self.registry.tell(product, Msg::Ask(Request::UnitAdded { item_id: unit.item_id.0, unit: unit_state }));
    }

    /// An available unit leaves stock by hand (damaged, lost).
    pub async fn remove_unit(
        &self,
        product: ProductId,
        item_id: ItemId,
        reason: &str,
        actor_id: Option<Uuid>,
        meta: &MessageMeta,
    ) -> Result<(), StockError> {
        if let Some((shards, queue)) = self.elsewhere_product(product).await? {
            let op = Op::RemoveUnit { product_id: product.0, item_id: item_id.0, reason: reason.to_owned(), actor_id };
            return shards.forward(&queue, &op, meta).await;
        }
        self.registry
            .ask(product, |reply| {
                Msg::Ask(Request::RemoveUnit {
                    item_id: item_id.0,
                    reason: reason.to_owned(),
                    actor_id,
                    meta: meta.clone(),
                    reply,
                })
            })
            .await
    }

    /// A sold unit comes back (a return with restock); once per return.
    pub async fn return_unit(
        &self,
        product: ProductId,
        item_id: ItemId,
        return_id: Uuid,
        meta: &MessageMeta,
    ) -> Result<(), StockError> {
        if let Some((shards, queue)) = self.elsewhere_product(product).await? {
            let op = Op::ReturnUnit { product_id: product.0, item_id: item_id.0, return_id };
            return shards.forward(&queue, &op, meta).await;
        }
        self.registry
            .ask(product, |reply| {
                Msg::Ask(Request::ReturnUnit { item_id: item_id.0, return_id, meta: meta.clone(), reply })
            })
            .await
    }

    /// The product, its prices or discounts changed: a running actor reads them again. Told,
    /// as [`Stock::add_unit`].
    pub async fn reload(&self, product: ProductId) {
        match self.elsewhere_product(product).await {
            Ok(None) => self.registry.tell(product, Msg::Ask(Request::Reload)),
            Ok(Some((shards, queue))) => {
                let op = Op::Reload { product_id: product.0 };
                if let Err(e) = shards.forward::<()>(&queue, &op, &MessageMeta::default()).await {
                    tracing::warn!(%product, error = %e, "the shard's owner was not told to reload a product");
                }
            }
            Err(e) => tracing::warn!(%product, error = %e, "a changed product's shard is unknown"),
        }
    }

    /// How many product actors run.
    pub fn running(&self) -> usize {
        self.registry.running()
    }

    /// Stops every actor (shutdown); their state is in the rows.
    pub fn stop_all(&self) {
        self.registry.stop_all();
    }
}
