//! `POST /reservations`, `GET /reservations/{id}`, `POST /reservations/{id}/commit` and
//! `/release`: the HTTP face of the reservation core (the order service uses RPC).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bus::MessageMeta;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use contracts::stock::{ReservationView, ReserveLine, ReserveRequest};
use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path};
use platform::idempotency::{self, IdempotencyKey};
use platform::ids::{OrderId, ReservationId, ShopId};
use platform::Problem;

use super::AppState;
use crate::domain::ReserveCommand;
use crate::Error;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reserve))
        .routes(routes!(get_reservation))
        .routes(routes!(commit))
        .routes(routes!(release))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReserveBody {
    shop_id: Uuid,
    lines: Vec<ReserveLine>,
    ttl_seconds: Option<u32>,
    /// Optional: a retry with the same id (or the same Idempotency-Key) is the same reservation.
    reservation_id: Option<Uuid>,
}

/// A namespace for reservation ids derived from Idempotency-Key headers.
const IDEMPOTENCY_NS: Uuid = Uuid::from_u128(0x6d1b_9a2c_4f3e_4b8a_9c7d_2e1f_0a3b_5c6d);

/// Reserves every line or none, with a time to live.
#[utoipa::path(post, path = "/reservations", tag = "reservations", request_body = ReserveBody, responses(
    (status = 201, body = ReservationView), (status = 401, body = Problem), (status = 403, body = Problem),
    (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn reserve(
    State(s): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    meta: MessageMeta,
    Json(body): Json<ReserveBody>,
) -> Result<Response, Error> {
    let shop = ShopId(body.shop_id);
    user.require_shop_role(shop, ShopRole::ShopStaff)?;
    // The key also names the reservation, so even a retry that outlives the stored answer
    // lands on the same reservation.
    let reservation_id = body
        .reservation_id
        .or_else(|| key.0.as_ref().map(|k| Uuid::new_v5(&IDEMPOTENCY_NS, format!("{}:{k}", body.shop_id).as_bytes())))
        .unwrap_or_else(Uuid::now_v7);
    let (s, body, meta) = (&s, &body, &meta);
    idempotency::once(&s.pool, &key, shop, "POST /reservations", body, move || async move {
        let cmd = ReserveCommand::parse(&ReserveRequest {
            reservation_id,
            shop_id: body.shop_id,
            lines: body.lines.clone(),
            ttl_seconds: body.ttl_seconds.unwrap_or(900),
        })?;
        Ok((StatusCode::CREATED, s.stock.reserve(&cmd, meta).await?))
    })
    .await
    .map_err(Error::from)
}

async fn owned(s: &AppState, user: &AuthUser, id: Uuid) -> Result<(), Error> {
    let shop = s.stock.shop_of(ReservationId(id)).await?;
    Ok(staff_of(user, shop)?)
}

fn staff_of(user: &AuthUser, shop: ShopId) -> Result<(), Problem> {
    user.require_shop_role(shop, ShopRole::ShopStaff).map(|_| ()).map_err(|_| {
        // Another shop's reservation does not exist, as far as this caller can tell.
        Problem::not_found("RESERVATION_NOT_FOUND", "No such reservation.")
    })
}

/// A reservation and its lines.
#[utoipa::path(get, path = "/reservations/{id}", tag = "reservations", params(("id" = Uuid, Path)), responses(
    (status = 200, body = ReservationView), (status = 401, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_reservation(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<ReservationView>, Error> {
    owned(&s, &user, id).await?;
    Ok(Json(s.stock.load(ReservationId(id)).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitBody {
    order_id: Option<Uuid>,
}

/// Stock leaves (the sale is booked). Idempotent.
#[utoipa::path(post, path = "/reservations/{id}/commit", tag = "reservations", params(("id" = Uuid, Path)),
    request_body(content = CommitBody, description = "optional"), responses(
    (status = 200, body = ReservationView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn commit(
    State(s): State<AppState>,
    user: AuthUser,
    meta: MessageMeta,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Json<ReservationView>, Error> {
    owned(&s, &user, id).await?;
    let body: CommitBody = if body.is_empty() {
        CommitBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| super::unprocessable("body", &e.to_string()))?
    };
    Ok(Json(s.stock.commit(ReservationId(id), body.order_id.map(OrderId), &meta).await?))
}

/// Stock returns to availability. Idempotent.
#[utoipa::path(post, path = "/reservations/{id}/release", tag = "reservations", params(("id" = Uuid, Path)), responses(
    (status = 200, body = ReservationView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn release(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<ReservationView>, Error> {
    owned(&s, &user, id).await?;
    Ok(Json(s.stock.release(ReservationId(id)).await?))
}
