//! Per-request coordination: a multi-line reservation asks each product's actor for its
//! lines at the same time and, if any refuses, releases what the others granted. Actors
//! never wait on each other, so there is no lock order to get wrong and no deadlock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use platform::ids::{OrderId, ProductId, ReservationId, ShopId};

use bus::MessageMeta;
use contracts::stock::{ReservationView, ReservedLine};
use platform::{Currency, Money};

use super::actor::{Msg, Request};
use super::recent::Recent;
use super::writer::Together;
use super::{internal, store, HeldLine, Registry, StockError};
use crate::domain::ReservationStatus;
use crate::domain::ReserveCommand;
use sqlx::PgPool;

#[derive(Clone)]
pub(super) struct Coordinator {
    registry: Registry,
    pool: PgPool,
    recent: Recent,
}

fn money(minor: i64, currency: Currency) -> String {
    Money::from_minor(minor, currency).to_decimal_string()
}

impl Coordinator {
    pub(super) fn new(registry: Registry, pool: PgPool) -> Self {
        Self { registry, pool, recent: Recent::default() }
    }

    #[tracing::instrument(skip_all, fields(reservation_id = %cmd.reservation_id, shop_id = %cmd.shop_id, lines = cmd.lines.len()))]
    pub(super) async fn reserve(
        &self,
        cmd: &ReserveCommand,
        meta: &MessageMeta,
    ) -> Result<ReservationView, StockError> {
        // A reservation id is the caller's retry key within its shop; one that another shop
        // already used is refused by the writer, once per batch (not here: a read per
        // reservation in front of the actors halved their throughput).
        let barcodes = cmd.barcodes();
        let units = if barcodes.is_empty() {
            BTreeMap::new()
        } else {
            store::units_by_barcode(&self.pool, cmd.shop_id, &barcodes)
                .await
                .map_err(|e| internal("resolving barcodes", e))?
        };
        let by_product = cmd.per_product(&units)?;
        let expires_at = cmd.expires_at(Utc::now());
        let together = together(by_product.keys());
        let asks = by_product.into_iter().map(|(product, wants)| {
            let registry = self.registry.clone();
            let (rid, shop) = (cmd.reservation_id.0, cmd.shop_id.0);
            let (meta, together) = (meta.clone(), together.clone());
            async move {
                let answer = registry
                    .ask(product, |reply| {
                        Msg::Ask(Request::Reserve {
                            reservation_id: rid,
                            shop_id: shop,
                            expires_at,
                            wants: wants.clone(),
                            together: together.clone(),
                            meta: meta.clone(),
                            reply,
                        })
                    })
                    .await;
                (product, answer)
            }
        });
        let answers = futures::future::join_all(asks).await;
        let mut held: Vec<HeldLine> = Vec::new();
        let mut currency = None;
        let mut granted: Vec<ProductId> = Vec::new();
        let mut refusal: Option<StockError> = None;
        for (product, answer) in answers {
            match answer {
                Ok(h) => {
                    granted.push(product);
                    currency = Some(h.currency);
                    held.extend(h.lines);
                }
                Err(e) => {
                    if refusal.as_ref().is_none_or(|r| e.rank() > r.rank()) {
                        refusal = Some(e);
                    }
                }
            }
        }
        if let Some(e) = refusal {
            // All or nothing: give back what the other products granted.
            let rid = cmd.reservation_id.0;
            let undo = granted.into_iter().map(|product| {
                let registry = self.registry.clone();
                async move {
                    if let Err(err) = registry.ask(product, |reply| Msg::Ask(Request::Release { reservation_id: rid, reply })).await {
                        // Not lost: the hold expires on its own clock.
                        tracing::warn!(%product, reservation_id = %rid, error = %err, "compensating release failed; the hold will expire");
                    }
                }
            });
            futures::future::join_all(undo).await;
            return Err(e);
        }
        held.sort_by_key(|l| (l.line_no, l.unit_no));
        let currency = match currency {
            Some(c) => c,
            None => self.currency(cmd.shop_id).await?,
        };
        let answer = view(cmd.reservation_id, cmd.shop_id, ReservationStatus::Held, currency, expires_at, &held);
        self.recent.held(&answer, granted);
        Ok(answer)
    }

    async fn currency(&self, shop: ShopId) -> Result<Currency, StockError> {
        crate::db::shop_currency(&self.pool, shop.0).await.map_err(|e| internal("reading the currency", e))
    }

    /// The shop and products of a reservation.
    async fn parts(&self, reservation_id: ReservationId) -> Result<(ShopId, Vec<ProductId>), StockError> {
        if let Some(parts) = self.recent.parts(reservation_id) {
            return Ok(parts);
        }
        store::parts(&self.pool, reservation_id)
            .await
            .map_err(|e| internal("reading a reservation's products", e))?
            .ok_or(StockError::ReservationNotFound)
    }

    /// Forgets every reservation it remembered (they are read from the rows again).
    pub(super) fn forget_all(&self) {
        self.recent.clear();
    }

    pub(super) async fn shop_of(&self, reservation_id: ReservationId) -> Result<ShopId, StockError> {
        Ok(self.parts(reservation_id).await?.0)
    }

    /// Stock leaves. Idempotent: committing a committed reservation answers the same.
    #[tracing::instrument(skip(self, meta))]
    pub(super) async fn commit(
        &self,
        reservation_id: ReservationId,
        order_id: Option<OrderId>,
        meta: &MessageMeta,
    ) -> Result<ReservationView, StockError> {
        let (_, products) = self.parts(reservation_id).await?;
        if products.len() > 1 {
            // Stop every part's expiry clock first, so the commit cannot be cut in half.
            let pins = products.iter().map(|p| {
                self.registry.ask(*p, |reply| Msg::Ask(Request::Pin { reservation_id: reservation_id.0, reply }))
            });
            for r in futures::future::join_all(pins).await {
                r?;
            }
        }
        let together = together(products.iter());
        let commits = products.iter().map(|p| {
            self.registry.ask(*p, |reply| {
                Msg::Ask(Request::Commit {
                    reservation_id: reservation_id.0,
                    order_id: order_id.map(|o| o.0),
                    together: together.clone(),
                    meta: meta.clone(),
                    reply,
                })
            })
        });
        for r in futures::future::join_all(commits).await {
            r?;
        }
        // Every part is committed: what was reserved, now committed (or, not granted here
        // lately, as the rows say).
        match self.recent.settled(reservation_id, ReservationStatus::Committed) {
            Some(view) => Ok(view),
            None => self.load(reservation_id).await,
        }
    }

    /// Stock returns. Idempotent; releasing a committed reservation is refused.
    #[tracing::instrument(skip(self))]
    pub(super) async fn release(&self, reservation_id: ReservationId) -> Result<ReservationView, StockError> {
        let (_, products) = self.parts(reservation_id).await?;
        let releases = products.iter().map(|p| {
            self.registry.ask(*p, |reply| Msg::Ask(Request::Release { reservation_id: reservation_id.0, reply }))
        });
        for r in futures::future::join_all(releases).await {
            r?;
        }
        // Released now, or expired before: the rows tell which.
        self.recent.forget(reservation_id);
        self.load(reservation_id).await
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn load(&self, reservation_id: ReservationId) -> Result<ReservationView, StockError> {
        let r = store::reservation(&self.pool, reservation_id)
            .await
            .map_err(|e| internal("reading a reservation", e))?
            .ok_or(StockError::ReservationNotFound)?;
        let currency = self.currency(r.shop_id).await?;
        Ok(view(reservation_id, r.shop_id, r.status, currency, r.expires_at, &r.lines))
    }
}

/// The products of a reservation, when it has several: their actors' batches wait for each
/// other in the writer (`Writer::write`).
fn together<'a>(products: impl ExactSizeIterator<Item = &'a ProductId>) -> Option<Together> {
    (products.len() > 1).then(|| products.map(|p| p.0).collect())
}

fn view(
    reservation_id: ReservationId,
    shop_id: ShopId,
    status: ReservationStatus,
    currency: Currency,
    expires_at: DateTime<Utc>,
    held: &[HeldLine],
) -> ReservationView {
    ReservationView {
        reservation_id: reservation_id.0,
        shop_id: shop_id.0,
        status: status.as_str().to_owned(),
        currency: currency.code().to_owned(),
        expires_at,
        lines: held
            .iter()
            .map(|l| ReservedLine {
                product_id: l.product_id,
                name: l.name.clone(),
                quantity: l.quantity,
                unit_price: money(l.unit_price_minor, currency),
                list_price: money(l.list_price_minor, currency),
                item_id: l.item_id,
                barcode: l.barcode.clone(),
                warranty_until: l.warranty_until,
                loyalty_points: l.loyalty_points,
            })
            .collect(),
    }
}
