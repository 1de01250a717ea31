//! Platform users: the admin list, and each account's own profile (self or ADMIN+).
//! Never returns secrets (password hashes, Google subject ids).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, Role};
use platform::http::{Json, Path, Query};
use platform::pagination::{Page, PageQuery};
use platform::Problem;

use super::AppState;
use crate::domain;
use crate::error::AuthError;
use crate::session;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_users)).routes(routes!(get_user, update_user, delete_user))
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    id: Uuid,
    name: String,
    email: String,
    role: String,
    status: String,
    email_verified: bool,
    profile_image: Option<String>,
    contact_number: Option<String>,
    dob: Option<NaiveDate>,
    default_shop_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str =
    "user_id as id, name, email, role, status, email_verified, profile_image, contact_number, dob, default_shop_id, created_at";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    role: Option<String>,
    status: Option<String>,
    search: Option<String>,
    page: Option<i64>,
    limit: Option<i64>,
}

/// All users, filtered (ADMIN and SUPER_ADMIN only).
#[utoipa::path(get, path = "/users", tag = "users", params(UsersQuery), responses(
    (status = 200, body = Page<UserView>), (status = 401, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn list_users(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<UsersQuery>,
) -> Result<Json<Page<UserView>>, AuthError> {
    user.require_platform_admin()?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let search = platform::pagination::contains_pattern(q.search.as_deref());
    let filter = "($1::text is null or role = $1) and ($2::text is null or status = $2)
                  and ($3::text is null or name ilike $3 or email ilike $3)";
    let rows: Vec<UserView> = sqlx::query_as(&format!(
        "select {USER_COLUMNS} from users where {filter} order by created_at desc, user_id limit $4 offset $5"
    ))
    .bind(&q.role)
    .bind(&q.status)
    .bind(&search)
    .bind(page.limit)
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("select count(*) from users where {filter}"))
        .bind(&q.role)
        .bind(&q.status)
        .bind(&search)
        .fetch_one(&s.pool)
        .await?;
    Ok(Json(Page::new(rows, page, total)))
}

fn self_or_admin(user: &AuthUser, id: Uuid) -> Result<(), AuthError> {
    if user.user_id.0 == id || user.is_platform_admin() {
        Ok(())
    } else {
        Err(AuthError::Forbidden("Only the account itself or a platform admin."))
    }
}

async fn load(s: &AppState, id: Uuid) -> Result<UserView, AuthError> {
    sqlx::query_as(&format!("select {USER_COLUMNS} from users where user_id = $1"))
        .bind(id)
        .fetch_optional(&s.pool)
        .await?
        .ok_or(AuthError::NotFound("user"))
}

/// One account (self or ADMIN+).
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)), responses(
    (status = 200, body = UserView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_user(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<UserView>, AuthError> {
    self_or_admin(&user, id)?;
    Ok(Json(load(&s, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserUpdate {
    name: Option<String>,
    profile_image: Option<String>,
    contact_number: Option<String>,
    dob: Option<NaiveDate>,
    /// Admins only.
    status: Option<String>,
    /// Admins only; SUPER_ADMIN only by a super admin.
    role: Option<String>,
}

/// Edits an account. Status and role changes are for admins; suspending revokes sessions.
#[utoipa::path(put, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)), request_body = UserUpdate, responses(
    (status = 200, body = UserView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_user(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<UserUpdate>,
) -> Result<Json<UserView>, AuthError> {
    self_or_admin(&user, id)?;
    if (req.status.is_some() || req.role.is_some()) && !user.is_platform_admin() {
        return Err(AuthError::Forbidden("Only platform admins change status or role."));
    }
    let name = req.name.as_deref().map(|n| domain::name("name", n)).transpose()?;
    // A profile picture is an upload of one of the caller's shops (uploads live under a shop).
    let image = domain::optional_text("profileImage", req.profile_image.as_deref(), 1_000)?
        .map(|img| {
            user.shops
                .keys()
                .find_map(|shop| platform::validate::shop_object("profileImage", shop.0, &img).ok())
                .ok_or_else(|| AuthError::field("profileImage", "an uploaded file of one of your shops"))
        })
        .transpose()?;
    let contact = domain::optional_text("contactNumber", req.contact_number.as_deref(), 40)?;
    if let Some(st) = req.status.as_deref() {
        if !matches!(st, "ACTIVE" | "INACTIVE" | "SUSPENDED") {
            return Err(AuthError::field("status", "ACTIVE, INACTIVE or SUSPENDED"));
        }
    }
    let new_role: Option<Role> =
        req.role.as_deref().map(str::parse).transpose().map_err(|_| AuthError::field("role", "unknown role"))?;
    let mut tx = s.pool.begin().await?;
    let target_role: Option<Role> = sqlx::query_scalar("select role from users where user_id = $1 for update")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let target_role = target_role.ok_or(AuthError::NotFound("user"))?;
    let touches_super = target_role == Role::SuperAdmin || new_role == Some(Role::SuperAdmin);
    if touches_super && (req.role.is_some() || req.status.is_some()) && user.role != Role::SuperAdmin {
        return Err(AuthError::Forbidden("Only a super admin manages super admins."));
    }
    sqlx::query(
        "update users set name = coalesce($2, name), profile_image = coalesce($3, profile_image),
                contact_number = coalesce($4, contact_number), dob = coalesce($5, dob),
                status = coalesce($6, status), role = coalesce($7, role)
          where user_id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(image)
    .bind(contact)
    .bind(platform::validate::date("dob", req.dob)?)
    .bind(&req.status)
    .bind(new_role)
    .execute(&mut *tx)
    .await?;
    if let Some(status) = &req.status {
        if status != "ACTIVE" {
            session::revoke_all(&mut tx, id, "account suspended").await?;
        }
        crate::access::announce_user(&mut tx, id, status).await?;
    }
    // The platform role travels in the access token: a changed role ends the sessions, so a
    // demoted admin's token cannot be used to undo the demotion.
    if new_role.is_some_and(|r| r != target_role) {
        session::revoke_all(&mut tx, id, "role changed").await?;
    }
    tx.commit().await?;
    Ok(Json(load(&s, id).await?))
}

/// Deactivates an account (self or ADMIN+) and closes its sessions; history stays.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)), responses(
    (status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_user(State(s): State<AppState>, user: AuthUser, Path(id): Path<Uuid>) -> Result<StatusCode, AuthError> {
    self_or_admin(&user, id)?;
    let mut tx = s.pool.begin().await?;
    let role: Option<Role> = sqlx::query_scalar("select role from users where user_id = $1 for update")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let role = role.ok_or(AuthError::NotFound("user"))?;
    if role == Role::SuperAdmin && user.role != Role::SuperAdmin {
        return Err(AuthError::Forbidden("Only a super admin removes a super admin."));
    }
    // A shop keeps an owner: the last active owner of a shop cannot go. The shops are locked
    // first, so two owners of one shop leaving at once cannot both pass the check.
    sqlx::query!(
        "select 1 as locked from auth.shops where shop_id in (
             select shop_id from auth.memberships where user_id = $1 and role = 'SHOP_OWNER' and status = 'ACTIVE')
         order by shop_id for update",
        id
    )
    .fetch_all(&mut *tx)
    .await?;
    let orphaned = sqlx::query_scalar!(
        r#"select count(*) as "n!" from auth.memberships m
            where m.user_id = $1 and m.role = 'SHOP_OWNER' and m.status = 'ACTIVE'
              and not exists (select 1 from auth.memberships o join auth.users u on u.user_id = o.user_id
                               where o.shop_id = m.shop_id and o.user_id <> $1 and o.role = 'SHOP_OWNER'
                                 and o.status = 'ACTIVE' and u.status = 'ACTIVE')"#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if orphaned > 0 {
        return Err(AuthError::Conflict(
            "SHOP_LAST_OWNER",
            "This account is the last owner of a shop: make someone else its owner first.",
        ));
    }
    sqlx::query("update users set status = 'INACTIVE' where user_id = $1").bind(id).execute(&mut *tx).await?;
    session::revoke_all(&mut tx, id, "account deleted").await?;
    crate::access::announce_user(&mut tx, id, "INACTIVE").await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
