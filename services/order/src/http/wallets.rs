//! Customers' wallets: `GET /customer-wallet/{shopId}/{customerId}`,
//! `GET /customer-wallet/all/{customerId}`, `POST /customer-wallet/{shopId}/{customerId}/top-up`.
//! Amounts are opened for that shop's staff and for the customer, nobody else.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path};
use platform::idempotency::{self, IdempotencyKey};
use platform::ids::ShopId;
use platform::money::{Currency, Money, MoneyInput};
use platform::Problem;

use super::AppState;
use crate::db::orders::{self as db_orders, LedgerContext, NewLedger};
use crate::db::{customers, shops};
use crate::domain::types::PaymentMethod;
use crate::error::Error;
use crate::wallet::{Cached, Change, Owner};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_wallet)).routes(routes!(customer_wallets)).routes(routes!(top_up))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletTransaction {
    pub id: Uuid,
    /// SALE_PAYMENT, CHANGE, DUE, DUE_PAYMENT, TOP_UP, REFUND, LOYALTY_EARNED, LOYALTY_REVERSED.
    #[serde(rename = "type")]
    pub kind: String,
    pub method: Option<String>,
    /// Signed: negative takes from the wallet.
    pub amount: String,
    pub points: i64,
    pub order_id: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    pub shop_id: Uuid,
    pub customer_id: Uuid,
    pub currency: String,
    /// Negative: what the customer owes the shop.
    pub balance: String,
    pub loyalty_points: i64,
    /// What the customer owes ("0.00" when the balance is not negative).
    pub due_amount: String,
    /// The latest 50 changes, newest first.
    pub transactions: Vec<WalletTransaction>,
}

/// Whether `user` may see the customer's wallet at `shop`: the shop's staff, or the customer.
fn may_see(user: &AuthUser, shop: Uuid, customer: Uuid) -> bool {
    user.user_id.0 == customer || user.require_shop_role(ShopId(shop), ShopRole::ShopStaff).is_ok()
}

async fn wallet_view(s: &AppState, shop: Uuid, customer: Uuid) -> Result<WalletView, Error> {
    let shop_row = shops::get(&s.pool, shop).await?.ok_or(Error::ShopNotFound)?;
    let currency: Currency = shop_row.currency.parse().map_err(|_| anyhow::anyhow!("bad currency"))?;
    wallet_in(s, shop, currency, customer).await
}

/// The customer's wallet at `shop` (in its `currency`), opened, with its latest changes.
pub(crate) async fn wallet_in(
    s: &AppState,
    shop: Uuid,
    currency: Currency,
    customer: Uuid,
) -> Result<WalletView, Error> {
    let (balance, points, transactions) = match s.wallets.load(shop, customer).await? {
        Cached::Present(w) => {
            let entries = s.wallets.entries(shop, w.wallet_id, 50).await?;
            let txs = entries
                .into_iter()
                .map(|e| WalletTransaction {
                    id: e.entry_id,
                    kind: e.kind,
                    method: e.method,
                    amount: Money::from_minor(e.amount, currency).to_decimal_string(),
                    points: e.points,
                    order_id: e.order_id,
                    created_at: e.created_at,
                })
                .collect();
            (w.balance, w.points, txs)
        }
        Cached::Absent | Cached::Unknown => (0, 0, Vec::new()),
    };
    Ok(WalletView {
        shop_id: shop,
        customer_id: customer,
        currency: currency.code().to_owned(),
        balance: Money::from_minor(balance, currency).to_decimal_string(),
        loyalty_points: points,
        due_amount: Money::from_minor(balance.min(0).saturating_neg(), currency).to_decimal_string(),
        transactions,
    })
}

#[utoipa::path(get, path = "/customer-wallet/{shopId}/{customerId}", tag = "wallets",
    params(("shopId" = Uuid, Path), ("customerId" = Uuid, Path)), responses(
        (status = 200, body = WalletView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn get_wallet(
    State(s): State<AppState>,
    user: AuthUser,
    Path((shop, customer)): Path<(Uuid, Uuid)>,
) -> Result<Json<WalletView>, Problem> {
    if !may_see(&user, shop, customer) {
        return Err(Error::CustomerNotFound.into());
    }
    Ok(Json(wallet_view(&s, shop, customer).await?))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerWallets {
    pub customer_id: Uuid,
    pub wallets: Vec<WalletView>,
    /// The same wallets.
    pub data: Vec<WalletView>,
}

/// The customer's wallets at every shop the caller may see them in.
#[utoipa::path(get, path = "/customer-wallet/all/{customerId}", tag = "wallets", params(("customerId" = Uuid, Path)),
    responses((status = 200, body = CustomerWallets), (status = 401, body = Problem), (status = 409, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn customer_wallets(
    State(s): State<AppState>,
    user: AuthUser,
    Path(customer): Path<Uuid>,
) -> Result<Json<CustomerWallets>, Problem> {
    let shops: Vec<Uuid> =
        sqlx::query_scalar!("select shop_id from sales.wallets where customer_id = $1 order by created_at", customer)
            .fetch_all(&s.pool)
            .await
            .map_err(Error::from)?;
    let mut wallets = Vec::new();
    for shop in shops.into_iter().filter(|shop| may_see(&user, *shop, customer)) {
        wallets.push(wallet_view(&s, shop, customer).await?);
    }
    Ok(Json(CustomerWallets { customer_id: customer, data: wallets.clone(), wallets }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopUpBody {
    amount: MoneyInput,
    /// CASH, CARD or BANK.
    method: String,
    reference: Option<String>,
    register_id: Option<Uuid>,
}

/// Money paid into a customer's wallet at the shop: first against what they owe, the rest
/// as store credit.
#[utoipa::path(post, path = "/customer-wallet/{shopId}/{customerId}/top-up", tag = "wallets",
    params(("shopId" = Uuid, Path), ("customerId" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = TopUpBody, responses(
        (status = 201, body = WalletView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn top_up(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    Path((shop, customer)): Path<(Uuid, Uuid)>,
    Json(body): Json<TopUpBody>,
) -> Result<Response, Problem> {
    user.require_shop_role(ShopId(shop), ShopRole::ShopStaff)?;
    let method = match PaymentMethod::parse(&body.method) {
        Some(m @ (PaymentMethod::Cash | PaymentMethod::Card | PaymentMethod::Bank)) => m,
        _ => return Err(Problem::field("method", "CASH, CARD or BANK")),
    };
    if body.reference.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return Err(Problem::field("reference", "at most 200 characters"));
    }
    let request = (shop, customer, body.amount.clone(), method, body.register_id);
    const ROUTE: &str = "POST /customer-wallet/top-up";
    // Keyed, the first ledger row's id is the key's: a retry whose first answer was lost after
    // the commit (its stored answer gone) finds it and pays nothing in again.
    let effect = idempotency::effect_id(ShopId(shop), ROUTE, &key);
    idempotency::once(&s.pool, &key, ShopId(shop), ROUTE, &request, || async {
        if let Some(done) = effect {
            let mut conn = s.pool.acquire().await.map_err(Error::from)?;
            if crate::db::cashflow::ledger_has(&mut conn, done).await.map_err(Error::from)? {
                return Ok((StatusCode::CREATED, wallet_view(&s, shop, customer).await?));
            }
        }
        let shop_row = shops::get(&s.pool, shop).await.map_err(Error::from)?.ok_or(Error::ShopNotFound)?;
        let currency: Currency = shop_row.currency.parse().map_err(|_| Problem::field("amount", "unknown currency"))?;
        let amount = match body.amount.to_money(currency) {
            Ok(m) if m.minor() > 0 => m,
            Ok(_) => return Err(Problem::field("amount", "must be positive")),
            Err(e) => return Err(Problem::field("amount", &e.to_string())),
        };
        let mut conn = s.pool.acquire().await.map_err(Error::from)?;
        customers::by_id(&mut conn, shop, customer).await.map_err(Error::from)?.ok_or(Error::CustomerNotFound)?;
        drop(conn);
        // Again with the wallet read anew if another instance changed it meanwhile.
        let (s, body, user) = (&s, &body, &user);
        crate::wallet::until_its_turn(
            |e: &Error| matches!(e, Error::Wallet(crate::wallet::WalletError::Conflict)),
            |_| async move {
                let turn = s.wallets.turn(shop, customer).await.map_err(Error::from)?;
                let before = match &turn.state {
                    Cached::Present(w) => w.balance,
                    _ => 0,
                };
                let owed = before.min(0).saturating_neg();
                let paying_due = amount.minor().min(owed);
                let mut changes = Vec::new();
                let mut ledger = NewLedger::default();
                for (kind, source, part) in [
                    ("DUE_PAYMENT", "DUE_PAYMENT", paying_due),
                    ("TOP_UP", "WALLET_TOP_UP", amount.minor() - paying_due),
                ] {
                    if part > 0 {
                        changes.push(Change { kind, method: Some(method.as_str()), amount: part, points: 0 });
                        let first = ledger.id.is_empty();
                        ledger.id.push(if first { effect.unwrap_or_else(Uuid::now_v7) } else { Uuid::now_v7() });
                        ledger.method.push(method.as_str().to_owned());
                        ledger.direction.push("IN".to_owned());
                        ledger.amount.push(part);
                        ledger.source.push(source.to_owned());
                        ledger
                            .description
                            .push(if source == "DUE_PAYMENT" { "Due payment" } else { "Wallet top-up" }.to_owned());
                    }
                }
                let mut tx = s.pool.begin().await.map_err(Error::from)?;
                let context = LedgerContext {
                    shop_id: shop,
                    currency: currency.code(),
                    order_id: None,
                    return_id: None,
                    register_id: body.register_id,
                    customer_id: Some(customer),
                    actor_id: Some(user.user_id.0),
                };
                db_orders::insert_ledger(&mut tx, &context, &ledger).await.map_err(Error::from)?;
                let after = s
                    .wallets
                    .write(
                        &mut tx,
                        Owner { shop_id: shop, customer_id: customer },
                        &turn,
                        &changes,
                        None,
                        Some(user.user_id.0),
                    )
                    .await
                    .map_err(Error::from)?;
                tx.commit().await.map_err(Error::from)?;
                turn.finish(after);
                Ok(())
            },
        )
        .await?;
        Ok((StatusCode::CREATED, wallet_view(s, shop, customer).await?))
    })
    .await
}
