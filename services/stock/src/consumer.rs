//! Events stock follows: auth's shops (currency, owner for low-stock mail) and the order
//! service's sales, cancellations and returns (commit, release, restock). Commit and release
//! are idempotent by reservation id; a return restocks once (its id is in the ledger).

use crate::domain::ItemId;
use platform::ids::{OrderId, ProductId, ReservationId, ShopId};
use sqlx::PgConnection;

use bus::{Handler, HandlerError, Incoming, MessageMeta};
use contracts::auth::ShopCreated;
use contracts::sales::{OrderCancelled, OrderCompleted, ReturnCompleted};
use contracts::Event;

use crate::reservations::{Adjustment, Stock, StockError};

pub const BINDINGS: &[&str] = &[ShopCreated::TYPE, OrderCompleted::ALL, OrderCancelled::TYPE, ReturnCompleted::ALL];

pub struct StockEvents {
    pub stock: Stock,
}

fn settled(r: Result<impl Sized, StockError>) -> Result<(), HandlerError> {
    match r {
        Ok(_)
        | Err(StockError::ReservationNotFound | StockError::ReservationCommitted | StockError::ReservationExpired) => {
            Ok(())
        }
        Err(e) => Err(HandlerError::Transient(anyhow::anyhow!(e))),
    }
}

#[async_trait::async_trait]
impl Handler for StockEvents {
    /// A sale's commit and a cancellation's release are idempotent by reservation id, a
    /// restock by its return id (in the ledger): none needs the inbox. A shop's record is
    /// an upsert, but an older copy redelivered after a newer one must not win: inbox.
    fn idempotent(&self, msg: &Incoming) -> bool {
        matches!(msg.message_type.as_str(), OrderCompleted::TYPE | OrderCancelled::TYPE | ReturnCompleted::TYPE)
    }

    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandlerError> {
        match msg.message_type.as_str() {
            ShopCreated::TYPE => {
                let e: ShopCreated = msg.event()?;
                sqlx::query(
                    "insert into shops (shop_id, name, currency, owner_email, owner_name, logo_url) values ($1, $2, $3, $4, $5, $6)
                     on conflict (shop_id) do update set name = excluded.name, currency = excluded.currency,
                        owner_email = excluded.owner_email, owner_name = excluded.owner_name, logo_url = excluded.logo_url,
                        updated_at = now()",
                )
                .bind(e.shop.id)
                .bind(&e.shop.name)
                .bind(&e.currency)
                .bind(&e.owner.email)
                .bind(&e.owner.name)
                .bind(&e.shop.logo_url)
                .execute(conn)
                .await?;
                crate::db::forget_currency(e.shop.id);
                Ok(())
            }
            OrderCompleted::TYPE => {
                let e: OrderCompleted = msg.event()?;
                match e.reservation_id {
                    Some(r) => {
                        let (shop, reservation, order) = (ShopId(e.shop.id), ReservationId(r), OrderId(e.order_id));
                        match self.stock.commit_in(Some(shop), reservation, Some(order), &msg.meta).await {
                            // Booked after its hold ran out: the goods left all the same.
                            Err(StockError::ReservationExpired) => {
                                settled(self.stock.sell_expired(shop, reservation, order, &msg.meta).await)
                            }
                            r => settled(r),
                        }
                    }
                    None => Ok(()),
                }
            }
            OrderCancelled::TYPE => {
                let e: OrderCancelled = msg.event()?;
                match e.reservation_id {
                    Some(r) => settled(self.stock.release_in(Some(ShopId(e.shop_id)), ReservationId(r)).await),
                    None => Ok(()),
                }
            }
            ReturnCompleted::TYPE => self.restock(conn, &msg.event()?, &msg.meta).await,
            other => Err(HandlerError::Permanent(anyhow::anyhow!("stock does not handle {other}"))),
        }
    }
}

impl StockEvents {
    /// A return with restock: each bulk product's quantity comes back once, each unit is on
    /// sale again (both keyed by the return id, so a redelivery restocks nothing more).
    async fn restock(
        &self,
        conn: &mut PgConnection,
        e: &ReturnCompleted,
        meta: &MessageMeta,
    ) -> Result<(), HandlerError> {
        if !e.restocked {
            return Ok(());
        }
        // One restock per bulk product, however many lines name it: the return id
        // is what makes a redelivery restock once, so two lines must not look like
        // two copies.
        let mut bulk: std::collections::BTreeMap<uuid::Uuid, i64> = std::collections::BTreeMap::new();
        for line in e.lines.iter().filter(|l| l.barcode.is_none()) {
            if let Some(product) = line.product_id {
                *bulk.entry(product).or_default() += line.quantity;
            }
        }
        let units = e.lines.iter().filter(|l| l.barcode.is_some()).filter_map(|l| l.product_id.map(|p| (p, l)));
        for (product, line) in units {
            let answer = match &line.barcode {
                Some(code) => {
                    let item: Option<uuid::Uuid> =
                        sqlx::query_scalar("select item_id from items where shop_id = $1 and barcode = $2")
                            .bind(e.shop.id)
                            .bind(code)
                            .fetch_optional(&mut *conn)
                            .await?;
                    match item {
                        Some(item_id) => {
                            self.stock.return_unit(ProductId(product), ItemId(item_id), e.return_id, meta).await
                        }
                        None => Ok(()),
                    }
                }
                None => Ok(()),
            };
            answer.map_err(|err| HandlerError::Transient(anyhow::anyhow!(err)))?;
        }
        for (product, quantity) in bulk {
            let change = Adjustment {
                delta: quantity,
                kind: crate::domain::MovementKind::Return,
                reason: Some(format!("return of order #{}", e.order_number)),
                actor_id: None,
                unit_cost_minor: None,
                source_id: Some(e.return_id),
                supplier_id: None,
                meta: meta.clone(),
            };
            self.stock
                .adjust(ProductId(product), change)
                .await
                .map_err(|err| HandlerError::Transient(anyhow::anyhow!(err)))?;
        }
        Ok(())
    }
}
