//! Shops, their members and invites, and the shop-customer projection.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use bus::MessageMeta;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use contracts::auth::{InviteCreated, MemberChanged, ShopCreated, UserRegistered};
use contracts::common::{Recipient, ShopBrand};
use platform::auth::{AuthUser, Role, ShopRole};
use platform::http::{Json, Path, Query};
use platform::pagination::{Page, PageQuery};
use platform::Problem;

use super::AppState;
use crate::crypto;
use crate::domain::{self, Email, Password};
use crate::error::AuthError;
use crate::session::{self, TokenResponse};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_shop, my_shops))
        .routes(routes!(get_shop, update_shop))
        .routes(routes!(set_default))
        .routes(routes!(shop_customers))
        .routes(routes!(invite))
        .routes(routes!(accept_invite))
        .routes(routes!(members))
        .routes(routes!(update_member, remove_member))
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ShopView {
    id: Uuid,
    business_name: String,
    address: String,
    contact_phone: Option<String>,
    shop_logo: Option<String>,
    shop_banner: Option<String>,
    currency: String,
    allow_credit: bool,
    owner_id: Uuid,
    created_at: DateTime<Utc>,
    /// The caller's role in this shop (null for platform admins who are not members).
    role: Option<ShopRole>,
}

const SHOP_COLUMNS: &str = "s.shop_id as id, s.business_name, s.address, s.contact_phone, s.shop_logo, s.shop_banner,
    s.currency, s.allow_credit, s.owner_id, s.created_at";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShopInput {
    business_name: Option<String>,
    address: Option<String>,
    contact_phone: Option<String>,
    shop_logo: Option<String>,
    shop_banner: Option<String>,
    currency: Option<String>,
    allow_credit: Option<bool>,
}

fn currency(raw: Option<&str>) -> Result<Option<String>, AuthError> {
    raw.map(|c| {
        c.parse::<platform::Currency>()
            .map(|c| c.code().to_owned())
            .map_err(|_| AuthError::field("currency", "unknown currency"))
    })
    .transpose()
}

/// Opens a new shop; the caller becomes its owner. For shop owners (and admins).
#[utoipa::path(post, path = "/shops", tag = "shops", request_body = ShopInput, responses(
    (status = 201, body = ShopView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn create_shop(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(req): Json<ShopInput>,
) -> Result<(StatusCode, Json<ShopView>), AuthError> {
    if !matches!(user.role, Role::ShopOwner | Role::Admin | Role::SuperAdmin) {
        return Err(AuthError::Forbidden("Only shop owners open shops."));
    }
    let name = domain::name("businessName", req.business_name.as_deref().unwrap_or(""))?;
    let address = domain::optional_text("address", req.address.as_deref(), 300)?
        .ok_or_else(|| AuthError::field("address", "required"))?;
    let phone = domain::optional_text("contactPhone", req.contact_phone.as_deref(), 40)?;
    // A new shop has no uploads yet: its images are uploads of one of the caller's shops.
    let own_upload = |field: &str, v: Option<String>| -> Result<Option<String>, AuthError> {
        v.map(|v| {
            user.shops
                .keys()
                .find_map(|shop| platform::validate::shop_object(field, shop.0, &v).ok())
                .ok_or_else(|| AuthError::field(field, "an uploaded file of one of your shops"))
        })
        .transpose()
    };
    let logo = own_upload("shopLogo", domain::optional_text("shopLogo", req.shop_logo.as_deref(), 1_000)?)?;
    let banner = own_upload("shopBanner", domain::optional_text("shopBanner", req.shop_banner.as_deref(), 1_000)?)?;
    let currency = currency(req.currency.as_deref())?.unwrap_or_else(|| "LKR".into());
    let allow_credit = req.allow_credit.unwrap_or(false);
    let shop_id = Uuid::now_v7();
    let mut tx = s.pool.begin().await?;
    sqlx::query(
        "insert into shops (shop_id, business_name, address, contact_phone, shop_logo, shop_banner, currency, allow_credit, owner_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(shop_id)
    .bind(&name)
    .bind(&address)
    .bind(&phone)
    .bind(&logo)
    .bind(&banner)
    .bind(&currency)
    .bind(allow_credit)
    .bind(user.user_id.0)
    .execute(&mut *tx)
    .await?;
    sqlx::query("insert into memberships (shop_id, user_id, role) values ($1, $2, 'SHOP_OWNER')")
        .bind(shop_id)
        .bind(user.user_id.0)
        .execute(&mut *tx)
        .await?;
    let (email, owner_name): (String, String) = sqlx::query_as("select email, name from users where user_id = $1")
        .bind(user.user_id.0)
        .fetch_one(&mut *tx)
        .await?;
    let event = ShopCreated {
        shop: ShopBrand { id: shop_id, name, logo_url: logo, address: Some(address), contact_phone: phone },
        owner: Recipient { email, name: Some(owner_name) },
        owner_id: user.user_id.0,
        currency,
        allow_credit,
        created_at: Utc::now(),
    };
    bus::enqueue(&mut tx, &event, &MessageMeta::from_headers(&headers)).await?;
    let view = load_shop(&mut tx, shop_id, Some(ShopRole::ShopOwner)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn load_shop(
    conn: &mut sqlx::PgConnection,
    shop_id: Uuid,
    role: Option<ShopRole>,
) -> Result<ShopView, AuthError> {
    let sql = format!("select {SHOP_COLUMNS}, $2::text as role from shops s where s.shop_id = $1");
    sqlx::query_as(&sql).bind(shop_id).bind(role).fetch_optional(conn).await?.ok_or(AuthError::NotFound("shop"))
}

/// The shops the caller belongs to.
#[utoipa::path(get, path = "/shops", tag = "shops", responses((status = 200, body = [ShopView]), (status = 401, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn my_shops(State(s): State<AppState>, user: AuthUser) -> Result<Json<Vec<ShopView>>, AuthError> {
    let sql = format!(
        "select {SHOP_COLUMNS}, m.role from memberships m join shops s using (shop_id)
          where m.user_id = $1 and m.status = 'ACTIVE' order by m.created_at"
    );
    Ok(Json(sqlx::query_as(&sql).bind(user.user_id.0).fetch_all(&s.pool).await?))
}

/// The caller's role in `shop` according to the database (the token may be up to 15
/// minutes old), if at least `min`; platform admins pass as non-members when `admins` is set.
async fn shop_role(
    s: &AppState,
    user: &AuthUser,
    shop: Uuid,
    min: ShopRole,
    admins: bool,
) -> Result<Option<ShopRole>, AuthError> {
    let role: Option<ShopRole> =
        sqlx::query_scalar("select role from memberships where shop_id = $1 and user_id = $2 and status = 'ACTIVE'")
            .bind(shop)
            .bind(user.user_id.0)
            .fetch_optional(&s.pool)
            .await?;
    if role.is_some_and(|r| r >= min) {
        return Ok(role);
    }
    if admins && user.is_platform_admin() {
        let exists: bool = sqlx::query_scalar("select exists(select 1 from shops where shop_id = $1)")
            .bind(shop)
            .fetch_one(&s.pool)
            .await?;
        return if exists { Ok(None) } else { Err(AuthError::NotFound("shop")) };
    }
    if role.is_some() {
        Err(AuthError::Problem(Problem::forbidden("SHOP_ROLE_REQUIRED", "This needs the shop owner.")))
    } else {
        Err(AuthError::Problem(Problem::forbidden("SHOP_ACCESS_DENIED", "You are not a member of this shop.")))
    }
}

/// One shop: for its members and platform admins.
#[utoipa::path(get, path = "/shops/{id}", tag = "shops", params(("id" = Uuid, Path)), responses(
    (status = 200, body = ShopView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_shop(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<ShopView>, AuthError> {
    let role = shop_role(&s, &user, id, ShopRole::ShopStaff, true).await?;
    let mut conn = s.pool.acquire().await?;
    Ok(Json(load_shop(&mut conn, id, role).await?))
}

/// Edits a shop: its owner only.
#[utoipa::path(put, path = "/shops/{id}", tag = "shops", params(("id" = Uuid, Path)), request_body = ShopInput, responses(
    (status = 200, body = ShopView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_shop(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(req): Json<ShopInput>,
) -> Result<Json<ShopView>, AuthError> {
    shop_role(&s, &user, id, ShopRole::ShopOwner, false).await?;
    let name = req.business_name.as_deref().map(|n| domain::name("businessName", n)).transpose()?;
    let address = domain::optional_text("address", req.address.as_deref(), 300)?;
    let phone = domain::optional_text("contactPhone", req.contact_phone.as_deref(), 40)?;
    // An existing shop's images are its own uploads (a new shop has none yet to point at).
    let upload = |field: &str, v: Option<String>| v.map(|v| platform::validate::shop_object(field, id, &v)).transpose();
    let logo = upload("shopLogo", domain::optional_text("shopLogo", req.shop_logo.as_deref(), 1_000)?)?;
    let banner = upload("shopBanner", domain::optional_text("shopBanner", req.shop_banner.as_deref(), 1_000)?)?;
    let currency = currency(req.currency.as_deref())?;
    let mut tx = s.pool.begin().await?;
    sqlx::query(
        "update shops set business_name = coalesce($2, business_name), address = coalesce($3, address),
                contact_phone = coalesce($4, contact_phone), shop_logo = coalesce($5, shop_logo),
                shop_banner = coalesce($6, shop_banner), currency = coalesce($7, currency),
                allow_credit = coalesce($8, allow_credit)
          where shop_id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(address)
    .bind(phone)
    .bind(logo)
    .bind(banner)
    .bind(currency)
    .bind(req.allow_credit)
    .execute(&mut *tx)
    .await?;
    let view = load_shop(&mut tx, id, Some(ShopRole::ShopOwner)).await?;
    let (email, owner_name): (String, String) = sqlx::query_as("select email, name from users where user_id = $1")
        .bind(view.owner_id)
        .fetch_one(&mut *tx)
        .await?;
    // Other services keep their copy of the brand up to date from the same event.
    let event = ShopCreated {
        shop: ShopBrand {
            id,
            name: view.business_name.clone(),
            logo_url: view.shop_logo.clone(),
            address: Some(view.address.clone()),
            contact_phone: view.contact_phone.clone(),
        },
        owner: Recipient { email, name: Some(owner_name) },
        owner_id: view.owner_id,
        currency: view.currency.clone(),
        allow_credit: view.allow_credit,
        created_at: view.created_at,
    };
    bus::enqueue(&mut tx, &event, &MessageMeta::from_headers(&headers)).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Makes this shop the caller's default.
#[utoipa::path(patch, path = "/shops/{id}/set-default", tag = "shops", params(("id" = Uuid, Path)), responses(
    (status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn set_default(State(s): State<AppState>, user: AuthUser, Path(id): Path<Uuid>) -> Result<StatusCode, AuthError> {
    shop_role(&s, &user, id, ShopRole::ShopStaff, false).await?;
    sqlx::query("update users set default_shop_id = $2 where user_id = $1")
        .bind(user.user_id.0)
        .bind(id)
        .execute(&s.pool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ShopCustomer {
    /// The customer's id again, under the name the first system's clients read.
    id: Uuid,
    customer_id: Uuid,
    name: Option<String>,
    email: Option<String>,
    order_count: i32,
    last_order_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomersQuery {
    page: Option<i64>,
    limit: Option<i64>,
    search: Option<String>,
}

/// The shop's customers with their order counts (fed by order events).
#[utoipa::path(get, path = "/shops/{id}/customers", tag = "shops", params(("id" = Uuid, Path), CustomersQuery), responses(
    (status = 200, body = Page<ShopCustomer>), (status = 401, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn shop_customers(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Query(q): Query<CustomersQuery>,
) -> Result<Json<Page<ShopCustomer>>, AuthError> {
    shop_role(&s, &user, id, ShopRole::ShopStaff, true).await?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let search = platform::pagination::contains_pattern(q.search.as_deref());
    let rows: Vec<ShopCustomer> = sqlx::query_as(
        "select customer_id as id, customer_id, name, email, order_count, last_order_at from shop_customers
          where shop_id = $1 and ($2::text is null or name ilike $2 or email ilike $2)
          order by last_order_at desc nulls last, customer_id limit $3 offset $4",
    )
    .bind(id)
    .bind(&search)
    .bind(page.limit)
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "select count(*) from shop_customers where shop_id = $1 and ($2::text is null or name ilike $2 or email ilike $2)",
    )
    .bind(id)
    .bind(&search)
    .fetch_one(&s.pool)
    .await?;
    Ok(Json(Page::new(rows, page, total)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    email: String,
    /// SHOP_STAFF (default) or SHOP_OWNER.
    role: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteSent {
    email: String,
    role: ShopRole,
    expires_at: DateTime<Utc>,
}

const INVITE_TTL_SECS: f64 = 7.0 * 86_400.0;

fn member_role(raw: Option<&str>) -> Result<ShopRole, AuthError> {
    match raw {
        None => Ok(ShopRole::ShopStaff),
        Some(r) => r.parse().map_err(|_| AuthError::field("role", "SHOP_STAFF or SHOP_OWNER")),
    }
}

/// Invites someone by e-mail to join the shop (the owner only).
#[utoipa::path(post, path = "/shops/{id}/invites", tag = "staff", params(("id" = Uuid, Path)), request_body = InviteRequest, responses(
    (status = 201, body = InviteSent), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn invite(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(req): Json<InviteRequest>,
) -> Result<(StatusCode, Json<InviteSent>), AuthError> {
    shop_role(&s, &user, id, ShopRole::ShopOwner, false).await?;
    let email = Email::parse(&req.email)?;
    let role = member_role(req.role.as_deref())?;
    let token = crypto::random_token();
    let mut tx = s.pool.begin().await?;
    let payload = serde_json::json!({"shopId": id, "role": role, "email": email.normalized()});
    let expires_at: DateTime<Utc> = sqlx::query_scalar(
        "insert into one_time_tokens (token_hash, purpose, payload, expires_at)
         values ($1, 'INVITE', $2, now() + make_interval(secs => $3)) returning expires_at",
    )
    .bind(crypto::digest(&token))
    .bind(payload)
    .bind(INVITE_TTL_SECS)
    .fetch_one(&mut *tx)
    .await?;
    let view = load_shop(&mut tx, id, None).await?;
    let inviter: String = sqlx::query_scalar("select name from users where user_id = $1")
        .bind(user.user_id.0)
        .fetch_one(&mut *tx)
        .await?;
    let mut url = s.app_url.join("/accept-invite").map_err(anyhow::Error::from)?;
    url.query_pairs_mut().append_pair("token", &token);
    let event = InviteCreated {
        to: Recipient { email: email.as_str().into(), name: None },
        shop: ShopBrand {
            id,
            name: view.business_name,
            logo_url: view.shop_logo,
            address: Some(view.address),
            contact_phone: view.contact_phone,
        },
        role: role.as_str().into(),
        invited_by: inviter,
        accept_url: url.to_string(),
        expires_at,
    };
    bus::enqueue(&mut tx, &event, &MessageMeta::from_headers(&headers)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(InviteSent { email: email.as_str().into(), role, expires_at })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    token: String,
    /// Needed when the invited e-mail has no account yet.
    name: Option<String>,
    password: Option<String>,
}

/// Accepts an invite (the token is the proof); creates the account if the e-mail is new, and
/// signs the member in.
#[utoipa::path(post, path = "/invites/accept", tag = "staff", request_body = AcceptRequest, responses(
    (status = 200, body = TokenResponse), (status = 400, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn accept_invite(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<AcceptRequest>,
) -> Result<Json<TokenResponse>, AuthError> {
    let password = req.password.as_deref().map(Password::parse).transpose()?;
    let hash = match password {
        Some(p) => Some(crypto::hash_password(p.into_inner()).await?),
        None => None,
    };
    let mut tx = s.pool.begin().await?;
    let payload: Option<serde_json::Value> = sqlx::query_scalar(
        "update one_time_tokens set used_at = now()
          where token_hash = $1 and purpose = 'INVITE' and used_at is null and expires_at > now()
         returning payload",
    )
    .bind(crypto::digest(req.token.trim()))
    .fetch_optional(&mut *tx)
    .await?;
    let payload = payload.ok_or(AuthError::TokenInvalid)?;
    let shop_id: Uuid = serde_json::from_value(payload["shopId"].clone()).map_err(anyhow::Error::from)?;
    let role = member_role(payload["role"].as_str())?;
    let email = payload["email"].as_str().unwrap_or_default().to_owned();
    let m = MessageMeta::from_headers(&headers);
    let existing: Option<Uuid> = sqlx::query_scalar("select user_id from users where lower(email) = $1")
        .bind(&email)
        .fetch_optional(&mut *tx)
        .await?;
    let user_id = match existing {
        Some(id) => id,
        None => {
            let name = domain::name("name", req.name.as_deref().unwrap_or(""))?;
            let hash = hash.ok_or_else(|| AuthError::field("password", "required for a new account"))?;
            let id = Uuid::now_v7();
            sqlx::query("insert into users (user_id, email, name, password_hash, role, email_verified) values ($1, $2, $3, $4, $5, true)")
                .bind(id)
                .bind(&email)
                .bind(&name)
                .bind(&hash)
                .bind(role)
                .execute(&mut *tx)
                .await?;
            bus::enqueue(
                &mut tx,
                &UserRegistered {
                    user_id: id,
                    email: email.clone(),
                    name,
                    role: role.as_str().into(),
                    registered_at: Utc::now(),
                },
                &m,
            )
            .await?;
            id
        }
    };
    sqlx::query(
        "insert into memberships (shop_id, user_id, role) values ($1, $2, $3)
         on conflict (shop_id, user_id) do update set role = excluded.role, status = 'ACTIVE'",
    )
    .bind(shop_id)
    .bind(user_id)
    .bind(role)
    .execute(&mut *tx)
    .await?;
    sqlx::query("update users set default_shop_id = coalesce(default_shop_id, $2) where user_id = $1")
        .bind(user_id)
        .bind(shop_id)
        .execute(&mut *tx)
        .await?;
    let event = MemberChanged {
        shop_id,
        user_id,
        role: Some(role.as_str().into()),
        status: "ACTIVE".into(),
        changed_at: Utc::now(),
    };
    bus::enqueue(&mut tx, &event, &m).await?;
    tx.commit().await?;
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    Ok(Json(session::start(&s.pool, &s.keys, &s.tokens, user_id, true, ua).await?))
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    user_id: Uuid,
    name: String,
    email: String,
    role: ShopRole,
    status: String,
    joined_at: DateTime<Utc>,
}

/// The shop's members (its staff and owners).
#[utoipa::path(get, path = "/shops/{id}/members", tag = "staff", params(("id" = Uuid, Path)), responses(
    (status = 200, body = [Member]), (status = 401, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn members(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<Member>>, AuthError> {
    shop_role(&s, &user, id, ShopRole::ShopStaff, true).await?;
    Ok(Json(
        sqlx::query_as(
            "select u.user_id, u.name, u.email, m.role, m.status, m.created_at as joined_at
               from memberships m join users u using (user_id) where m.shop_id = $1 order by m.created_at",
        )
        .bind(id)
        .fetch_all(&s.pool)
        .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    role: Option<String>,
    /// ACTIVE or SUSPENDED
    status: Option<String>,
}

/// Refuses a change that would leave the shop without an active owner.
async fn keeps_an_owner(conn: &mut sqlx::PgConnection, shop: Uuid, changed: Uuid) -> Result<(), AuthError> {
    let others: i64 = sqlx::query_scalar(
        "select count(*) from memberships where shop_id = $1 and user_id <> $2 and role = 'SHOP_OWNER' and status = 'ACTIVE'",
    )
    .bind(shop)
    .bind(changed)
    .fetch_one(conn)
    .await?;
    if others == 0 {
        return Err(AuthError::Conflict("SHOP_LAST_OWNER", "A shop keeps at least one active owner."));
    }
    Ok(())
}

/// Changes a member's role or status (the owner only).
#[utoipa::path(patch, path = "/shops/{id}/members/{user_id}", tag = "staff", params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    request_body = MemberUpdate, responses(
    (status = 200, body = Member), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id, member = %member))]
async fn update_member(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((id, member)): Path<(Uuid, Uuid)>,
    Json(req): Json<MemberUpdate>,
) -> Result<Json<Member>, AuthError> {
    shop_role(&s, &user, id, ShopRole::ShopOwner, false).await?;
    let role = req.role.as_deref().map(|r| member_role(Some(r))).transpose()?;
    let status = match req.status.as_deref() {
        None => None,
        Some("ACTIVE") => Some("ACTIVE"),
        Some("SUSPENDED") => Some("SUSPENDED"),
        Some(_) => return Err(AuthError::field("status", "ACTIVE or SUSPENDED")),
    };
    let mut tx = s.pool.begin().await?;
    let current: Option<(ShopRole, String)> =
        sqlx::query_as("select role, status from memberships where shop_id = $1 and user_id = $2 for update")
            .bind(id)
            .bind(member)
            .fetch_optional(&mut *tx)
            .await?;
    let (cur_role, _) = current.ok_or(AuthError::NotFound("member"))?;
    let demoting =
        cur_role == ShopRole::ShopOwner && (role == Some(ShopRole::ShopStaff) || status == Some("SUSPENDED"));
    if demoting {
        keeps_an_owner(&mut tx, id, member).await?;
    }
    let updated: Member = sqlx::query_as(
        "with u as (update memberships set role = coalesce($3, role), status = coalesce($4, status)
                     where shop_id = $1 and user_id = $2 returning user_id, role, status, created_at)
         select u.user_id, x.name, x.email, u.role, u.status, u.created_at as joined_at from u join users x using (user_id)",
    )
    .bind(id)
    .bind(member)
    .bind(role)
    .bind(status)
    .fetch_one(&mut *tx)
    .await?;
    let event = MemberChanged {
        shop_id: id,
        user_id: member,
        role: Some(updated.role.as_str().into()),
        status: updated.status.clone(),
        changed_at: Utc::now(),
    };
    bus::enqueue(&mut tx, &event, &MessageMeta::from_headers(&headers)).await?;
    tx.commit().await?;
    Ok(Json(updated))
}

/// Removes a member from the shop (the owner only).
#[utoipa::path(delete, path = "/shops/{id}/members/{user_id}", tag = "staff", params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), responses(
    (status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id, member = %member))]
async fn remove_member(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((id, member)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, AuthError> {
    shop_role(&s, &user, id, ShopRole::ShopOwner, false).await?;
    let mut tx = s.pool.begin().await?;
    let role: Option<ShopRole> =
        sqlx::query_scalar("select role from memberships where shop_id = $1 and user_id = $2 for update")
            .bind(id)
            .bind(member)
            .fetch_optional(&mut *tx)
            .await?;
    let role = role.ok_or(AuthError::NotFound("member"))?;
    if role == ShopRole::ShopOwner {
        keeps_an_owner(&mut tx, id, member).await?;
    }
    sqlx::query("delete from memberships where shop_id = $1 and user_id = $2")
        .bind(id)
        .bind(member)
        .execute(&mut *tx)
        .await?;
    sqlx::query("update users set default_shop_id = null where user_id = $1 and default_shop_id = $2")
        .bind(member)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event =
        MemberChanged { shop_id: id, user_id: member, role: None, status: "REMOVED".into(), changed_at: Utc::now() };
    bus::enqueue(&mut tx, &event, &MessageMeta::from_headers(&headers)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
