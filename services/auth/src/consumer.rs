//! Auth's projection of shop customers, from `sales.order.completed` (idempotent through
//! the inbox: a redelivered order is not counted twice).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use bus::{Handler, HandlerError, Incoming};
use contracts::sales::OrderCompleted;

pub const BINDINGS: &[&str] = &[OrderCompleted::ALL];

pub struct CustomerProjection;

/// What the orders that arrived together add to one (shop, customer) row.
#[derive(Default)]
struct Seen {
    orders: i32,
    last_order_at: Option<DateTime<Utc>>,
    name: Option<String>,
    email: Option<String>,
}

#[async_trait::async_trait]
impl Handler for CustomerProjection {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandlerError> {
        self.handle_all(conn, &[msg]).await
    }

    /// One statement for every order that arrived together: counted per (shop, customer),
    /// with the latest order's name and e-mail, in key order (two batches lock alike).
    async fn handle_all(&self, conn: &mut PgConnection, msgs: &[&Incoming]) -> Result<(), HandlerError> {
        let mut orders = msgs.iter().map(|m| m.event::<OrderCompleted>()).collect::<Result<Vec<_>, _>>()?;
        // Oldest first, so a later order's name and e-mail win, as one by one.
        orders.sort_by_key(|e| e.completed_at);
        let mut rows: BTreeMap<(Uuid, Uuid), Seen> = BTreeMap::new();
        for e in orders {
            let Some(customer_id) = e.customer_id else { continue }; // walk-in sale
            let row = rows.entry((e.shop.id, customer_id)).or_default();
            row.orders += 1;
            row.last_order_at = Some(e.completed_at);
            if let Some(c) = e.customer {
                row.name = c.name.or(row.name.take());
                row.email = Some(c.email);
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let mut shops = Vec::with_capacity(rows.len());
        let mut customers = Vec::with_capacity(rows.len());
        let mut names = Vec::with_capacity(rows.len());
        let mut emails = Vec::with_capacity(rows.len());
        let mut counts = Vec::with_capacity(rows.len());
        let mut lasts = Vec::with_capacity(rows.len());
        for ((shop, customer), seen) in rows {
            shops.push(shop);
            customers.push(customer);
            names.push(seen.name);
            emails.push(seen.email);
            counts.push(seen.orders);
            lasts.push(seen.last_order_at);
        }
        sqlx::query(
            "insert into shop_customers (shop_id, customer_id, name, email, order_count, last_order_at)
             select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int4[], $6::timestamptz[])
             on conflict (shop_id, customer_id) do update set
                order_count = shop_customers.order_count + excluded.order_count,
                last_order_at = greatest(shop_customers.last_order_at, excluded.last_order_at),
                name = coalesce(excluded.name, shop_customers.name),
                email = coalesce(excluded.email, shop_customers.email)",
        )
        .bind(&shops)
        .bind(&customers)
        .bind(&names)
        .bind(&emails)
        .bind(&counts)
        .bind(&lasts)
        .execute(conn)
        .await?;
        Ok(())
    }
}
