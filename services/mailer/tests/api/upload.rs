//! Uploads: byte-identical round trip, type from content, limits, tenant scoping.

use platform::ids::ShopId;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;

use crate::helpers::{spawn_app, TestApp};

/// A real PNG header (1x1 RGBA, IHDR with its CRC): uploads are decoded that far.
pub const PNG_HEAD: &[u8] =
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";

fn png(len: usize) -> Vec<u8> {
    let mut b = PNG_HEAD.to_vec();
    // Varied bytes so a mix-up of parts would show.
    b.extend((0..len.saturating_sub(PNG_HEAD.len())).map(|i| u8::try_from((i * 31 + i / 7) % 251).unwrap()));
    b
}

fn pdf(len: usize) -> Vec<u8> {
    let mut b = b"%PDF-1.7\n".to_vec();
    b.resize(len.max(9), b'x');
    b
}

fn form(files: Vec<(&str, Vec<u8>)>) -> Form {
    files
        .into_iter()
        .fold(Form::new(), |f, (name, bytes)| f.part("files", Part::bytes(bytes).file_name(name.to_owned())))
}

async fn upload(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    files: Vec<(&str, Vec<u8>)>,
) -> (StatusCode, serde_json::Value) {
    let mut req = app.http.post(format!("{}/upload?{query}", app.base_url)).multipart(form(files));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn uploaded_files_come_back_byte_identical_under_the_shop() {
    let app = spawn_app().await;
    let shop = ShopId::new();
    let token = app.staff_token(shop).await;
    // 6 MiB crosses the multipart part size; 3 KiB goes up in one PUT.
    let big = png(6 * 1024 * 1024 + 123);
    let small = pdf(3 * 1024);
    let (status, body) = upload(
        &app,
        Some(&token),
        "folder=documents&subFolder=invoices/2026",
        vec![("scan.png", big.clone()), ("bill.pdf", small.clone())],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let urls: Vec<String> = serde_json::from_value(body["urls"].clone()).unwrap();
    assert_eq!(urls.len(), 2);
    for (key, expected, ct, ext) in [(&urls[0], &big, "image/png", "png"), (&urls[1], &small, "application/pdf", "pdf")]
    {
        assert!(key.starts_with(&format!("shops/{shop}/documents/invoices/2026/")), "{key}");
        assert!(key.ends_with(&format!(".{ext}")), "{key}");
        let stored = app.object(key).await.expect("object stored");
        assert!(stored == *expected, "{key}: {} bytes stored, {} sent, contents differ", stored.len(), expected.len());
        let file = body["files"].as_array().unwrap().iter().find(|f| f["key"] == key.as_str()).unwrap();
        assert_eq!(file["contentType"], ct);
        assert_eq!(file["size"], expected.len());
    }
}

#[tokio::test]
async fn refused_uploads_store_nothing() {
    let app = spawn_app().await;
    let shop = ShopId::new();
    let token = app.staff_token(shop).await;
    let prefix = format!("shops/{shop}/");
    let other_shop = format!("folder=images&shopId={}", ShopId::new());
    // (case, query, files as (name, bytes), expected status, expected code)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, Vec<u8>)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            "oversized file",
            "folder=images",
            vec![("ok.png", png(1000)), ("huge.png", png(10 * 1024 * 1024 + 1))],
            StatusCode::PAYLOAD_TOO_LARGE,
            "FILE_TOO_LARGE",
        ),
        (
            "png name, pdf bytes",
            "folder=documents",
            vec![("photo.png", pdf(2000))],
            StatusCode::UNPROCESSABLE_ENTITY,
            "FILE_TYPE_MISMATCH",
        ),
        (
            "11 files",
            "folder=images",
            (0..11).map(|_| ("p.png", png(500))).collect(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "TOO_MANY_FILES",
        ),
        (
            "pdf in an image folder",
            "folder=products",
            vec![("a.pdf", pdf(100))],
            StatusCode::UNPROCESSABLE_ENTITY,
            "FILE_TYPE_NOT_ALLOWED",
        ),
        (
            "unknown content",
            "folder=images",
            vec![("a.png", b"<svg onload=alert(1)>".to_vec())],
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNSUPPORTED_FILE_TYPE",
        ),
        (
            "empty file",
            "folder=images",
            vec![("a.png", Vec::new())],
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNSUPPORTED_FILE_TYPE",
        ),
        ("empty form", "folder=images", vec![], StatusCode::BAD_REQUEST, "MALFORMED_MULTIPART"),
        (
            "dot-dot sub-folder",
            "folder=images&subFolder=../../etc",
            vec![("a.png", png(100))],
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_SUB_FOLDER",
        ),
        (
            "absolute sub-folder",
            "folder=images&subFolder=/abs",
            vec![("a.png", png(100))],
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_SUB_FOLDER",
        ),
        (
            "control characters",
            "folder=images&subFolder=a%0Ab",
            vec![("a.png", png(100))],
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_SUB_FOLDER",
        ),
        (
            "unknown folder",
            "folder=secrets",
            vec![("a.png", png(100))],
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        ("another shop", &other_shop, vec![("a.png", png(100))], StatusCode::FORBIDDEN, "SHOP_ACCESS_DENIED"),
    ];
    for (name, query, files, status, code) in cases {
        let (got, body) = upload(&app, Some(&token), query, files).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["code"], code, "{name}: {body}");
        assert!(app.keys(&prefix).await.is_empty(), "{name}: nothing may be stored");
    }
}

#[tokio::test]
async fn uploads_need_a_token() {
    let app = spawn_app().await;
    let (status, body) = upload(&app, None, "folder=images", vec![("a.png", png(100))]).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "AUTH_REQUIRED");
    let res = app
        .http
        .delete(format!("{}/upload", app.base_url))
        .json(&serde_json::json!({"key": "shops/x/y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res =
        app.http.post(format!("{}/upload/presign", app.base_url)).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // A customer (no shop) cannot upload shop files.
    let customer = app.key.sign(&testkit::jwt::claims(platform::auth::Role::Customer, &[], 600));
    let (status, _) = upload(&app, Some(&customer), "folder=images", vec![("a.png", png(100))]).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn only_keys_of_your_own_shops_can_be_deleted() {
    let app = spawn_app().await;
    let (shop_a, shop_b) = (ShopId::new(), ShopId::new());
    let (ta, tb) = (app.staff_token(shop_a).await, app.staff_token(shop_b).await);
    let (_, a) = upload(&app, Some(&ta), "folder=images", vec![("a.png", png(100))]).await;
    let (_, b) = upload(&app, Some(&tb), "folder=images", vec![("b.png", png(100))]).await;
    let key_a = a["urls"][0].as_str().unwrap().to_owned();
    let key_b = b["urls"][0].as_str().unwrap().to_owned();

    // Shop A asks to delete its own key and shop B's: refused whole, both still there.
    let res = app
        .http
        .delete(format!("{}/upload", app.base_url))
        .bearer_auth(&ta)
        .json(&serde_json::json!({"keys": [key_a, key_b]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "KEY_NOT_YOURS");
    assert!(app.object(&key_a).await.is_some() && app.object(&key_b).await.is_some(), "nothing deleted");

    for bad in [
        serde_json::json!({"key": "../../etc/passwd"}),
        serde_json::json!({"key": format!("shops/{shop_a}/../{shop_b}/x")}),
    ] {
        let res = app.http.delete(format!("{}/upload", app.base_url)).bearer_auth(&ta).json(&bad).send().await.unwrap();
        assert_eq!(res.status(), 403, "{bad}");
    }
    let res = app
        .http
        .delete(format!("{}/upload", app.base_url))
        .bearer_auth(&ta)
        .json(&serde_json::json!({"key": key_a}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(app.object(&key_a).await.is_none(), "own key deleted");
    assert!(app.object(&key_b).await.is_some(), "the other shop's object still exists");

    let res = app
        .http
        .delete(format!("{}/upload", app.base_url))
        .bearer_auth(&ta)
        .json(&serde_json::json!({"path": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "unknown fields are refused");
}

#[tokio::test]
async fn presigned_put_uploads_directly() {
    let app = spawn_app().await;
    let shop = ShopId::new();
    let token = app.staff_token(shop).await;
    let bytes = png(2048);
    let res = app
        .http
        .post(format!("{}/upload/presign", app.base_url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"folder": "products", "contentType": "image/png", "size": bytes.len()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let key = body["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("shops/{shop}/products/")), "{key}");
    let put = app
        .http
        .put(body["url"].as_str().unwrap())
        .header("content-type", "image/png")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    assert_eq!(app.object(key).await.unwrap(), bytes);

    for (bad, code) in [
        (
            serde_json::json!({"folder": "products", "contentType": "application/pdf", "size": 10}),
            "FILE_TYPE_NOT_ALLOWED",
        ),
        (serde_json::json!({"folder": "images", "contentType": "text/html", "size": 10}), "UNSUPPORTED_FILE_TYPE"),
        (
            serde_json::json!({"folder": "images", "contentType": "image/png", "size": 10 * 1024 * 1024 + 1}),
            "INVALID_SIZE",
        ),
        (serde_json::json!({"folder": "images", "contentType": "image/png", "size": 0}), "INVALID_SIZE"),
    ] {
        let res = app
            .http
            .post(format!("{}/upload/presign", app.base_url))
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{bad}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["code"], code, "{bad}");
    }
}

/// An image is decoded far enough to be sure it is one, and the body must be multipart.
#[tokio::test]
async fn a_png_signature_in_front_of_html_is_refused_and_a_non_multipart_body_is_415() {
    let app = spawn_app().await;
    let shop = ShopId::new();
    let token = app.staff_token(shop).await;
    let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
    fake.extend_from_slice(b"<html><script>document.location='https://evil.example'</script></html>");
    let (status, body) = upload(&app, Some(&token), "folder=images", vec![("cat.png", fake)]).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("FILE_CORRUPT")), "{body}");
    let listed = app.keys(&format!("shops/{shop}/")).await;
    assert!(listed.is_empty(), "nothing stored: {listed:?}");
    let res = app
        .http
        .post(format!("{}/upload?folder=images", app.base_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let status = res.status();
    let ctype = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!((status, ctype.as_deref()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("application/problem+json")));
}

#[tokio::test]
async fn the_first_clients_upload_without_a_folder_and_delete_with_a_key_array() {
    let app = spawn_app().await;
    let shop = ShopId::new();
    let token = app.staff_token(shop).await;
    // As the shop dashboard sends it: only `subFolder`, files under `files`.
    let (status, body) =
        upload(&app, Some(&token), "subFolder=products", vec![("a.png", png(100)), ("b.png", png(120))]).await;
    assert_eq!(status, 201, "{body}");
    let keys: Vec<String> = body["urls"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect();
    assert_eq!(keys.len(), 2);
    for key in &keys {
        assert!(key.starts_with(&format!("shops/{shop}/images/products/")), "images is the default folder: {key}");
        assert!(app.object(key).await.is_some());
    }
    // `key` as an array.
    let res = app
        .http
        .delete(format!("{}/upload", app.base_url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"key": keys}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for key in &keys {
        assert!(app.object(key).await.is_none(), "{key} deleted");
    }
    // Anything but a string or an array of strings is still refused.
    let res = app
        .http
        .delete(format!("{}/upload", app.base_url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"key": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}
