//! The category routes of the three levels (categories, subcategories, sub-subcategories),
//! each a thin door onto `catalog.rs`.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use platform::auth::AuthUser;
use platform::http::{Json, Path, Query};
use platform::pagination::Page;
use platform::Problem;

use super::catalog::{
    create, delete, list, one_or_shop_list, update, CategoryInput, CategoryQuery, CategoryView, Deleted, OneOrShopList,
};
use super::AppState;
use crate::Error;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_category, list_categories))
        .routes(routes!(get_category, update_category, delete_category))
        .routes(routes!(create_subcategory, list_subcategories))
        .routes(routes!(get_subcategory, update_subcategory, delete_subcategory))
        .routes(routes!(create_subsubcategory, list_subsubcategories))
        .routes(routes!(get_subsubcategory, update_subsubcategory, delete_subsubcategory))
}

/// A top-level category.
#[utoipa::path(post, path = "/categories", tag = "categories", request_body = CategoryInput, responses((status = 201, body = CategoryView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn create_category(
    State(s): State<AppState>,
    user: AuthUser,
    Json(req): Json<CategoryInput>,
) -> Result<(StatusCode, Json<CategoryView>), Error> {
    create(&s, &user, 1, req).await
}
/// Top-level categories with child and product counts.
#[utoipa::path(get, path = "/categories", tag = "categories", params(CategoryQuery), responses((status = 200, body = Page<CategoryView>)))]
#[tracing::instrument(skip_all)]
async fn list_categories(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<CategoryQuery>,
) -> Result<Json<Page<CategoryView>>, Error> {
    list(&s, &user, 1, q).await
}
#[utoipa::path(get, path = "/categories/{id}", tag = "categories", params(("id" = Uuid, Path)), responses((status = 200, body = OneOrShopList), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_category(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<OneOrShopList>, Error> {
    Ok(Json(one_or_shop_list(&s, &user, id, 1).await?))
}
#[utoipa::path(put, path = "/categories/{id}", tag = "categories", params(("id" = Uuid, Path)), request_body = CategoryInput, responses((status = 200, body = CategoryView)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_category(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<CategoryInput>,
) -> Result<Json<CategoryView>, Error> {
    update(&s, &user, 1, id, req).await
}
#[utoipa::path(delete, path = "/categories/{id}", tag = "categories", params(("id" = Uuid, Path)), responses((status = 200, body = Deleted)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_category(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<Deleted>, Error> {
    delete(&s, &user, 1, id).await
}
/// A subcategory (body: categoryId).
#[utoipa::path(post, path = "/categories/subcategories", tag = "categories", request_body = CategoryInput, responses((status = 201, body = CategoryView)))]
#[tracing::instrument(skip_all)]
async fn create_subcategory(
    State(s): State<AppState>,
    user: AuthUser,
    Json(req): Json<CategoryInput>,
) -> Result<(StatusCode, Json<CategoryView>), Error> {
    create(&s, &user, 2, req).await
}
#[utoipa::path(get, path = "/categories/subcategories", tag = "categories", params(CategoryQuery), responses((status = 200, body = Page<CategoryView>)))]
#[tracing::instrument(skip_all)]
async fn list_subcategories(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<CategoryQuery>,
) -> Result<Json<Page<CategoryView>>, Error> {
    list(&s, &user, 2, q).await
}
#[utoipa::path(get, path = "/categories/subcategories/{id}", tag = "categories", params(("id" = Uuid, Path)), responses((status = 200, body = OneOrShopList)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_subcategory(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<OneOrShopList>, Error> {
    Ok(Json(one_or_shop_list(&s, &user, id, 2).await?))
}
#[utoipa::path(put, path = "/categories/subcategories/{id}", tag = "categories", params(("id" = Uuid, Path)), request_body = CategoryInput, responses((status = 200, body = CategoryView)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_subcategory(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<CategoryInput>,
) -> Result<Json<CategoryView>, Error> {
    update(&s, &user, 2, id, req).await
}
#[utoipa::path(delete, path = "/categories/subcategories/{id}", tag = "categories", params(("id" = Uuid, Path)), responses((status = 200, body = Deleted)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_subcategory(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<Deleted>, Error> {
    delete(&s, &user, 2, id).await
}
/// A sub-subcategory (body: subCategoryId).
#[utoipa::path(post, path = "/categories/subsubcategories", tag = "categories", request_body = CategoryInput, responses((status = 201, body = CategoryView)))]
#[tracing::instrument(skip_all)]
async fn create_subsubcategory(
    State(s): State<AppState>,
    user: AuthUser,
    Json(req): Json<CategoryInput>,
) -> Result<(StatusCode, Json<CategoryView>), Error> {
    create(&s, &user, 3, req).await
}
#[utoipa::path(get, path = "/categories/subsubcategories", tag = "categories", params(CategoryQuery), responses((status = 200, body = Page<CategoryView>)))]
#[tracing::instrument(skip_all)]
async fn list_subsubcategories(
    State(s): State<AppState>,
    user: AuthUser,
    Query(q): Query<CategoryQuery>,
) -> Result<Json<Page<CategoryView>>, Error> {
    list(&s, &user, 3, q).await
}
#[utoipa::path(get, path = "/categories/subsubcategories/{id}", tag = "categories", params(("id" = Uuid, Path)), responses((status = 200, body = OneOrShopList)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_subsubcategory(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<OneOrShopList>, Error> {
    Ok(Json(one_or_shop_list(&s, &user, id, 3).await?))
}
#[utoipa::path(put, path = "/categories/subsubcategories/{id}", tag = "categories", params(("id" = Uuid, Path)), request_body = CategoryInput, responses((status = 200, body = CategoryView)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_subsubcategory(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(req): Json<CategoryInput>,
) -> Result<Json<CategoryView>, Error> {
    update(&s, &user, 3, id, req).await
}
#[utoipa::path(delete, path = "/categories/subsubcategories/{id}", tag = "categories", params(("id" = Uuid, Path)), responses((status = 200, body = Deleted)))]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn delete_subsubcategory(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<Deleted>, Error> {
    delete(&s, &user, 3, id).await
}
