//! Auth's projection of shop customers, from `sales.order.completed` (idempotent through
//! the inbox: a redelivered order is not counted twice).

use sqlx::PgConnection;

use bus::{Handler, HandlerError, Incoming};
use contracts::sales::OrderCompleted;
use contracts::Event;

pub const BINDINGS: &[&str] = &[OrderCompleted::TYPE];

pub struct CustomerProjection;

#[async_trait::async_trait]
impl Handler for CustomerProjection {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandlerError> {
        let e: OrderCompleted = msg.event()?;
        let Some(customer_id) = e.customer_id else { return Ok(()) }; // walk-in sale
        let (name, email) = e.customer.map(|c| (c.name, Some(c.email))).unwrap_or((None, None));
        sqlx::query(
            "insert into shop_customers (shop_id, customer_id, name, email, order_count, last_order_at)
             values ($1, $2, $3, $4, 1, $5)
             on conflict (shop_id, customer_id) do update set
                order_count = shop_customers.order_count + 1,
                last_order_at = greatest(shop_customers.last_order_at, excluded.last_order_at),
                name = coalesce(excluded.name, shop_customers.name),
                email = coalesce(excluded.email, shop_customers.email)",
        )
        .bind(e.shop.id)
        .bind(customer_id)
        .bind(name)
        .bind(email)
        .bind(e.completed_at)
        .execute(conn)
        .await?;
        Ok(())
    }
}
