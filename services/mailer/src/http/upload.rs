//! `POST /upload`, `DELETE /upload`, `POST /upload/presign`: shop files in S3, typed by
//! their bytes, keyed under the caller's shop, streamed (never a whole batch in memory).

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use platform::auth::{AuthUser, ShopRole};
use platform::http::{Json, Query};
use platform::ids::ShopId;
use platform::Problem;

use super::AppState;
use crate::domain::upload::{object_key, shop_of_key, FileKind, Folder, SubFolder};

pub const MAX_FILES: usize = 10;
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload, delete_uploads))
        .routes(routes!(presign))
        // The batch limit is per file and per count; the request as a whole may carry all of
        // it (nginx caps what comes from outside).
        .layer(DefaultBodyLimit::max(usize::try_from(MAX_FILE_BYTES).unwrap_or(usize::MAX) * MAX_FILES + (1 << 20)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// images (the default), documents, avatars, products, categories or receipts
    #[param(value_type = Option<String>)]
    #[serde(default)]
    folder: Folder,
    sub_folder: Option<String>,
    /// Needed when the caller belongs to several shops.
    #[param(value_type = Option<String>)]
    shop_id: Option<ShopId>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredFile {
    key: String,
    size: u64,
    content_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResponse {
    /// The stored keys, as the first system's clients expect.
    urls: Vec<String>,
    files: Vec<StoredFile>,
}

fn multipart_problem(status: StatusCode, text: String) -> Problem {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(status, "PAYLOAD_TOO_LARGE", "The upload is larger than allowed.")
    } else {
        Problem::bad_request("MALFORMED_MULTIPART", text)
    }
}

fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "FILE_TOO_LARGE",
        format!("Each file may be at most {MAX_FILE_BYTES} bytes."),
    )
}

fn unprocessable(code: &str, field: &str, message: &str) -> Problem {
    let mut p = Problem::field(field, message);
    p.code = code.to_owned();
    p.detail = message.to_owned();
    p
}

/// Upload up to 10 files (10 MB each) in the multipart field `files`.
#[utoipa::path(post, path = "/upload", tag = "uploads", params(UploadQuery),
    request_body(content_type = "multipart/form-data", description = "field `files`, repeated"),
    responses(
        (status = 201, body = UploadResponse),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<UploadQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadResponse>), Problem> {
    let shop = user.acting_shop(q.shop_id)?;
    let sub = SubFolder::parse(q.sub_folder.as_deref().unwrap_or(""))
        .map_err(|m| unprocessable("INVALID_SUB_FOLDER", "subFolder", m))?;
    let mut multipart = multipart.map_err(|r| match r {
        // Not multipart at all (or no boundary): the wrong media type.
        MultipartRejection::InvalidBoundary(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Send the files as multipart/form-data.",
        ),
        other => multipart_problem(other.status(), other.body_text()),
    })?;
    let mut stored: Vec<StoredFile> = Vec::new();
    let outcome = receive(&state, &mut multipart, shop, q.folder, sub.as_ref(), &mut stored).await;
    if let Err(problem) = outcome {
        // All or nothing: a refused batch leaves nothing behind.
        let keys: Vec<String> = stored.iter().map(|f| f.key.clone()).collect();
        if let Err(e) = state.storage.delete_many(&keys).await {
            tracing::error!(error = %format!("{e:#}"), ?keys, "could not remove the files of a refused upload");
        }
        return Err(problem);
    }
    if stored.is_empty() {
        return Err(unprocessable("NO_FILES", "files", "send at least one file in the field `files`"));
    }
    // 201: the files are created (the first system's clients expect 201 from every POST that creates).
    Ok((
        StatusCode::CREATED,
        Json(UploadResponse { urls: stored.iter().map(|f| f.key.clone()).collect(), files: stored }),
    ))
}

async fn receive(
    state: &AppState,
    multipart: &mut Multipart,
    shop: ShopId,
    folder: Folder,
    sub: Option<&SubFolder>,
    stored: &mut Vec<StoredFile>,
) -> Result<(), Problem> {
    while let Some(mut field) =
        multipart.next_field().await.map_err(|e| multipart_problem(e.status(), e.body_text()))?
    {
        if field.name() != Some("files") {
            return Err(unprocessable(
                "UNEXPECTED_FIELD",
                field.name().unwrap_or("?"),
                "only `files` fields are accepted",
            ));
        }
        if stored.len() == MAX_FILES {
            return Err(unprocessable("TOO_MANY_FILES", "files", "at most 10 files per upload"));
        }
        let name = field.file_name().unwrap_or_default().to_owned();
        let mut head: Vec<u8> = Vec::new();
        while head.len() < FileKind::VERIFY_LEN {
            match field.chunk().await.map_err(|e| multipart_problem(e.status(), e.body_text()))? {
                Some(c) => head.extend_from_slice(&c),
                None => break,
            }
        }
        let kind = FileKind::sniff(&head).ok_or_else(|| {
            unprocessable("UNSUPPORTED_FILE_TYPE", "files", "only PNG, JPEG, WebP, GIF and PDF content is accepted")
        })?;
        if !kind.verify(&head) {
            return Err(unprocessable(
                "FILE_CORRUPT",
                "files",
                &format!("{name:?} starts like {} but is not one", kind.extension()),
            ));
        }
        if !folder.allows(kind) {
            return Err(unprocessable(
                "FILE_TYPE_NOT_ALLOWED",
                "files",
                &format!("{} is not allowed in {}", kind.content_type(), folder.as_str()),
            ));
        }
        if !kind.matches_name(&name) {
            return Err(unprocessable(
                "FILE_TYPE_MISMATCH",
                "files",
                &format!("{name:?} does not hold {} content", kind.extension()),
            ));
        }
        if head.len() as u64 > MAX_FILE_BYTES {
            return Err(too_large());
        }
        let mut up = state.storage.begin(object_key(shop.0, folder, sub, kind), kind.content_type().to_owned());
        let streamed: Result<(), Problem> = async {
            up.push(&head).await.map_err(Problem::from)?;
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_problem(e.status(), e.body_text()))? {
                if up.size + chunk.len() as u64 > MAX_FILE_BYTES {
                    return Err(too_large());
                }
                up.push(&chunk).await.map_err(Problem::from)?;
            }
            Ok(())
        }
        .await;
        if let Err(p) = streamed {
            up.abort().await;
            return Err(p);
        }
        let content_type = up.content_type.clone();
        let (key, size) = up.finish().await.map_err(Problem::from)?;
        stored.push(StoredFile { key, size, content_type });
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    /// One key, or several (the first system's clients send an array here).
    #[schema(value_type = Option<Vec<String>>)]
    key: Option<OneOrMany>,
    keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteResponse {
    deleted: Vec<String>,
}

/// Delete stored files: only keys under the caller's shops; otherwise nothing is deleted.
#[utoipa::path(delete, path = "/upload", tag = "uploads", request_body = DeleteRequest, responses(
    (status = 200, body = DeleteResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn delete_uploads(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<DeleteRequest>,
) -> Result<Json<DeleteResponse>, Problem> {
    let mut keys: Vec<String> = req.keys.unwrap_or_default();
    match req.key {
        Some(OneOrMany::One(k)) => keys.push(k),
        Some(OneOrMany::Many(ks)) => keys.extend(ks),
        None => {}
    }
    if keys.is_empty() || keys.len() > 1_000 {
        return Err(unprocessable("INVALID_KEYS", "keys", "give `key` or 1 to 1000 `keys`"));
    }
    for key in &keys {
        let allowed =
            shop_of_key(key).map(ShopId).is_some_and(|shop| user.require_shop_role(shop, ShopRole::ShopStaff).is_ok());
        if !allowed {
            return Err(Problem::forbidden(
                "KEY_NOT_YOURS",
                format!("{key} is not under one of your shops; nothing was deleted."),
            ));
        }
    }
    state.storage.delete_many(&keys).await?;
    Ok(Json(DeleteResponse { deleted: keys }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresignRequest {
    #[schema(value_type = String)]
    folder: Folder,
    content_type: String,
    size: i64,
    sub_folder: Option<String>,
    #[schema(value_type = Option<String>)]
    shop_id: Option<ShopId>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresignResponse {
    url: String,
    key: String,
    method: &'static str,
    /// Headers the client must send with the PUT.
    headers: serde_json::Value,
    expires_at: chrono::DateTime<chrono::Utc>,
}

/// A presigned PUT URL for a direct upload of one file (bounded type and size, short expiry).
#[utoipa::path(post, path = "/upload/presign", tag = "uploads", request_body = PresignRequest, responses(
    (status = 200, body = PresignResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn presign(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<PresignRequest>,
) -> Result<Json<PresignResponse>, Problem> {
    let shop = user.acting_shop(req.shop_id)?;
    let sub = SubFolder::parse(req.sub_folder.as_deref().unwrap_or(""))
        .map_err(|m| unprocessable("INVALID_SUB_FOLDER", "subFolder", m))?;
    let kind = FileKind::from_content_type(&req.content_type).ok_or_else(|| {
        unprocessable(
            "UNSUPPORTED_FILE_TYPE",
            "contentType",
            "image/png, image/jpeg, image/webp, image/gif or application/pdf",
        )
    })?;
    if !req.folder.allows(kind) {
        return Err(unprocessable("FILE_TYPE_NOT_ALLOWED", "contentType", "not allowed in this folder"));
    }
    if req.size < 1 || req.size > i64::try_from(MAX_FILE_BYTES).unwrap_or(i64::MAX) {
        return Err(unprocessable("INVALID_SIZE", "size", "between 1 byte and 10 MB"));
    }
    let key = object_key(shop.0, req.folder, sub.as_ref(), kind);
    let (url, expiry) = state.storage.presign_put(&key, kind.content_type(), req.size).await?;
    let expires_at = chrono::Utc::now() + chrono::Duration::from_std(expiry).unwrap_or_default();
    Ok(Json(PresignResponse {
        url,
        key,
        method: "PUT",
        headers: serde_json::json!({ "Content-Type": kind.content_type(), "Content-Length": req.size.to_string() }),
        expires_at,
    }))
}
