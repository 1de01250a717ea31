//! A shop's customers: registered users (by auth user id, from `sales.people`) and
//! walk-ins (found again by e-mail or phone, never made into auth users).

use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub customer_id: Uuid,
    pub registered: bool,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The shop's customer `id`; a registered user who never bought here becomes one.
#[tracing::instrument(skip_all)]
pub async fn by_id(conn: &mut PgConnection, shop_id: Uuid, id: Uuid) -> sqlx::Result<Option<Customer>> {
    let found = sqlx::query_as!(
        Customer,
        "select customer_id, registered, name, email, phone from sales.customers where shop_id = $1 and customer_id = $2",
        shop_id,
        id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if found.is_some() {
        return Ok(found);
    }
    sqlx::query_as!(
        Customer,
        r#"insert into sales.customers (customer_id, shop_id, registered, name, email)
           select p.user_id, $1, true, p.name, p.email from sales.people p where p.user_id = $2
           on conflict (shop_id, customer_id) do update set name = excluded.name
           returning customer_id, registered, name, email, phone"#,
        shop_id,
        id
    )
    .fetch_optional(conn)
    .await
}

/// The walk-in with this e-mail or phone, created if new. Two tills adding the same person
/// at once end with one record (the unique indexes decide, then the loser reads it).
#[tracing::instrument(skip_all)]
pub async fn walk_in(
    conn: &mut PgConnection,
    shop_id: Uuid,
    name: Option<&str>,
    email: Option<&str>,
    phone: Option<&str>,
) -> sqlx::Result<Customer> {
    loop {
        if email.is_some() || phone.is_some() {
            let found = sqlx::query_as!(
                Customer,
                "select customer_id, registered, name, email, phone from sales.customers
                  where shop_id = $1 and (lower(email) = lower($2) or phone = $3)
                  order by (lower(email) = lower($2)) desc nulls last limit 1",
                shop_id,
                email,
                phone
            )
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(c) = found {
                return Ok(c);
            }
        }
        let created = sqlx::query_as!(
            Customer,
            "insert into sales.customers (customer_id, shop_id, registered, name, email, phone)
             values ($1, $2, false, $3, $4, $5) on conflict do nothing
             returning customer_id, registered, name, email, phone",
            Uuid::now_v7(),
            shop_id,
            name,
            email,
            phone
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(c) = created {
            return Ok(c);
        }
    }
}
