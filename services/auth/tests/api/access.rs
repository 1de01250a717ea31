//! Access ends at once on auth's own endpoints (it answers from its own tables) and auth
//! announces every ending to the other services: member changes, ended sessions (logout,
//! a reused refresh token's family, logout everywhere) and account status.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn suspended_removed_logged_out_family_revoked_and_deleted_lose_access_at_once() {
    let app = spawn_app().await;
    let (shop, owner) = app.seed_shop().await;
    let owner_token = app.access_token(&owner.email).await;
    let employees = format!("/employees?shopId={shop}");
    let probe = |token: String| {
        let (app, path) = (&app, &employees);
        async move { app.call("GET", path, None, Some(&token)).await.0 }
    };

    // Suspended, then removed: the next call is 403.
    let staff = app.seed_user("SHOP_STAFF", &[(shop, "SHOP_STAFF")]).await;
    let staff_token = app.access_token(&staff.email).await;
    assert_eq!(probe(staff_token.clone()).await, 200);
    let member = format!("/shops/{shop}/members/{}", staff.id);
    let (s, b) = app.call("PATCH", &member, Some(json!({"status": "SUSPENDED"})), Some(&owner_token)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(probe(staff_token.clone()).await, 403, "suspended");
    let (s, _) = app.call("PATCH", &member, Some(json!({"status": "ACTIVE"})), Some(&owner_token)).await;
    assert_eq!(s, 200);
    assert_eq!(probe(staff_token.clone()).await, 200, "back");
    let (s, _) = app.call("DELETE", &member, None, Some(&owner_token)).await;
    assert_eq!(s, 204);
    assert_eq!(probe(staff_token).await, 403, "removed");

    // Logout: that session's access token is refused.
    let cashier = app.seed_user("SHOP_STAFF", &[(shop, "SHOP_STAFF")]).await;
    let login = app.login(&cashier.email).await;
    let (access, refresh) = (login["accessToken"].as_str().unwrap(), login["refreshToken"].as_str().unwrap());
    let other_session = app.access_token(&cashier.email).await;
    assert_eq!(probe(access.to_owned()).await, 200);
    let (s, _) = app.post("/auth/logout", json!({"refreshToken": refresh}), None).await;
    assert_eq!(s, 201);
    let (s, b) = app.call("GET", &employees, None, Some(access)).await;
    assert_eq!((s, b["code"].as_str()), (401, Some("AUTH_SESSION_REVOKED")), "logged out: {b}");
    assert_eq!(probe(other_session).await, 200, "another session of the same user goes on");

    // A reused refresh token revokes its family: both access tokens of it are refused.
    let login = app.login(&cashier.email).await;
    let (first_access, first_refresh) =
        (login["accessToken"].as_str().unwrap(), login["refreshToken"].as_str().unwrap());
    let (s, next) = app.post("/auth/refresh", json!({"refreshToken": first_refresh}), None).await;
    assert_eq!(s, 200, "{next}");
    let second_access = next["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(probe(second_access.clone()).await, 200);
    let (s, _) = app.post("/auth/refresh", json!({"refreshToken": first_refresh}), None).await;
    assert_eq!(s, 401, "reuse");
    assert_eq!(probe(first_access.to_owned()).await, 401, "family revoked");
    assert_eq!(probe(second_access).await, 401, "family revoked");

    // Account deleted: every session of it is refused.
    let leaver = app.seed_user("SHOP_STAFF", &[(shop, "SHOP_STAFF")]).await;
    let leaver_token = app.access_token(&leaver.email).await;
    let (s, _) = app.call("DELETE", &format!("/users/{}", leaver.id), None, Some(&leaver_token)).await;
    assert_eq!(s, 204);
    assert_eq!(probe(leaver_token).await, 401, "deleted");

    // A shop created after sign-in works at once with the same token.
    let (s, created) =
        app.post("/shops", json!({"businessName": "Second shop", "address": "Road 2"}), Some(&owner_token)).await;
    assert_eq!(s, 201, "{created}");
    let second: Uuid = serde_json::from_value(created["id"].clone()).unwrap();
    let (s, b) = app.call("GET", &format!("/employees?shopId={second}"), None, Some(&owner_token)).await;
    assert_eq!(s, 200, "{b}");

    // Every ending was announced to the other services, in the same transactions.
    let announced: Vec<(String, i64)> = sqlx::query_as(
        "select message_type, count(*) from auth.outbox
          where message_type in ('auth.member.changed', 'auth.session.revoked', 'auth.user.changed')
          group by message_type order by message_type",
    )
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    // member: suspended, active, removed; sessions: logout, the reused family, the leaver's
    // one; user: the leaver.
    assert_eq!(
        announced,
        vec![
            ("auth.member.changed".to_owned(), 3),
            ("auth.session.revoked".to_owned(), 3),
            ("auth.user.changed".to_owned(), 1)
        ]
    );
}

/// Two tabs refreshing with one refresh token at once both stay signed in (the same
/// successor); a reuse after the grace period is still a theft and revokes the family.
#[tokio::test]
async fn two_tabs_refreshing_at_once_stay_signed_in_and_a_late_reuse_still_revokes() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        refresh_reuse_grace: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let (_, owner) = app.seed_shop().await;
    let login = app.login(&owner.email).await;
    let token = login["refreshToken"].as_str().unwrap().to_owned();
    let (a, b) = tokio::join!(
        app.post("/auth/refresh", json!({"refreshToken": token}), None),
        app.post("/auth/refresh", json!({"refreshToken": token}), None)
    );
    assert_eq!((a.0, b.0), (200, 200), "{} / {}", a.1, b.1);
    assert_eq!(a.1["refreshToken"], b.1["refreshToken"], "the same successor for both tabs");
    let successor = a.1["refreshToken"].as_str().unwrap().to_owned();
    let (s, _) = app.call("GET", "/shops", None, b.1["accessToken"].as_str()).await;
    assert_eq!(s, 200, "both tabs' access tokens work");

    // The successor goes on normally.
    let (s, next) = app.post("/auth/refresh", json!({"refreshToken": successor}), None).await;
    assert_eq!(s, 200, "{next}");
    // Long after the rotation, the first token again: revoked, and the family with it.
    tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;
    let (s, b) = app.post("/auth/refresh", json!({"refreshToken": token}), None).await;
    assert_eq!(s, 401, "{b}");
    let (s, _) = app.post("/auth/refresh", json!({"refreshToken": next["refreshToken"]}), None).await;
    assert_eq!(s, 401, "the family is revoked");
}
