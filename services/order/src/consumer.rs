//! Events the order service follows: auth's shops (brand, currency, initial credit policy)
//! and registered people (so a sale can name a registered customer).

use sqlx::PgConnection;

use bus::{Handler, HandlerError, Incoming};
use contracts::auth::{ShopCreated, UserRegistered};
use contracts::Event;

pub const BINDINGS: &[&str] = &[ShopCreated::TYPE, UserRegistered::TYPE];

pub struct OrderEvents;

#[async_trait::async_trait]
impl Handler for OrderEvents {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandlerError> {
        match msg.message_type.as_str() {
            ShopCreated::TYPE => {
                let e: ShopCreated = msg.event()?;
                crate::db::shops::upsert_from_event(conn, &e).await?;
                Ok(())
            }
            UserRegistered::TYPE => {
                let e: UserRegistered = msg.event()?;
                sqlx::query!(
                    "insert into sales.people (user_id, name, email, role, registered_at) values ($1, $2, $3, $4, $5)
                     on conflict (user_id) do update set name = excluded.name, email = excluded.email",
                    e.user_id,
                    e.name,
                    e.email,
                    e.role,
                    e.registered_at
                )
                .execute(conn)
                .await?;
                Ok(())
            }
            other => Err(HandlerError::Permanent(anyhow::anyhow!("order does not handle {other}"))),
        }
    }
}
