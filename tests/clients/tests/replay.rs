//! The first Cashvio's front ends against the running stack, through nginx: every auth, stock
//! and mailer call of CLIENTS.md with the bodies, headers and query strings those clients send,
//! in the order a new shop meets them, asserting the status and every field the client reads
//! with its JSON type. Also: what they must not be able to do (unknown fields, money with too
//! many digits) stays refused, with the JSON path of the field and a `message`. The order
//! section's cashflow page calls (upcoming payments, shop balance, the comprehensive report,
//! customer dues) are replayed too.
//!
//! It needs the stack (`make up`) and its SMTP sink; `stack/smoke.sh` runs it:
//! `CASHVIO_URL=http://127.0.0.1:8000 SINK_URL=http://127.0.0.1:8025 CLIENTS_ADMIN_EMAIL=…
//! CLIENTS_ADMIN_PASSWORD=… cargo test -p clients -- --ignored`.
#![allow(clippy::unwrap_used, clippy::too_many_lines, reason = "a test: a panic is the failure report")]

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn env(name: &str, default: Option<&str>) -> String {
    std::env::var(name).ok().or(default.map(str::to_owned)).unwrap_or_else(|| panic!("{name} is not set"))
}

/// The JSON types the clients' TypeScript reads.
#[derive(Clone, Copy, Debug)]
enum T {
    Str,
    Num,
    Bool,
    Arr,
    Obj,
    StrOrNull,
    ObjOrNull,
}

/// Asserts that `v` has each `path` (dot-separated; a number indexes an array) with its type.
#[track_caller]
fn shape(what: &str, v: &Value, fields: &[(&str, T)]) {
    for (path, want) in fields {
        let mut at = v;
        for part in path.split('.') {
            at = match part.parse::<usize>() {
                Ok(i) => &at[i],
                Err(_) => &at[part],
            };
        }
        let ok = match want {
            T::Str => at.is_string(),
            T::Num => at.is_number(),
            T::Bool => at.is_boolean(),
            T::Arr => at.is_array(),
            T::Obj => at.is_object(),
            T::StrOrNull => at.is_string() || at.is_null(),
            T::ObjOrNull => at.is_object() || at.is_null(),
        };
        assert!(ok, "{what}: `{path}` should be {want:?}, is {at}\nin {v}");
    }
}

struct Stack {
    http: reqwest::Client,
    base: String,
    sink: String,
}

impl Stack {
    fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let base = env("CASHVIO_URL", Some("http://127.0.0.1:8000")).trim_end_matches('/').to_owned();
        let sink = env("SINK_URL", Some("http://127.0.0.1:8025")).trim_end_matches('/').to_owned();
        Self { http, base, sink }
    }

    /// One call as the clients' axios makes it: JSON body (or none), `Accept` as axios sends
    /// it, `Authorization: Bearer` when signed in.
    async fn call(&self, method: Method, path: &str, body: Option<Value>, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header(ACCEPT, "application/json, text/plain, */*");
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(b.to_string());
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status();
        let text = res.text().await.unwrap();
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        assert!(status.as_u16() < 500, "{method} {path} answered {status}: {value}");
        if status.is_client_error() {
            // Every client shows `error.response.data.message`.
            assert!(value["message"].is_string(), "{method} {path} {status}: no `message` in {value}");
        }
        (status, value)
    }

    /// The newest e-mail to `to` whose text matches `find`, waiting for the outbox, RabbitMQ
    /// and the mailer to deliver it.
    async fn mail(&self, to: &str, find: impl Fn(&Value) -> Option<String>) -> String {
        for _ in 0..120 {
            let list: Value = self
                .http
                .get(format!("{}/api/messages?to={to}", self.sink))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(found) = list.as_array().and_then(|l| l.iter().rev().find_map(&find)) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("no matching e-mail to {to} arrived");
    }

    async fn otp(&self, to: &str) -> String {
        self.mail(to, |m| {
            let subject = m["subject"].as_str()?;
            subject.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).map(str::to_owned)
        })
        .await
    }

    /// `POST /auth/auth/otp/generate` then `POST /auth/auth/register`, as both sign-up pages do.
    async fn sign_up(&self, email: &str, name: &str, extra: Value) -> StatusCode {
        let (s, b) =
            self.call(Method::POST, "/auth/auth/otp/generate", Some(json!({"email": email, "name": name})), None).await;
        assert_eq!(s, StatusCode::CREATED, "otp/generate: {b}");
        let otp = self.otp(email).await;
        let mut body = json!({"name": name, "email": email, "password": "first cashvio pw", "otp": otp});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (s, b) = self.call(Method::POST, "/auth/auth/register", Some(body), None).await;
        assert_eq!(s, StatusCode::CREATED, "register: {b}");
        s
    }

    async fn login(&self, email: &str, password: &str) -> Value {
        let (s, b) = self
            .call(Method::POST, "/auth/auth/login", Some(json!({"email": email, "password": password})), None)
            .await;
        assert_eq!(s, StatusCode::OK, "login: {b}");
        shape(
            "login",
            &b,
            &[
                ("accessToken", T::Str),
                ("refreshToken", T::Str),
                ("user.id", T::Str),
                ("user.name", T::Str),
                ("user.email", T::Str),
                ("user.role", T::Str),
                ("user.profileImage", T::StrOrNull),
                ("user.defaultShopId", T::StrOrNull),
                ("user.defaultShop", T::ObjOrNull),
                ("user.shops", T::Arr),
            ],
        );
        b
    }

    /// `POST /mailer/upload?subFolder=…`: multipart `files`, no `folder`, as the dashboard sends it.
    async fn upload(&self, sub_folder: &str, token: &str) -> (StatusCode, Value) {
        // A 1×1 PNG.
        const PNG: &[u8] = &[
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
            0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00,
            0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xff, 0xff, 0x3f, 0x00, 0x05, 0xfe, 0x02, 0xfe, 0xa7,
            0x35, 0x81, 0x84, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
        ];
        let boundary = "----WebKitFormBoundaryFirstCashvio";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"phone.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(PNG);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let res = self
            .http
            .post(format!("{}/mailer/upload?subFolder={sub_folder}", self.base))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

/// The S3 URL the dashboard puts in front of an upload's key.
fn bucket_url(key: &str) -> String {
    format!("https://cashvio-uploads.s3.ap-south-1.amazonaws.com/{key}")
}

#[tokio::test]
#[ignore = "needs the running stack; stack/smoke.sh runs it after `make up`"]
async fn a_new_shop_on_the_first_cashvio_front_ends() {
    let st = Stack::new();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let owner_email = format!("owner-{tag}@example.com");

    // Shop dashboard: sign-up by OTP (both 201), then sign-in.
    st.sign_up(
        &owner_email,
        "Kasun Perera",
        json!({"contactNumber": "0771234567", "businessName": "Kasun Mobile", "address": "12 Main Street, Kandy",
               "contactPhone": "0812223344", "shopLogo": "https://cdn.example.com/logo.png",
               "shopBanner": "https://cdn.example.com/banner.png"}),
    )
    .await;
    let session = st.login(&owner_email, "first cashvio pw").await;
    let token = session["accessToken"].as_str().unwrap().to_owned();
    let refresh = session["refreshToken"].as_str().unwrap().to_owned();
    let shop = session["user"]["defaultShopId"].as_str().unwrap().to_owned();
    assert_eq!(session["user"]["role"], "SHOP_OWNER", "{session}");
    shape("login shop", &session, &[("user.defaultShop.id", T::Str), ("user.shops.0.id", T::Str)]);
    let t = Some(token.as_str());

    // A new shop's category pages render: 200 with an empty `data`.
    for level in ["", "/subcategories", "/subsubcategories"] {
        let (s, b) = st.call(Method::GET, &format!("/stock/categories{level}/{shop}"), None, t).await;
        assert_eq!((s, b["data"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{level}: {b}");
    }

    // Category image, uploaded without `folder`; the dashboard keeps `urls[0]` and prefixes
    // its bucket's URL.
    let (s, up) = st.upload("categories", &token).await;
    assert_eq!(s, StatusCode::CREATED, "{up}");
    shape("upload", &up, &[("urls", T::Arr), ("urls.0", T::Str)]);
    let category_key = up["urls"][0].as_str().unwrap().to_owned();
    assert!(category_key.starts_with(&format!("shops/{shop}/images/categories/")), "{category_key}");

    // Categories, three levels.
    let (s, cat) = st
        .call(
            Method::POST,
            "/stock/categories",
            Some(json!({"name": "Phones", "description": "Smart phones", "imageUrl": bucket_url(&category_key),
                        "status": "ACTIVE", "shopId": shop})),
            t,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cat}");
    let (s, sub) = st
        .call(
            Method::POST,
            "/stock/categories/subcategories",
            Some(json!({"name": "Android", "description": "", "status": "ACTIVE", "categoryId": id(&cat)})),
            t,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    let (s, subsub) = st
        .call(
            Method::POST,
            "/stock/categories/subsubcategories",
            Some(json!({"name": "Pixel", "status": "ACTIVE", "subCategoryId": id(&sub)})),
            t,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{subsub}");
    let (s, l1) = st.call(Method::GET, &format!("/stock/categories/{shop}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    let row = [("id", T::Str), ("name", T::Str), ("description", T::StrOrNull), ("imageUrl", T::StrOrNull)];
    let common = [("status", T::Str), ("updatedAt", T::Str), ("_count.products", T::Num)];
    shape("categories", &l1["data"][0], &[&row[..], &common[..], &[("_count.subCategories", T::Num)]].concat());
    assert_eq!(
        (l1["data"][0]["name"].as_str(), l1["data"][0]["_count"]["subCategories"].as_i64()),
        (Some("Phones"), Some(1))
    );
    let (s, l2) = st.call(Method::GET, &format!("/stock/categories/subcategories/{shop}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    shape(
        "subcategories",
        &l2["data"][0],
        &[
            &row[..],
            &common[..],
            &[
                ("_count.subSubCategories", T::Num),
                ("category.id", T::Str),
                ("category.name", T::Str),
                ("categoryId", T::Str),
            ],
        ]
        .concat(),
    );
    assert_eq!(l2["data"][0]["category"]["name"], "Phones");
    let (s, l3) = st.call(Method::GET, &format!("/stock/categories/subsubcategories/{shop}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    shape(
        "subsubcategories",
        &l3["data"][0],
        &[
            &row[..],
            &common[..],
            &[
                ("subCategory.id", T::Str),
                ("subCategory.name", T::Str),
                ("subCategory.category.name", T::Str),
                ("subCategoryId", T::Str),
            ],
        ]
        .concat(),
    );
    assert_eq!(l3["data"][0]["subCategory"]["category"]["name"], "Phones");
    // Edited as the dashboard's form sends it (no parent id for a top category).
    let (s, b) = st
        .call(
            Method::PUT,
            &format!("/stock/categories/{}", id(&cat)),
            Some(json!({"name": "Mobile phones", "description": "Smart phones", "imageUrl": bucket_url(&category_key), "status": "ACTIVE"})),
            t,
        )
        .await;
    assert_eq!((s, b["name"].as_str()), (StatusCode::OK, Some("Mobile phones")), "{b}");
    let (s, b) = st
        .call(
            Method::PUT,
            &format!("/stock/categories/subcategories/{}", id(&sub)),
            Some(json!({"name": "Android", "description": "", "imageUrl": null, "status": "ACTIVE", "categoryId": id(&cat)})),
            t,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // A supplier.
    let (s, supplier) = st
        .call(
            Method::POST,
            "/stock/suppliers",
            Some(json!({"name": "Lanka Distributors", "email": null, "contactNumber": "0112345678", "haveWhatsApp": true, "shopId": shop})),
            t,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{supplier}");
    let (s, b) = st
        .call(
            Method::PUT,
            &format!("/stock/suppliers/{}", id(&supplier)),
            Some(json!({"name": "Lanka Distributors", "email": "sales@lanka.example", "contactNumber": "0112345678", "haveWhatsApp": true, "shopId": shop})),
            t,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, suppliers) = st.call(Method::GET, &format!("/stock/suppliers?shopId={shop}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    shape(
        "suppliers",
        &suppliers["data"][0],
        &[
            ("id", T::Str),
            ("name", T::Str),
            ("email", T::StrOrNull),
            ("contactNumber", T::Str),
            ("haveWhatsApp", T::Bool),
            ("updatedAt", T::Str),
        ],
    );

    // A product with an uploaded image, created bare (no tracking, no price): units come next.
    let (s, up) = st.upload("products", &token).await;
    assert_eq!(s, StatusCode::CREATED, "{up}");
    let product_key = up["urls"][0].as_str().unwrap().to_owned();
    let product_body = json!({"name": "Pixel 8", "description": "128 GB", "displayName": "Google Pixel 8", "keepingUnits": 1,
        "imageUrls": [bucket_url(&product_key)], "status": "ACTIVE", "shopId": shop, "supplierId": id(&supplier),
        "categoryId": id(&cat), "subCategoryId": id(&sub), "subSubCategoryId": id(&subsub), "warrantyMonths": 12,
        "loyaltyPoints": 10});
    let (s, product) = st.call(Method::POST, "/stock/products", Some(product_body.clone()), t).await;
    assert_eq!(s, StatusCode::CREATED, "{product}");
    let pid = id(&product);
    let (s, b) = st.call(Method::GET, &format!("/stock/products/{pid}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    shape("product", &b, &[("name", T::Str), ("displayName", T::StrOrNull)]);
    let mut edit = product_body.clone();
    edit.as_object_mut().unwrap().remove("shopId");
    edit["id"] = json!(pid);
    edit["loyaltyPoints"] = json!(15);
    let (s, b) = st.call(Method::PUT, &format!("/stock/products/{pid}"), Some(edit), t).await;
    assert_eq!((s, b["loyaltyPoints"].as_i64()), (StatusCode::OK, Some(15)), "{b}");

    // Units added by barcode, one call each, prices as JSON numbers.
    let mut units = Vec::new();
    for (barcode, bought, sell) in [("IMEI-358001", 41000, json!(52000)), ("IMEI-358002", 41000, json!(49999.99))] {
        let (s, unit) = st
            .call(
                Method::POST,
                "/stock/items",
                Some(json!({"barcode": format!("{barcode}-{tag}"), "broughtPrice": bought, "sellPrice": sell, "productId": pid})),
                t,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{unit}");
        units.push(unit);
    }
    let (s, b) = st
        .call(
            Method::PUT,
            &format!("/stock/items/{}", id(&units[0])),
            Some(json!({"id": id(&units[0]), "barcode": units[0]["barcode"], "broughtPrice": 40500.5, "sellPrice": 52000, "productId": pid})),
            t,
        )
        .await;
    assert_eq!((s, b["broughtPrice"].as_str()), (StatusCode::OK, Some("40500.50")), "{b}");
    let (s, items) = st.call(Method::GET, &format!("/stock/items?productId={pid}"), None, t).await;
    assert_eq!((s, items["data"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)), "{items}");
    for unit in items["data"].as_array().unwrap() {
        shape(
            "items",
            unit,
            &[
                ("id", T::Str),
                ("barcode", T::Str),
                ("broughtPrice", T::Str),
                ("sellPrice", T::Str),
                ("updatedAt", T::Str),
            ],
        );
    }

    // The product list: stock and the nested names the table shows.
    let (s, list) = st.call(Method::GET, &format!("/stock/products?shopId={shop}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    let p = &list["data"][0];
    shape(
        "products",
        p,
        &[
            ("id", T::Str),
            ("name", T::Str),
            ("displayName", T::StrOrNull),
            ("keepingUnits", T::Num),
            ("stock", T::Num),
            ("imageUrls", T::Arr),
            ("status", T::Str),
            ("warrantyMonths", T::Num),
            ("loyaltyPoints", T::Num),
            ("supplier.id", T::Str),
            ("supplier.name", T::Str),
            ("category.name", T::Str),
            ("subCategory.name", T::Str),
            ("subSubCategory.name", T::Str),
            ("updatedAt", T::Str),
            ("supplierId", T::Str),
            ("categoryId", T::Str),
            ("subCategoryId", T::Str),
            ("subSubCategoryId", T::Str),
        ],
    );
    assert_eq!(
        (p["stock"].as_i64(), p["status"].as_str(), p["supplier"]["name"].as_str(), p["category"]["name"].as_str()),
        (Some(2), Some("ACTIVE"), Some("Lanka Distributors"), Some("Mobile phones")),
        "{p}"
    );
    assert_eq!(
        (p["subCategory"]["name"].as_str(), p["subSubCategory"]["name"].as_str()),
        (Some("Android"), Some("Pixel"))
    );

    // The till's product picker: units with numeric prices.
    let (s, with) = st.call(Method::GET, &format!("/stock/products/with-items?shopId={shop}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    let w = with["data"].as_array().unwrap().iter().find(|p| p["id"] == pid.as_str()).unwrap();
    shape("with-items", w, &[("id", T::Str), ("name", T::Str), ("stock", T::Num), ("items", T::Arr)]);
    for unit in w["items"].as_array().unwrap() {
        shape("with-items unit", unit, &[("id", T::Str), ("barcode", T::Str), ("sellPrice", T::Num)]);
    }
    let prices: Vec<f64> = w["items"].as_array().unwrap().iter().filter_map(|u| u["sellPrice"].as_f64()).collect();
    assert!(prices.contains(&52000.0) && prices.contains(&49999.99), "{w}");

    // A unit removed from the units page: DELETE without a body.
    let (s, b) = st.call(Method::DELETE, &format!("/stock/items/{}", id(&units[1])), None, t).await;
    assert!(s.is_success(), "{s} {b}");
    let (_, with) = st.call(Method::GET, &format!("/stock/products/with-items?shopId={shop}"), None, t).await;
    let w = with["data"].as_array().unwrap().iter().find(|p| p["id"] == pid.as_str()).unwrap();
    assert_eq!((w["stock"].as_i64(), w["items"].as_array().map(Vec::len)), (Some(1), Some(1)), "{w}");

    // Deletes from the dashboard's tables: a category level, a supplier and a product that
    // nothing uses are gone; the used category stays (hidden when in use, per API.md).
    let (_, spare_cat) = st
        .call(Method::POST, "/stock/categories", Some(json!({"name": "Spare", "status": "ACTIVE", "shopId": shop})), t)
        .await;
    let (_, spare_sub) = st
        .call(
            Method::POST,
            "/stock/categories/subcategories",
            Some(json!({"name": "Spare sub", "status": "ACTIVE", "categoryId": id(&spare_cat)})),
            t,
        )
        .await;
    let (_, spare_supplier) = st
        .call(
            Method::POST,
            "/stock/suppliers",
            Some(json!({"name": "Spare", "email": null, "contactNumber": "1", "haveWhatsApp": false, "shopId": shop})),
            t,
        )
        .await;
    let (_, spare_product) = st
        .call(Method::POST, "/stock/products", Some(json!({"name": "Spare", "shopId": shop, "status": "ACTIVE"})), t)
        .await;
    for path in [
        format!("/stock/categories/subcategories/{}", id(&spare_sub)),
        format!("/stock/categories/{}", id(&spare_cat)),
        format!("/stock/suppliers/{}", id(&spare_supplier)),
        format!("/stock/products/{}", id(&spare_product)),
    ] {
        let (s, b) = st.call(Method::DELETE, &path, None, t).await;
        assert!(s.is_success(), "DELETE {path}: {s} {b}");
        let (s, _) = st.call(Method::GET, &path, None, t).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path} after its DELETE");
    }
    let (s, b) = st.call(Method::DELETE, &format!("/stock/suppliers/{}", id(&supplier)), None, t).await;
    assert_eq!((s, b["message"].is_string()), (StatusCode::CONFLICT, true), "a supplier in use stays: {b}");

    // An image replaced: the old key deleted as `{key: [keys]}`.
    let (s, b) = st.call(Method::DELETE, "/mailer/upload", Some(json!({"key": [category_key]})), t).await;
    assert!(s.is_success(), "{s} {b}");

    // Bad input stays refused, naming the field's JSON path, with a `message`.
    let (s, b) = st
        .call(
            Method::POST,
            "/stock/items",
            Some(json!({"barcode": format!("X-{tag}"), "broughtPrice": 41000.123, "sellPrice": 1, "productId": pid})),
            t,
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str(), b["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("MONEY_PRECISION"), Some("broughtPrice")),
        "{b}"
    );
    let (s, b) = st
        .call(
            Method::POST,
            "/stock/suppliers",
            Some(json!({"name": "X", "contactNumber": "1", "shopId": shop, "isAdmin": true})),
            t,
        )
        .await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("isAdmin")), "{b}");

    // Customer app: a sign-up without `businessName` is a customer; the till sells to them
    // and the shop's customer list shows them.
    let customer_email = format!("customer-{tag}@example.com");
    st.sign_up(&customer_email, "Nadeesha Silva", json!({"contactNumber": "0719876543"})).await;
    let customer = st.login(&customer_email, "first cashvio pw").await;
    assert_eq!(customer["user"]["role"], "CUSTOMER", "{customer}");
    let customer_id = customer["user"]["id"].as_str().unwrap().to_owned();
    // The order service learns of a registered customer from auth's event (the outbox, then
    // RabbitMQ: usually tens of milliseconds, up to a relay's poll); a till that sells to
    // them in the very moment of their sign-up hears CUSTOMER_NOT_FOUND until then.
    let sale = json!({"shopId": shop, "customerId": customer_id,
        "items": [{"productId": pid, "barcodes": [units[0]["barcode"]], "customPrice": 52000}],
        "payments": [{"amount": 52000, "method": "CASH"}], "discount": 0, "discountType": "FIXED",
        "draft": false, "sendReceiptEmail": false, "print": false});
    let mut tries = 0;
    loop {
        let (s, order) = st.call(Method::POST, "/order/orders", Some(sale.clone()), t).await;
        tries += 1;
        if s == StatusCode::NOT_FOUND && order["code"] == "CUSTOMER_NOT_FOUND" && tries < 40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        assert_eq!(s, StatusCode::CREATED, "{order}");
        break;
    }
    let mut customers = Value::Null;
    for _ in 0..80 {
        let (s, b) = st.call(Method::GET, &format!("/auth/shops/{shop}/customers"), None, t).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        customers = b;
        if customers["data"].as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    shape(
        "shop customers",
        &customers["data"][0],
        &[("id", T::Str), ("name", T::StrOrNull), ("email", T::StrOrNull), ("orderCount", T::Num)],
    );
    assert_eq!(
        (customers["data"][0]["id"].as_str(), customers["data"][0]["orderCount"].as_i64()),
        (Some(customer_id.as_str()), Some(1))
    );

    // Admin app: the shop owners.
    let admin = st.login(&env("CLIENTS_ADMIN_EMAIL", None), &env("CLIENTS_ADMIN_PASSWORD", None)).await;
    let admin_token = admin["accessToken"].as_str().unwrap().to_owned();
    for role in ["SHOP_OWNER", "SUPER_ADMIN"] {
        let (s, users) = st.call(Method::GET, &format!("/auth/users?role={role}"), None, Some(&admin_token)).await;
        assert_eq!(s, StatusCode::OK, "{users}");
        shape(
            "users",
            &users["data"][0],
            &[
                ("id", T::Str),
                ("name", T::Str),
                ("email", T::Str),
                ("contactNumber", T::StrOrNull),
                ("status", T::Str),
                ("createdAt", T::Str),
            ],
        );
    }

    every_422_names_the_json_path_of_the_refused_field(&st, &owner_email, &token, &shop).await;
    cashflow_page(&st, &token, &shop).await;

    // Google sign-in starts with a redirect to the provider.
    let res = st.http.get(format!("{}/auth/auth/google/login", st.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(res.headers().get(LOCATION).is_some());

    // A refresh as the clients make it: `{}` with the refresh token as Bearer.
    let (s, b) = st.call(Method::POST, "/auth/auth/refresh", Some(json!({})), Some(&refresh)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    shape("refresh", &b, &[("accessToken", T::Str)]);

    // Sign-out: `{}` with the access token; 201; that session's token is refused afterwards.
    let (s, b) = st.call(Method::POST, "/auth/auth/logout", Some(json!({})), t).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    shape("logout", &b, &[("message", T::Str)]);
    let (s, b) = st.call(Method::GET, "/auth/shops", None, t).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a signed-out token: {b}");

    // Forgot and reset password, with the fields the sign-in page adds.
    let (s, b) = st
        .call(
            Method::POST,
            "/auth/auth/forgot-password",
            Some(json!({"email": owner_email, "useCase": "FORGOT_PASSWORD", "role": "SHOP_OWNER"})),
            None,
        )
        .await;
    assert!(s.is_success(), "{s} {b}");
    let reset = st
        .mail(&owner_email, |m| {
            let text = m["text"].as_str()?;
            let at = text.find("token=")? + "token=".len();
            Some(text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect())
        })
        .await;
    let (s, b) = st
        .call(
            Method::POST,
            "/auth/auth/reset-password",
            Some(json!({"password": "a new long secret", "token": reset})),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    shape("reset-password", &b, &[("message", T::Str)]);
    st.login(&owner_email, "a new long secret").await;
}

/// Every service names a refused field by its JSON path (never by its value), with a stable
/// code and a `message`, through nginx: type errors, unknown fields, nested array elements
/// and money with more digits than the currency has.
/// (Part of the shop's walk-through rather than a test of its own: every sign-up and
/// sign-in counts against the per-IP limits, and the smoke run stays well inside them.)
async fn every_422_names_the_json_path_of_the_refused_field(st: &Stack, email: &str, t: &str, shop: &str) {
    let (s, product) = st
        .call(
            Method::POST,
            "/stock/products",
            Some(json!({"name": "Cable", "sellPrice": 750, "shopId": shop})),
            Some(t),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{product}");
    let pid = id(&product);
    let table: Vec<(Method, &str, Value, &str, Option<&str>)> = vec![
        (Method::POST, "/auth/auth/login", json!({"email": 41000, "password": "x"}), "email", None),
        (
            Method::POST,
            "/auth/auth/otp/generate",
            json!({"email": email, "name": "N", "isAdmin": true}),
            "isAdmin",
            None,
        ),
        (Method::POST, "/auth/shops", json!({"businessName": ["x"], "address": "A"}), "businessName", None),
        (
            Method::POST,
            "/stock/products",
            json!({"name": "X", "imageUrls": ["a", 5], "shopId": shop}),
            "imageUrls[1]",
            None,
        ),
        (
            Method::POST,
            "/stock/products",
            json!({"name": "X", "sellPrice": 1.001, "shopId": shop}),
            "sellPrice",
            Some("MONEY_PRECISION"),
        ),
        (
            Method::POST,
            "/stock/items",
            json!({"barcode": "B1", "broughtPrice": true, "sellPrice": 1, "productId": pid}),
            "broughtPrice",
            None,
        ),
        (
            Method::POST,
            "/stock/reservations",
            json!({"shopId": shop, "lines": [{"productId": pid, "quantity": 1}, {"productId": pid, "quantity": "two"}], "ttlSeconds": 60}),
            "lines[1].quantity",
            None,
        ),
        (
            Method::POST,
            "/order/orders",
            json!({"shopId": shop, "items": [{"productId": pid, "quantity": 1, "customPrice": 750.001}], "payments": []}),
            "items[0].customPrice",
            Some("MONEY_PRECISION"),
        ),
        (
            Method::POST,
            "/order/orders",
            json!({"shopId": shop, "items": [{"productId": pid, "quantity": 1}], "payments": [{"amount": 750, "method": "CASH", "tip": 5}]}),
            "payments[0].tip",
            None,
        ),
        (Method::DELETE, "/mailer/upload", json!({"key": 5}), "key", None),
        (
            Method::POST,
            "/mailer/upload/presign",
            json!({"folder": "products", "contentType": "image/png", "size": "big"}),
            "size",
            None,
        ),
    ];
    for (method, path, body, field, code) in table {
        let (s, b) = st.call(method.clone(), path, Some(body.clone()), Some(t)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path} {body}: {b}");
        assert_eq!(b["errors"][0]["field"].as_str(), Some(field), "{method} {path} {body}: {b}");
        if let Some(code) = code {
            assert_eq!(b["code"].as_str(), Some(code), "{method} {path} {body}: {b}");
        }
    }
    // Nothing of it was stored: the only cable is the one created above.
    let (_, list) = st.call(Method::GET, &format!("/stock/products?shopId={shop}&search=cable"), None, Some(t)).await;
    assert_eq!(list["meta"]["totalItems"].as_i64(), Some(1), "{list}");
}

/// The dashboard's cashflow page (CLIENTS.md, order section): upcoming payments as it sends
/// them, the shop balance, the comprehensive report and the customer dues, field by field.
async fn cashflow_page(st: &Stack, token: &str, shop: &str) {
    let t = Some(token);
    let (s, bill) = st
        .call(
            Method::POST,
            "/order/upcoming-payments",
            Some(json!({"description": "Rent", "amount": "15000.00", "dueDate": "2026-12-01", "isRecurring": true, "shopId": shop})),
            t,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bill}");
    let upcoming = [
        ("id", T::Str),
        ("description", T::Str),
        ("amount", T::Str),
        ("dueDate", T::Str),
        ("paymentType", T::Str),
        ("isPriority", T::Bool),
        ("shopId", T::Str),
        ("createdAt", T::Str),
        ("updatedAt", T::Str),
    ];
    shape("upcoming payment", &bill, &upcoming);
    let bid = id(&bill);
    let (s, list) = st.call(Method::GET, &format!("/order/upcoming-payments?shopId={shop}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    shape("upcoming payments", &list, &[("data", T::Arr), ("count", T::Num)]);
    shape("upcoming payments", &list["data"][0], &upcoming);
    let (s, one) = st.call(Method::GET, &format!("/order/upcoming-payments/{bid}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    shape("upcoming payment", &one, &upcoming);
    let (s, b) = st
        .call(
            Method::PUT,
            &format!("/order/upcoming-payments/{bid}"),
            Some(json!({"id": bid, "description": "Shop rent", "amount": "15500.00", "dueDate": "2026-12-01", "isRecurring": true})),
            t,
        )
        .await;
    assert_eq!((s, b["amount"].as_str()), (StatusCode::OK, Some("15500.00")), "{b}");
    let (s, b) = st.call(Method::PUT, &format!("/order/upcoming-payments/{bid}/pay"), None, t).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = st.call(Method::DELETE, &format!("/order/upcoming-payments/{bid}"), None, t).await;
    assert!(s.is_success(), "{s} {b}");

    let (s, bal) = st.call(Method::GET, &format!("/order/shop-balance/{shop}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    shape(
        "shop balance",
        &bal,
        &[
            ("shopId", T::Str),
            ("cashBalance", T::Str),
            ("cardBalance", T::Str),
            ("bankBalance", T::Str),
            ("totalBalance", T::Str),
        ],
    );
    let (s, r) = st.call(Method::GET, &format!("/order/cash-flow/comprehensive/{shop}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    shape(
        "comprehensive",
        &r,
        &[
            ("currentBalance", T::Num),
            ("totalIncome", T::Num),
            ("totalExpenses", T::Num),
            ("projectedBalance", T::Num),
            ("customerDues.totalDues", T::Num),
            ("customerDues.duesList", T::Arr),
            ("customerDues.count", T::Num),
            ("totalUpcoming", T::Num),
            ("upcomingPayments", T::Arr),
            ("transactions.recent", T::Arr),
            ("transactions.recent.0.id", T::Str),
            ("transactions.recent.0.description", T::Str),
            ("transactions.recent.0.amount", T::Str),
            ("transactions.recent.0.date", T::Str),
            ("transactions.recent.0.shopId", T::Str),
            ("transactions.recent.0.type", T::Str),
            ("transactions.recent.0.category", T::Str),
            ("transactions.recent.0.isRecurring", T::Bool),
            ("transactions.recent.0.createdAt", T::Str),
            ("transactions.recent.0.updatedAt", T::Str),
            ("transactions.summary", T::Obj),
            ("transactions.monthlyTrends", T::Arr),
            ("transactions.monthlyTrends.0.month", T::Str),
            ("transactions.monthlyTrends.0.income", T::Num),
            ("transactions.monthlyTrends.0.expense", T::Num),
            ("transactions.monthlyTrends.0.net", T::Num),
            ("transactions.count", T::Num),
            ("dailyTarget", T::Num),
            ("dailyProgress", T::Num),
            ("incomeGrowth", T::Num),
            ("expenseGrowth", T::Num),
            ("adjustedBalance", T::Num),
            ("healthStatus", T::Str),
        ],
    );
    // The sale of the walk-through is income the dashboard recognises by its description.
    let recent = r["transactions"]["recent"].as_array().unwrap();
    assert!(
        recent
            .iter()
            .any(|t| t["type"] == "ORDER_PAYMENT" && t["description"].as_str().unwrap().contains("Order #ORD-")),
        "{r}"
    );
    let (s, d) = st.call(Method::GET, &format!("/order/cash-flow/customer-dues/{shop}"), None, t).await;
    assert_eq!(s, StatusCode::OK);
    shape("customer dues", &d, &[("totalDues", T::Num), ("duesList", T::Arr), ("count", T::Num)]);
}
