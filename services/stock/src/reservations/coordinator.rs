//! Per-request coordination: a multi-line reservation asks each product's actor for its
//! lines at the same time and, if any refuses, releases what the others granted. Actors
//! never wait on each other, so there is no lock order to get wrong and no deadlock.

use bus::MessageMeta;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use contracts::stock::{ReservationView, ReserveRequest, ReservedLine};
use platform::{Currency, Money};

use super::actor::Msg;
use super::{internal, HeldLine, Registry, StockError, Want};

pub const MAX_LINES: usize = 100;
pub const MAX_TTL_SECS: u32 = 24 * 3600;

#[derive(Clone)]
pub struct Coordinator {
    registry: Registry,
}

fn money(minor: i64, currency: Currency) -> String {
    Money::from_minor(minor, currency).to_decimal_string()
}

impl Coordinator {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    #[tracing::instrument(skip_all, fields(reservation_id = %req.reservation_id, shop_id = %req.shop_id, lines = req.lines.len()))]
    pub async fn reserve(&self, req: &ReserveRequest, meta: &MessageMeta) -> Result<ReservationView, StockError> {
        if req.lines.is_empty() || req.lines.len() > MAX_LINES {
            return Err(StockError::Invalid(format!("1 to {MAX_LINES} lines")));
        }
        if req.ttl_seconds == 0 || req.ttl_seconds > MAX_TTL_SECS {
            return Err(StockError::Invalid(format!("ttlSeconds must be 1 to {MAX_TTL_SECS}")));
        }
        let pool = self.registry.pool();
        // A reservation id is the caller's retry key within its shop; one that another shop
        // already used is refused by the product actors, once per batch (not here: a read per
        // reservation in front of the actors halved their throughput).
        // Resolve barcodes to units (one query for all of them).
        let barcodes: Vec<String> = req.lines.iter().filter_map(|l| l.barcode.clone()).collect();
        let units: Vec<(String, Uuid, Uuid)> = if barcodes.is_empty() {
            Vec::new()
        } else {
            sqlx::query!(
                "select barcode, item_id, product_id from stock.items where shop_id = $1 and barcode = any($2)",
                req.shop_id,
                &barcodes
            )
            .fetch_all(pool)
            .await
            .map_err(|e| internal("resolving barcodes", e))?
            .into_iter()
            .map(|r| (r.barcode, r.item_id, r.product_id))
            .collect()
        };
        let mut by_product: BTreeMap<Uuid, Vec<Want>> = BTreeMap::new();
        for (i, line) in req.lines.iter().enumerate() {
            let line_no = i32::try_from(i).unwrap_or(i32::MAX);
            match (&line.product_id, &line.barcode) {
                (_, Some(code)) => {
                    if line.quantity != 1 {
                        return Err(StockError::Invalid("a barcode line reserves exactly one unit".into()));
                    }
                    let (_, item, product) = units
                        .iter()
                        .find(|(b, _, _)| b == code)
                        .ok_or_else(|| StockError::UnitNotFound(code.clone()))?;
                    if line.product_id.is_some_and(|p| p != *product) {
                        return Err(StockError::Invalid(format!("barcode {code} is not a unit of that product")));
                    }
                    by_product.entry(*product).or_default().push(Want { line_no, quantity: 1, item_id: Some(*item) });
                }
                (Some(product), None) => {
                    if !(1..=100_000).contains(&line.quantity) {
                        return Err(StockError::Invalid("quantity must be 1 to 100000".into()));
                    }
                    by_product.entry(*product).or_default().push(Want {
                        line_no,
                        quantity: line.quantity,
                        item_id: None,
                    });
                }
                (None, None) => return Err(StockError::Invalid("each line needs productId or barcode".into())),
            }
        }
        let expires_at = Utc::now() + chrono::Duration::seconds(i64::from(req.ttl_seconds));
        let asks = by_product.into_iter().map(|(product, wants)| {
            let registry = self.registry.clone();
            let (rid, shop) = (req.reservation_id, req.shop_id);
            let meta = meta.clone();
            async move {
                let answer = registry
                    .ask(product, |reply| Msg::Reserve {
                        reservation_id: rid,
                        shop_id: shop,
                        expires_at,
                        wants: wants.clone(),
                        meta: meta.clone(),
                        reply,
                    })
                    .await;
                (product, answer)
            }
        });
        let answers = futures::future::join_all(asks).await;
        let mut held: Vec<HeldLine> = Vec::new();
        let mut granted: Vec<Uuid> = Vec::new();
        let mut refusal: Option<StockError> = None;
        for (product, answer) in answers {
            match answer {
                Ok(lines) => {
                    granted.push(product);
                    held.extend(lines);
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
            let rid = req.reservation_id;
            let undo = granted.into_iter().map(|product| {
                let registry = self.registry.clone();
                async move {
                    if let Err(err) = registry.ask(product, |reply| Msg::Release { reservation_id: rid, reply }).await {
                        // Not lost: the hold expires on its own clock.
                        tracing::warn!(%product, reservation_id = %rid, error = %err, "compensating release failed; the hold will expire");
                    }
                }
            });
            futures::future::join_all(undo).await;
            return Err(e);
        }
        held.sort_by_key(|l| (l.line_no, l.unit_no));
        let currency = match held.first() {
            Some(l) => l.currency,
            None => self.currency(req.shop_id).await?,
        };
        Ok(view(req.reservation_id, req.shop_id, "HELD", currency, expires_at, &held))
    }

    async fn currency(&self, shop: Uuid) -> Result<Currency, StockError> {
        crate::db::shop_currency(self.registry.pool(), shop).await.map_err(|e| internal("reading the currency", e))
    }

    /// The shop and products of a reservation.
    async fn parts(&self, reservation_id: Uuid) -> Result<(Uuid, Vec<Uuid>), StockError> {
        let rows = sqlx::query!(
            "select distinct r.shop_id, l.product_id
               from stock.reservations r join stock.reservation_lines l using (reservation_id)
              where r.reservation_id = $1",
            reservation_id
        )
        .fetch_all(self.registry.pool())
        .await
        .map_err(|e| internal("reading a reservation's products", e))?;
        let shop = rows.first().map(|r| r.shop_id).ok_or(StockError::ReservationNotFound)?;
        Ok((shop, rows.into_iter().map(|r| r.product_id).collect()))
    }

    pub async fn shop_of(&self, reservation_id: Uuid) -> Result<Uuid, StockError> {
        Ok(self.parts(reservation_id).await?.0)
    }

    /// Stock leaves. Idempotent: committing a committed reservation answers the same.
    #[tracing::instrument(skip(self, meta))]
    pub async fn commit(
        &self,
        reservation_id: Uuid,
        order_id: Option<Uuid>,
        meta: &MessageMeta,
    ) -> Result<ReservationView, StockError> {
        let (_, products) = self.parts(reservation_id).await?;
        if products.len() > 1 {
            // Stop every part's expiry clock first, so the commit cannot be cut in half.
            let pins = products.iter().map(|p| self.registry.ask(*p, |reply| Msg::Pin { reservation_id, reply }));
            for r in futures::future::join_all(pins).await {
                r?;
            }
        }
        let commits = products.iter().map(|p| {
            self.registry.ask(*p, |reply| Msg::Commit { reservation_id, order_id, meta: meta.clone(), reply })
        });
        for r in futures::future::join_all(commits).await {
            r?;
        }
        self.load(reservation_id).await
    }

    /// Stock returns. Idempotent; releasing a committed reservation is refused.
    #[tracing::instrument(skip(self))]
    pub async fn release(&self, reservation_id: Uuid) -> Result<ReservationView, StockError> {
        let (_, products) = self.parts(reservation_id).await?;
        let releases = products.iter().map(|p| self.registry.ask(*p, |reply| Msg::Release { reservation_id, reply }));
        for r in futures::future::join_all(releases).await {
            r?;
        }
        self.load(reservation_id).await
    }

    #[tracing::instrument(skip(self))]
    pub async fn load(&self, reservation_id: Uuid) -> Result<ReservationView, StockError> {
        let pool = self.registry.pool();
        let head = sqlx::query!(
            "select shop_id, status, expires_at from stock.reservations where reservation_id = $1",
            reservation_id
        )
        .fetch_optional(pool)
        .await
        .map_err(|e| internal("reading a reservation", e))?
        .ok_or(StockError::ReservationNotFound)?;
        let rows = sqlx::query!(
            r#"select l.line_no, l.unit_no, l.product_id, l.name, l.quantity, l.unit_price_minor, l.item_id,
                      i.barcode as "barcode?", coalesce(p.loyalty_points, 0)::int8 as "loyalty_points!"
                 from stock.reservation_lines l left join stock.items i using (item_id)
                 left join stock.products p on p.product_id = l.product_id
                where l.reservation_id = $1 order by l.line_no, l.unit_no"#,
            reservation_id
        )
        .fetch_all(pool)
        .await
        .map_err(|e| internal("reading a reservation's lines", e))?;
        let currency = self.currency(head.shop_id).await?;
        let held: Vec<HeldLine> = rows
            .into_iter()
            .map(|l| HeldLine {
                line_no: l.line_no,
                unit_no: l.unit_no,
                product_id: l.product_id,
                name: l.name,
                quantity: i64::from(l.quantity),
                unit_price_minor: l.unit_price_minor,
                list_price_minor: l.unit_price_minor,
                item_id: l.item_id,
                barcode: l.barcode,
                warranty_until: None,
                loyalty_points: l.loyalty_points,
                currency,
            })
            .collect();
        Ok(view(reservation_id, head.shop_id, &head.status, currency, head.expires_at, &held))
    }
}

fn view(
    reservation_id: Uuid,
    shop_id: Uuid,
    status: &str,
    currency: Currency,
    expires_at: DateTime<Utc>,
    held: &[HeldLine],
) -> ReservationView {
    ReservationView {
        reservation_id,
        shop_id,
        status: status.to_owned(),
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
