//! Access ends at once: the mailer authorizes uploads from its projection of auth's events,
//! not from the token's claims (see testkit::access::revocation_scenario for the steps).

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_removed_logged_out_and_deleted_lose_access_and_a_new_shop_works_at_once() {
    let app = spawn_app().await;
    testkit::access::revocation_scenario(&app.broker, &app.exchange, &app.key, |shop, token| {
        let app = &app;
        async move {
            let body = json!({"shopId": shop, "folder": "images", "contentType": "image/png", "size": 1000});
            let res = app
                .http
                .post(format!("{}/upload/presign", app.base_url))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        }
    })
    .await;
}
