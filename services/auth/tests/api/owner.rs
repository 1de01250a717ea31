//! Shops keep an owner and HR records link only to members: the last owner cannot delete
//! their account; an employee's `userId` must be a member of the shop (an unknown id and
//! another shop's user are the same 422, never a 500 and never a cross-shop link).

use serde_json::json;
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_last_owner_cannot_delete_their_account_and_a_co_owner_lets_them() {
    let app = spawn_app().await;
    let (shop, owner) = app.seed_shop().await;
    let token = app.access_token(&owner.email).await;
    let (s, b) = app.call("DELETE", &format!("/users/{}", owner.id), None, Some(&token)).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("SHOP_LAST_OWNER")), "{b}");
    assert_eq!(app.call("GET", "/shops", None, Some(&token)).await.0, 200, "nothing happened");
    let co = app.seed_user("SHOP_OWNER", &[(shop, "SHOP_OWNER")]).await;
    let (s, b) = app.call("DELETE", &format!("/users/{}", owner.id), None, Some(&token)).await;
    assert_eq!(s, 204, "{b}");
    let co_token = app.access_token(&co.email).await;
    let (s, b) = app.call("DELETE", &format!("/users/{}", co.id), None, Some(&co_token)).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("SHOP_LAST_OWNER")), "the deleted owner does not count: {b}");
}

#[tokio::test]
async fn an_employee_links_only_to_a_member_of_its_shop() {
    let app = spawn_app().await;
    let (shop, owner) = app.seed_shop().await;
    let (other_shop, _) = app.seed_shop().await;
    let token = app.access_token(&owner.email).await;
    let member = app.seed_user("SHOP_STAFF", &[(shop, "SHOP_STAFF")]).await;
    let stranger = app.seed_user("SHOP_STAFF", &[(other_shop, "SHOP_STAFF")]).await;
    let create = |user: Uuid| json!({"shopId": shop, "name": "Kasun", "userId": user});
    let (s1, unknown) = app.post("/employees", create(Uuid::now_v7()), Some(&token)).await;
    let (s2, foreign) = app.post("/employees", create(stranger.id), Some(&token)).await;
    assert_eq!((s1, s2), (422, 422), "{unknown} / {foreign}");
    assert_eq!(unknown["errors"], foreign["errors"]);
    assert_eq!(unknown["errors"][0]["field"], "userId");
    let (s, created) = app.post("/employees", create(member.id), Some(&token)).await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (s, b) = app.call("PUT", &format!("/employees/{id}"), Some(json!({"userId": stranger.id})), Some(&token)).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("userId")), "{b}");
    // Removing the member unlinks the record instead of failing.
    let (s, _) = app.call("DELETE", &format!("/shops/{shop}/members/{}", member.id), None, Some(&token)).await;
    assert_eq!(s, 204);
    let (_, record) = app.call("GET", &format!("/employees/{id}"), None, Some(&token)).await;
    assert_eq!(record["userId"], serde_json::Value::Null, "{record}");
}

#[tokio::test]
async fn insane_dates_and_another_shops_logo_are_422() {
    let app = spawn_app().await;
    let (shop, owner) = app.seed_shop().await;
    let (other, _) = app.seed_shop().await;
    let token = app.access_token(&owner.email).await;
    let (s, b) =
        app.post("/employees", json!({"shopId": shop, "name": "Kasun", "hiredOn": "1850-01-01"}), Some(&token)).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("hiredOn")), "{b}");
    let (s, b) =
        app.call("PUT", &format!("/users/{}", owner.id), Some(json!({"dob": "2300-01-01"})), Some(&token)).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("dob")), "{b}");
    let theirs = format!("shops/{other}/images/logo.png");
    let (s, b) = app.call("PUT", &format!("/shops/{shop}"), Some(json!({"shopLogo": theirs})), Some(&token)).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("shopLogo")), "{b}");
    let mine = format!("shops/{shop}/images/logo.png");
    let (s, b) = app.call("PUT", &format!("/shops/{shop}"), Some(json!({"shopLogo": mine})), Some(&token)).await;
    assert_eq!((s, b["shopLogo"].as_str()), (200, Some(mine.as_str())), "{b}");
    // A profile picture: an upload of one of the caller's shops, not another's.
    let me = format!("/users/{}", owner.id);
    let (s, b) = app.call("PUT", &me, Some(json!({"profileImage": theirs})), Some(&token)).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("profileImage")), "{b}");
    let (s, b) = app.call("PUT", &me, Some(json!({"profileImage": mine})), Some(&token)).await;
    assert_eq!(s, 200, "{b}");
    // A new shop's logo: an upload of one of the owner's shops.
    let new_shop = |logo: &str| json!({"businessName": "Branch", "address": "Galle", "shopLogo": logo});
    let (s, b) = app.post("/shops", new_shop(&theirs), Some(&token)).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("shopLogo")), "{b}");
    let (s, b) = app.post("/shops", new_shop(&mine), Some(&token)).await;
    assert_eq!(s, 201, "{b}");
}

/// The platform role travels in the token: changing it ends the user's sessions, so a
/// demoted admin cannot use their old token to undo the demotion.
#[tokio::test]
async fn a_changed_role_ends_the_sessions_of_that_user() {
    let app = spawn_app().await;
    let root = app.seed_user("SUPER_ADMIN", &[]).await;
    let admin = app.seed_user("ADMIN", &[]).await;
    let (root_token, admin_token) = (app.access_token(&root.email).await, app.access_token(&admin.email).await);
    let (s, _) = app.call("GET", "/users?limit=1", None, Some(&admin_token)).await;
    assert_eq!(s, 200);
    let path = format!("/users/{}", admin.id);
    let (s, b) = app.call("PUT", &path, Some(json!({"role": "CUSTOMER"})), Some(&root_token)).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app.call("PUT", &path, Some(json!({"role": "ADMIN"})), Some(&admin_token)).await;
    assert_eq!((s, b["code"].as_str()), (401, Some("AUTH_SESSION_REVOKED")), "{b}");
}
