//! Employees: the HR record of people working in a shop. Members of the shop read them;
//! its owner writes them; the salary is shown to the owner only.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Path, Query};
use platform::ids::ShopId;
use platform::pagination::{Page, PageQuery};
use platform::{Currency, Money, Problem};

use super::AppState;
use crate::domain;
use crate::error::AuthError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_employee, list_employees))
        .routes(routes!(get_employee, update_employee, delete_employee))
        .routes(routes!(count_employees))
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    employee_id: Uuid,
    shop_id: Uuid,
    user_id: Option<Uuid>,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    position: Option<String>,
    department: Option<String>,
    salary_minor: Option<i64>,
    currency: String,
    status: String,
    hired_on: Option<NaiveDate>,
    created_at: DateTime<Utc>,
}

const COLUMNS: &str = "e.employee_id, e.shop_id, e.user_id, e.name, e.email, e.phone, e.position, e.department,
    e.salary_minor, s.currency, e.status, e.hired_on, e.created_at";

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmployeeView {
    id: Uuid,
    shop_id: Uuid,
    user_id: Option<Uuid>,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    position: Option<String>,
    department: Option<String>,
    /// Only for the shop's owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    salary: Option<String>,
    status: String,
    hired_on: Option<NaiveDate>,
    created_at: DateTime<Utc>,
}

fn view(r: Row, owner: bool) -> EmployeeView {
    let salary = if owner {
        r.salary_minor
            .zip(r.currency.parse::<Currency>().ok())
            .map(|(m, c)| Money::from_minor(m, c).to_decimal_string())
    } else {
        None
    };
    EmployeeView {
        id: r.employee_id,
        shop_id: r.shop_id,
        user_id: r.user_id,
        name: r.name,
        email: r.email,
        phone: r.phone,
        position: r.position,
        department: r.department,
        salary,
        status: r.status,
        hired_on: r.hired_on,
        created_at: r.created_at,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmployeeInput {
    shop_id: Option<Uuid>,
    user_id: Option<Uuid>,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    position: Option<String>,
    department: Option<String>,
    /// Decimal string in the shop's currency ("85000.00").
    salary: Option<String>,
    /// ACTIVE, ON_LEAVE or TERMINATED
    status: Option<String>,
    hired_on: Option<NaiveDate>,
}

fn status(raw: Option<&str>) -> Result<Option<&'static str>, AuthError> {
    match raw {
        None => Ok(None),
        Some("ACTIVE") => Ok(Some("ACTIVE")),
        Some("ON_LEAVE") => Ok(Some("ON_LEAVE")),
        Some("TERMINATED") => Ok(Some("TERMINATED")),
        Some(_) => Err(AuthError::field("status", "ACTIVE, ON_LEAVE or TERMINATED")),
    }
}

async fn shop_currency(s: &AppState, shop: Uuid) -> Result<Currency, AuthError> {
    let code: Option<String> =
        sqlx::query_scalar("select currency from shops where shop_id = $1").bind(shop).fetch_optional(&s.pool).await?;
    code.ok_or(AuthError::NotFound("shop"))?
        .parse()
        .map_err(|_| AuthError::Internal(anyhow::anyhow!("shop currency unknown")))
}

fn salary_minor(raw: Option<&str>, currency: Currency) -> Result<Option<i64>, AuthError> {
    raw.map(|s| {
        Money::parse(s, currency)
            .ok()
            .filter(|m| !m.is_negative())
            .map(|m| m.minor())
            .ok_or_else(|| AuthError::field("salary", "a non-negative amount in the shop's currency"))
    })
    .transpose()
}

/// The caller's standing in the employee's shop: Ok(is_owner) for members.
fn standing(user: &AuthUser, shop: Uuid, min: ShopRole) -> Result<bool, AuthError> {
    let role = user.require_shop_role(ShopId(shop), min)?;
    Ok(role == ShopRole::ShopOwner)
}

/// Adds an employee record (the shop's owner).
#[utoipa::path(post, path = "/employees", tag = "employees", request_body = EmployeeInput, responses(
    (status = 201, body = EmployeeView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn create_employee(
    State(s): State<AppState>,
    user: AuthUser,
    Json(req): Json<EmployeeInput>,
) -> Result<(StatusCode, Json<EmployeeView>), AuthError> {
    let shop = req.shop_id.ok_or_else(|| AuthError::field("shopId", "required"))?;
    standing(&user, shop, ShopRole::ShopOwner)?;
    let name = domain::name("name", req.name.as_deref().unwrap_or(""))?;
    let currency = shop_currency(&s, shop).await?;
    let salary = salary_minor(req.salary.as_deref(), currency)?;
    let st = status(req.status.as_deref())?.unwrap_or("ACTIVE");
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into employees (employee_id, shop_id, user_id, name, email, phone, position, department, salary_minor, status, hired_on)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(shop)
    .bind(req.user_id)
    .bind(&name)
    .bind(domain::optional_text("email", req.email.as_deref(), 254)?)
    .bind(domain::optional_text("phone", req.phone.as_deref(), 40)?)
    .bind(domain::optional_text("position", req.position.as_deref(), 120)?)
    .bind(domain::optional_text("department", req.department.as_deref(), 120)?)
    .bind(salary)
    .bind(st)
    .bind(platform::validate::date("hiredOn", req.hired_on)?)
    .execute(&s.pool)
    .await
    .map_err(member_link)?;
    Ok((StatusCode::CREATED, Json(view(load(&s, id).await?, true))))
}

/// The link to a user is a foreign key on the shop's memberships: an unknown user and
/// another shop's user are the same 422.
fn member_link(e: sqlx::Error) -> AuthError {
    match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("employees_member_fkey") => {
            AuthError::field("userId", "not a member of this shop")
        }
        _ => e.into(),
    }
}

async fn load(s: &AppState, id: Uuid) -> Result<Row, AuthError> {
    sqlx::query_as(&format!("select {COLUMNS} from employees e join shops s using (shop_id) where e.employee_id = $1"))
        .bind(id)
        .fetch_optional(&s.pool)
        .await?
        .ok_or(AuthError::NotFound("employee"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EmployeesQuery {
    shop_id: Uuid,
    status: Option<String>,
    department: Option<String>,
    search: Option<String>,
    page: Option<i64>,
    limit: Option<i64>,
}

/// A shop's employees (its members), filtered.
#[utoipa::path(get, path = "/employees", tag = "employees", params(EmployeesQuery), responses(
    (status = 200, body = Page<EmployeeView>), (status = 401, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn list_employees(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<EmployeesQuery>,
) -> Result<Json<Page<EmployeeView>>, AuthError> {
    let owner = standing(&user, q.shop_id, ShopRole::ShopStaff)?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let search = platform::pagination::contains_pattern(q.search.as_deref());
    let filter = "e.shop_id = $1 and ($2::text is null or e.status = $2) and ($3::text is null or e.department = $3)
                  and ($4::text is null or e.name ilike $4 or e.email ilike $4 or e.position ilike $4)";
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select {COLUMNS} from employees e join shops s using (shop_id) where {filter}
          order by e.name, e.employee_id limit $5 offset $6"
    ))
    .bind(q.shop_id)
    .bind(&q.status)
    .bind(&q.department)
    .bind(&search)
    .bind(page.limit)
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("select count(*) from employees e where {filter}"))
        .bind(q.shop_id)
        .bind(&q.status)
        .bind(&q.department)
        .bind(&search)
        .fetch_one(&s.pool)
        .await?;
    Ok(Json(Page::new(rows.into_iter().map(|r| view(r, owner)).collect(), page, total)))
}

/// One employee (members of its shop).
#[utoipa::path(get, path = "/employees/{id}", tag = "employees", params(("id" = Uuid, Path)), responses(
    (status = 200, body = EmployeeView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_employee(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<EmployeeView>, AuthError> {
    let row = load(&s, id).await?;
    let owner = standing(&user, row.shop_id, ShopRole::ShopStaff)?;
    Ok(Json(view(row, owner)))
}

/// Edits an employee (the shop's owner).
#[utoipa::path(put, path = "/employees/{id}", tag = "employees", params(("id" = Uuid, Path)), request_body = EmployeeInput, responses(
    (status = 200, body = EmployeeView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_employee(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<EmployeeInput>,
) -> Result<Json<EmployeeView>, AuthError> {
    let row = load(&s, id).await?;
    standing(&user, row.shop_id, ShopRole::ShopOwner)?;
    if req.shop_id.is_some_and(|sh| sh != row.shop_id) {
        return Err(AuthError::field("shopId", "an employee cannot move between shops"));
    }
    let currency =
        row.currency.parse::<Currency>().map_err(|_| AuthError::Internal(anyhow::anyhow!("shop currency unknown")))?;
    let name = req.name.as_deref().map(|n| domain::name("name", n)).transpose()?;
    sqlx::query(
        "update employees set name = coalesce($2, name), email = coalesce($3, email), phone = coalesce($4, phone),
                position = coalesce($5, position), department = coalesce($6, department),
                salary_minor = coalesce($7, salary_minor), status = coalesce($8, status), hired_on = coalesce($9, hired_on),
                user_id = coalesce($10, user_id)
          where employee_id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(domain::optional_text("email", req.email.as_deref(), 254)?)
    .bind(domain::optional_text("phone", req.phone.as_deref(), 40)?)
    .bind(domain::optional_text("position", req.position.as_deref(), 120)?)
    .bind(domain::optional_text("department", req.department.as_deref(), 120)?)
    .bind(salary_minor(req.salary.as_deref(), currency)?)
    .bind(status(req.status.as_deref())?)
    .bind(platform::validate::date("hiredOn", req.hired_on)?)
    .bind(req.user_id)
    .execute(&s.pool)
    .await
    .map_err(member_link)?;
    Ok(Json(view(load(&s, id).await?, true)))
}

/// Removes an employee record (the shop's owner).
#[utoipa::path(delete, path = "/employees/{id}", tag = "employees", params(("id" = Uuid, Path)), responses(
    (status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_employee(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, AuthError> {
    let row = load(&s, id).await?;
    standing(&user, row.shop_id, ShopRole::ShopOwner)?;
    sqlx::query("delete from employees where employee_id = $1").bind(id).execute(&s.pool).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmployeeCount {
    total: i64,
    active: i64,
}

/// How many employees a shop has.
#[utoipa::path(get, path = "/employees/shop/{shop_id}/count", tag = "employees", params(("shop_id" = Uuid, Path)), responses(
    (status = 200, body = EmployeeCount), (status = 401, body = Problem), (status = 403, body = Problem),
))]
#[tracing::instrument(skip_all, fields(shop_id = %shop_id))]
async fn count_employees(
    State(s): State<AppState>,
    user: AuthUser,
    Path(shop_id): Path<Uuid>,
) -> Result<Json<EmployeeCount>, AuthError> {
    standing(&user, shop_id, ShopRole::ShopStaff)?;
    let (total, active): (i64, i64) =
        sqlx::query_as("select count(*), count(*) filter (where status = 'ACTIVE') from employees where shop_id = $1")
            .bind(shop_id)
            .fetch_one(&s.pool)
            .await?;
    Ok(Json(EmployeeCount { total, active }))
}
