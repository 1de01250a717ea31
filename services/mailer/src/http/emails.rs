//! `GET /emails?status=` and `POST /emails/{id}/resend`, for platform admins.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::AuthUser;
use platform::http::{Json, Path, Query};
use platform::pagination::{Page, PageQuery};
use platform::Problem;

use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_emails)).routes(routes!(resend))
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EmailStatus {
    Queued,
    Sent,
    Failed,
}

impl EmailStatus {
    fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Queued => "queued",
            EmailStatus::Sent => "sent",
            EmailStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(inline)]
    status: Option<EmailStatus>,
    page: Option<i64>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct EmailView {
    id: Uuid,
    template: String,
    recipient: String,
    #[schema(value_type = Option<String>)]
    shop_id: Option<Uuid>,
    subject: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    provider_message_id: Option<String>,
    source_type: String,
    source_message_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    next_attempt_at: DateTime<Utc>,
}

/// Recorded e-mails, newest first, optionally by status.
#[utoipa::path(get, path = "/emails", tag = "emails", params(ListQuery), responses(
    (status = 200, body = Page<EmailView>), (status = 401, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn list_emails(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<EmailView>>, Problem> {
    user.require_platform_admin()?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let status = q.status.map(EmailStatus::as_str);
    let rows: Vec<EmailView> = sqlx::query_as(
        "select email_id as id, template, recipient, shop_id, subject, status, attempts, last_error,
                provider_message_id, source_type, source_message_id, created_at, sent_at, next_attempt_at
           from emails
          where ($1::text is null or status = $1)
          order by created_at desc, email_id desc
          limit $2 offset $3",
    )
    .bind(status)
    .bind(page.limit)
    .bind(page.offset())
    .fetch_all(&state.pool)
    .await?;
    let total: i64 = sqlx::query_scalar("select count(*) from emails where ($1::text is null or status = $1)")
        .bind(status)
        .fetch_one(&state.pool)
        .await?;
    Ok(Json(Page::new(rows, page, total)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResendResponse {
    id: Uuid,
    status: &'static str,
}

/// Queues an e-mail again with a fresh set of attempts.
#[utoipa::path(post, path = "/emails/{id}/resend", tag = "emails", params(("id" = Uuid, Path)), responses(
    (status = 202, body = ResendResponse), (status = 401, body = Problem), (status = 403, body = Problem),
    (status = 404, body = Problem), (status = 409, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn resend(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, Json<ResendResponse>), Problem> {
    user.require_platform_admin()?;
    let row: Option<(bool,)> = sqlx::query_as(
        "update emails set status = 'queued', attempts = 0, next_attempt_at = now(), last_error = null
          where email_id = $1 and html_body is not null
         returning true",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    if row.is_some() {
        return Ok((StatusCode::ACCEPTED, Json(ResendResponse { id, status: "queued" })));
    }
    let exists: bool = sqlx::query_scalar("select exists(select 1 from emails where email_id = $1)")
        .bind(id)
        .fetch_one(&state.pool)
        .await?;
    if exists {
        Err(Problem::conflict(
            "EMAIL_NOT_RESENDABLE",
            "This e-mail held a secret and was sent; ask for a new one instead.",
        ))
    } else {
        Err(Problem::not_found("EMAIL_NOT_FOUND", "No such e-mail."))
    }
}
