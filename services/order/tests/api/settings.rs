//! Shop settings: the owner's, validated, and never overwritten by auth's re-sent events.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn only_the_owner_reads_and_changes_settings() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let owner = app.owner(shop).await;
    let staff = app.staff(shop).await;

    let (status, s) = app.call("GET", &format!("/shops/{shop}/settings"), None, &owner).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["currency"], "LKR");
    assert_eq!(s["staffPriceOverride"], true, "allowed by default, as the first system did");
    assert_eq!(s["allowCredit"], false);

    let (status, s) = app
        .call(
            "PUT",
            &format!("/shops/{shop}/settings"),
            Some(json!({"timeZone": "Asia/Colombo", "allowCredit": true, "creditLimit": 5000})),
            &owner,
        )
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!((s["timeZone"].as_str(), s["creditLimit"].as_str()), (Some("Asia/Colombo"), Some("5000.00")));
    assert_eq!(s["requireOpenShift"], false, "fields left out keep their value");

    let (status, refused) = app.call("GET", &format!("/shops/{shop}/settings"), None, &staff).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("SHOP_ROLE_REQUIRED")));
    for (why, body) in [
        ("unknown zone", json!({"timeZone": "Mars/Olympus"})),
        ("negative limit", json!({"creditLimit": "-1"})),
        ("too precise", json!({"creditLimit": "1.001"})),
        ("another currency", json!({"currency": "USD"})),
        ("unknown field", json!({"nextOrderNumber": 1})),
    ] {
        let (status, answer) = app.call("PUT", &format!("/shops/{shop}/settings"), Some(body), &owner).await;
        assert_eq!(status, 422, "{why}: {answer}");
    }
    let (_, unchanged) = app.call("GET", &format!("/shops/{shop}/settings"), None, &owner).await;
    assert_eq!(unchanged["timeZone"], "Asia/Colombo", "refused changes change nothing");
    app.stop();
}
