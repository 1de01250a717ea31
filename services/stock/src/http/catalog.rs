//! Three-level categories, one implementation for every level (create, list, read, edit,
//! delete): a category with children or products is hidden (status HIDE) instead of
//! deleted. The routes of each level are in `categories.rs`.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use platform::auth::{AuthUser, ShopRole};
use platform::http::Json;
use platform::ids::ShopId;
use platform::pagination::{Page, PageQuery};
use platform::validate::text;
use platform::Problem;

use super::{acting_shop, unprocessable, visibility, AppState};
use crate::Error;

pub(super) fn not_found(what: &str) -> Problem {
    Problem::not_found(&format!("{}_NOT_FOUND", what.to_ascii_uppercase()), format!("No such {}.", what.to_lowercase()))
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct CategoryView {
    id: Uuid,
    shop_id: Uuid,
    level: i16,
    parent_id: Option<Uuid>,
    name: String,
    description: Option<String>,
    image_url: Option<String>,
    status: String,
    children_count: i64,
    product_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip)]
    parent_name: Option<String>,
    #[serde(skip)]
    grandparent_id: Option<Uuid>,
    #[serde(skip)]
    grandparent_name: Option<String>,
    // The first system's clients read these (Prisma's shapes), beside `parentId` and the counts.
    /// A subcategory's parent.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    category_id: Option<Uuid>,
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<ParentRef>,
    /// A sub-subcategory's parent.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_category_id: Option<Uuid>,
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_category: Option<ParentRef>,
    /// `{subCategories | subSubCategories, products}`.
    #[sqlx(skip)]
    #[serde(rename = "_count")]
    #[schema(value_type = Object)]
    count: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParentRef {
    id: Uuid,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    category: Option<Box<ParentRef>>,
}

impl CategoryView {
    /// Fills the first system's nested parents and `_count` from the row.
    fn nested(mut self) -> Self {
        let parent = self.parent_id.map(|id| ParentRef {
            id,
            name: self.parent_name.clone().unwrap_or_default(),
            category: None,
        });
        let (children, products) = (self.children_count, self.product_count);
        match self.level {
            1 => self.count = serde_json::json!({"subCategories": children, "products": products}),
            2 => {
                self.category_id = self.parent_id;
                self.category = parent;
                self.count = serde_json::json!({"subSubCategories": children, "products": products});
            }
            _ => {
                self.sub_category_id = self.parent_id;
                self.sub_category = parent.map(|mut p| {
                    p.category = self.grandparent_id.map(|id| {
                        Box::new(ParentRef {
                            id,
                            name: self.grandparent_name.clone().unwrap_or_default(),
                            category: None,
                        })
                    });
                    p
                });
                self.count = serde_json::json!({"products": products});
            }
        }
        self
    }
}

/// One category, or (for the first system's clients, which put a shop id where the category
/// id goes) the shop's categories of that level.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrShopList {
    One(Box<CategoryView>),
    List(Page<CategoryView>),
}

const CATEGORY_SELECT: &str = "select c.category_id as id, c.shop_id, c.level, c.parent_id, c.name, c.description, c.image_url, c.status,
        (select count(*) from categories k where k.parent_id = c.category_id) as children_count,
        (select count(*) from products p where p.status <> 'DELETED' and
            (p.category_id = c.category_id or p.sub_category_id = c.category_id or p.sub_sub_category_id = c.category_id)) as product_count,
        c.created_at, c.updated_at,
        p1.name as parent_name, p2.category_id as grandparent_id, p2.name as grandparent_name
   from categories c
   left join categories p1 on p1.category_id = c.parent_id
   left join categories p2 on p2.category_id = p1.parent_id";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CategoryInput {
    /// The record's own id, as the first Cashvio's clients repeat it in PUT bodies: must be the
    /// path's; refused on create.
    id: Option<Uuid>,
    shop_id: Option<Uuid>,
    /// The parent: a category for a subcategory, a subcategory for a sub-subcategory.
    category_id: Option<Uuid>,
    sub_category_id: Option<Uuid>,
    name: Option<String>,
    description: Option<String>,
    image_url: Option<String>,
    /// ACTIVE, or HIDE (INACTIVE, the first system's name, is accepted for it)
    status: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CategoryQuery {
    shop_id: Option<Uuid>,
    /// The parent to list the children of.
    category_id: Option<Uuid>,
    sub_category_id: Option<Uuid>,
    search: Option<String>,
    page: Option<i64>,
    limit: Option<i64>,
}

pub(super) async fn load_category(s: &AppState, user: &AuthUser, id: Uuid, level: i16) -> Result<CategoryView, Error> {
    let row: Option<CategoryView> =
        sqlx::query_as(&format!("{CATEGORY_SELECT} where c.category_id = $1 and c.level = $2"))
            .bind(id)
            .bind(level)
            .fetch_optional(&s.pool)
            .await?;
    let row = row.ok_or_else(|| not_found("category"))?;
    user.require_shop_role(ShopId(row.shop_id), ShopRole::ShopStaff).map_err(|_| not_found("category"))?;
    Ok(row.nested())
}

/// `GET …/{id}`: the category, or, when the id is one of the caller's shops, its list.
pub(super) async fn one_or_shop_list(
    s: &AppState,
    user: &AuthUser,
    id: Uuid,
    level: i16,
) -> Result<OneOrShopList, Error> {
    match load_category(s, user, id, level).await {
        Ok(one) => Ok(OneOrShopList::One(Box::new(one))),
        Err(_) if user.require_shop_role(ShopId(id), ShopRole::ShopStaff).is_ok() => {
            let q = CategoryQuery {
                shop_id: Some(id),
                category_id: None,
                sub_category_id: None,
                search: None,
                page: None,
                limit: Some(100),
            };
            Ok(OneOrShopList::List(list(s, user, level, q).await?.0))
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn create(
    s: &AppState,
    user: &AuthUser,
    level: i16,
    req: CategoryInput,
) -> Result<(StatusCode, Json<CategoryView>), Error> {
    platform::validate::body_id(req.id, None)?;
    let name = text("name", req.name.as_deref(), 120)?.ok_or_else(|| unprocessable("name", "required"))?;
    let (shop, parent) = match level {
        1 => (acting_shop(user, req.shop_id)?, None),
        _ => {
            let (field, parent_id) =
                if level == 2 { ("categoryId", req.category_id) } else { ("subCategoryId", req.sub_category_id) };
            let parent_id = parent_id.ok_or_else(|| unprocessable(field, "required"))?;
            let parent = load_category(s, user, parent_id, level - 1)
                .await
                .map_err(|_| unprocessable(field, "no such parent"))?;
            (parent.shop_id, Some(parent_id))
        }
    };
    let status = visibility(req.status.as_deref())?.unwrap_or("ACTIVE");
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into categories (category_id, shop_id, level, parent_id, name, description, image_url, status)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(shop)
    .bind(level)
    .bind(parent)
    .bind(&name)
    .bind(text("description", req.description.as_deref(), 1_000)?)
    .bind(image(shop, req.image_url.as_deref())?)
    .bind(status)
    .execute(&s.pool)
    .await?;
    Ok((StatusCode::CREATED, Json(load_category(s, user, id, level).await?)))
}

pub(super) async fn list(
    s: &AppState,
    user: &AuthUser,
    level: i16,
    q: CategoryQuery,
) -> Result<Json<Page<CategoryView>>, Error> {
    let shop = acting_shop(user, q.shop_id)?;
    let page = PageQuery { page: q.page, limit: q.limit }.parse()?;
    let parent = if level == 2 { q.category_id } else { q.sub_category_id };
    let search = platform::pagination::contains_pattern(q.search.as_deref()).map(|p| p.to_lowercase());
    let filter = "c.shop_id = $1 and c.level = $2 and ($3::uuid is null or c.parent_id = $3) and ($4::text is null or lower(c.name) like $4)";
    let rows: Vec<CategoryView> = sqlx::query_as(&format!(
        "{CATEGORY_SELECT} where {filter} order by lower(c.name), c.category_id limit $5 offset $6"
    ))
    .bind(shop)
    .bind(level)
    .bind(parent)
    .bind(&search)
    .bind(page.limit)
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let rows = rows.into_iter().map(CategoryView::nested).collect();
    let total: i64 = sqlx::query_scalar(&format!("select count(*) from categories c where {filter}"))
        .bind(shop)
        .bind(level)
        .bind(parent)
        .bind(&search)
        .fetch_one(&s.pool)
        .await?;
    Ok(Json(Page::new(rows, page, total)))
}

/// A category's image: one of the shop's uploads (or none).
fn image(shop: Uuid, raw: Option<&str>) -> Result<Option<String>, Problem> {
    text("imageUrl", raw, 1_000)?.map(|v| platform::validate::shop_object("imageUrl", shop, &v)).transpose()
}

pub(super) async fn update(
    s: &AppState,
    user: &AuthUser,
    level: i16,
    id: Uuid,
    req: CategoryInput,
) -> Result<Json<CategoryView>, Error> {
    platform::validate::body_id(req.id, Some(id))?;
    let current = load_category(s, user, id, level).await?;
    platform::validate::unchanged("shopId", req.shop_id, Some(current.shop_id))?;
    match level {
        2 => platform::validate::unchanged("categoryId", req.category_id, current.parent_id)?,
        3 => platform::validate::unchanged("subCategoryId", req.sub_category_id, current.parent_id)?,
        _ => platform::validate::unchanged("categoryId", req.category_id, None)?,
    }
    let status = visibility(req.status.as_deref())?;
    sqlx::query(
        "update categories set name = coalesce($2, name), description = coalesce($3, description),
                image_url = coalesce($4, image_url), status = coalesce($5, status) where category_id = $1",
    )
    .bind(id)
    .bind(text("name", req.name.as_deref(), 120)?)
    .bind(text("description", req.description.as_deref(), 1_000)?)
    .bind(image(current.shop_id, req.image_url.as_deref())?)
    .bind(status)
    .execute(&s.pool)
    .await?;
    Ok(Json(load_category(s, user, id, level).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// DELETED, or HIDDEN when children or products still use it.
    outcome: &'static str,
}

pub(super) async fn delete(s: &AppState, user: &AuthUser, level: i16, id: Uuid) -> Result<Json<Deleted>, Error> {
    let c = load_category(s, user, id, level).await?;
    if c.children_count > 0 || c.product_count > 0 {
        sqlx::query("update categories set status = 'HIDE' where category_id = $1").bind(id).execute(&s.pool).await?;
        return Ok(Json(Deleted { outcome: "HIDDEN" }));
    }
    let gone = sqlx::query("delete from categories where category_id = $1").bind(id).execute(&s.pool).await;
    match gone {
        Ok(_) => Ok(Json(Deleted { outcome: "DELETED" })),
        // A product or child arrived in between: hide instead.
        Err(sqlx::Error::Database(d)) if d.constraint().is_some_and(|c| c.ends_with("_fkey")) => {
            sqlx::query("update categories set status = 'HIDE' where category_id = $1")
                .bind(id)
                .execute(&s.pool)
                .await?;
            Ok(Json(Deleted { outcome: "HIDDEN" }))
        }
        Err(e) => Err(e.into()),
    }
}
