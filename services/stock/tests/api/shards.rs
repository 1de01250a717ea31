//! Two stock instances on one database and broker: a shop's shard has exactly one owner (the
//! single active consumer of `stock.rpc.<k>`), the other forwards to it and runs no actor of
//! its own; SIGKILL the owner in the middle of a burst and the survivor takes the shard over:
//! nothing oversold, and every answered reservation is stored exactly once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp, PREFIX, ROLE};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_survivor_takes_over_a_killed_owners_shard_without_overselling() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Phone charger", "1500.00", 100).await;
    let token = app.staff(shop).await;

    // The owner is a real process (SIGKILL); the in-process instance that set the data up
    // steps down first, so the process becomes the shards' active consumer.
    app.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut env = testkit::service::binary_env(PREFIX, ROLE, &app.db, &app.jwks);
    env.push(("STOCK_QUEUE".into(), app.config.queue.clone()));
    env.push(("STOCK_RPC_QUEUE".into(), app.config.rpc_queue.clone()));
    env.push(("STOCK_SHARDS".into(), app.config.shards.to_string()));
    let owner = testkit::service::ServiceProcess::start(env!("CARGO_BIN_EXE_cashvio-stock"), &env).await;
    let owner_url = format!("http://127.0.0.1:{}", owner.port);
    let (status, body) = reserve_at(&app, &owner_url, Uuid::now_v7(), shop, product, &token).await;
    assert_eq!(status, 201, "the process owns the shard: {body}");
    // The second instance joins as the standby.
    let standby = app.spawn_peer().await;

    // A burst of single-unit reservations, through the standby's HTTP (forwarded to the
    // owner) and over the shard's queue (as the order service sends them).
    let attempts = 400;
    let answered = Arc::new(AtomicUsize::new(0));
    let ids: Vec<Uuid> = (0..attempts).map(|_| Uuid::now_v7()).collect();
    let burst: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let (app, standby_url, token, answered) = (&app, standby.base_url.clone(), token.clone(), answered.clone());
            async move {
                let outcome = if i % 2 == 0 {
                    let (status, body) = reserve_at(app, &standby_url, id, shop, product, &token).await;
                    if status == 201 {
                        Ok(())
                    } else {
                        Err(body["code"].as_str().unwrap_or("?").to_owned())
                    }
                } else {
                    app.reserve_rpc_as(id, shop, json!([{"productId": product, "quantity": 1}]), 600).await.map(|_| ())
                };
                answered.fetch_add(1, Ordering::SeqCst);
                (id, outcome)
            }
        })
        .collect();
    let killer = async {
        let start = Instant::now();
        while answered.load(Ordering::SeqCst) < 20 && start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(standby.stock.running(), 0, "the standby ran no actor while the process owned the shard");
        owner.signal("KILL");
        (Instant::now(), answered.load(Ordering::SeqCst))
    };
    let (results, (killed_at, before_kill)) = tokio::join!(futures::future::join_all(burst), killer);
    eprintln!("{before_kill} of {attempts} answered before the kill");
    assert!(before_kill < attempts, "the kill landed in the middle of the burst");
    let granted: Vec<Uuid> = results.iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| *id).collect();
    let refused: Vec<&String> = results.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    eprintln!(
        "burst: {} granted, refusals {:?}",
        granted.len(),
        refused.iter().fold(std::collections::BTreeMap::<&str, usize>::new(), |mut m, c| {
            *m.entry(c.as_str()).or_default() += 1;
            m
        })
    );

    // The survivor owns the shard within seconds: it answers reservations itself.
    let mut took_over = None;
    while killed_at.elapsed() < Duration::from_secs(15) {
        let (status, _) = reserve_at(&app, &standby.base_url, Uuid::now_v7(), shop, product, &token).await;
        if status == 201 || status == 409 {
            took_over = Some(killed_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took_over = took_over.expect("the survivor took the shard over");
    eprintln!("took over {took_over:?} after the kill");
    assert!(standby.stock.running() > 0, "the survivor runs the product's actor now");

    // Nothing oversold, nothing doubled, nothing a client was told about lost.
    let (on_hand, reserved) = app.assert_consistent(product).await;
    assert_eq!(on_hand, 100);
    let held: Vec<(Uuid, i64)> = sqlx::query_as(
        "select reservation_id, count(*) from stock.reservation_lines
          where product_id = $1 and status = 'HELD' group by reservation_id",
    )
    .bind(product)
    .fetch_all(&app.db.admin)
    .await
    .unwrap();
    assert!(held.iter().all(|(_, n)| *n == 1), "each reservation holds its one unit once");
    let held: HashSet<Uuid> = held.into_iter().map(|(id, _)| id).collect();
    assert_eq!(i64::try_from(held.len()).unwrap(), reserved);
    for id in &granted {
        assert!(held.contains(id), "granted reservation {id} is held");
    }
    // Holds nobody was told about are the burst's own (answered too late): the caller
    // releases them by id, as the order service does; none comes from nowhere.
    let attempted: HashSet<Uuid> = ids.iter().copied().collect();
    let extra = held.iter().filter(|id| !attempted.contains(id)).count();
    assert!(extra <= 2, "only the two ownership probes are held besides the burst");

    // What is free can be reserved, exactly, and no more.
    let free = on_hand - reserved;
    for _ in 0..free {
        let (status, body) = reserve_at(&app, &standby.base_url, Uuid::now_v7(), shop, product, &token).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = reserve_at(&app, &standby.base_url, Uuid::now_v7(), shop, product, &token).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("STOCK_INSUFFICIENT")), "{body}");
    assert_eq!(app.assert_consistent(product).await, (100, 100));
    standby.shutdown.cancel();
}

/// Reserves one unit of `product` for 10 minutes at the instance at `base`, under `id`.
async fn reserve_at(
    app: &TestApp,
    base: &str,
    id: Uuid,
    shop: Uuid,
    product: Uuid,
    token: &str,
) -> (u16, serde_json::Value) {
    let body = json!({"reservationId": id, "shopId": shop, "lines": [{"productId": product, "quantity": 1}], "ttlSeconds": 600});
    app.call_at(base, "POST", "/reservations", Some(body), Some(token)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_owner_expires_the_holds_it_inherits_without_being_asked() {
    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Cable", "500.00", 10).await;
    let (status, hold) = app.reserve_http(shop, json!([{"productId": product, "quantity": 3}]), 2).await;
    assert_eq!(status, 201, "{hold}");
    let id: Uuid = serde_json::from_value(hold["reservationId"].clone()).unwrap();

    // The owner goes; the next instance is asked nothing about this shop, yet it learns it
    // owns the shard (its pings) and its actor lets the hold expire on time.
    app.shutdown.cancel();
    let next = app.spawn_peer().await;
    let start = Instant::now();
    let mut status = String::new();
    while start.elapsed() < Duration::from_secs(15) {
        status = sqlx::query_scalar("select status from stock.reservations where reservation_id = $1")
            .bind(id)
            .fetch_one(&app.db.admin)
            .await
            .unwrap();
        if status == "EXPIRED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "EXPIRED", "the inherited hold expired untouched");
    assert_eq!(app.assert_consistent(product).await, (10, 0));
    next.shutdown.cancel();
}

/// The order service's events reach whichever instance takes them from the shared queue. One
/// not owning the shop's shard commits or releases through the owner, by the shop the event
/// names (no read of the reservation's shop), and runs no actor itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_event_on_the_instance_not_owning_the_shard_settles_through_the_owner() {
    use platform::ids::{ReservationId, ShopId};

    // Rounds long enough that the owner keeps every shard for the whole test.
    let app = crate::helpers::spawn_app_with(|c| c.shard_ping_every = Duration::from_secs(600)).await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Cable", "500.00", 10).await;
    let standby = app.spawn_peer().await;
    let hold = |quantity: i64| {
        let app = &app;
        async move {
            let (status, hold) =
                app.reserve_http(shop, json!([{"productId": product, "quantity": quantity}]), 600).await;
            assert_eq!(status, 201, "{hold}");
            ReservationId(serde_json::from_value(hold["reservationId"].clone()).unwrap())
        }
    };
    let (sold, released) = (hold(3).await, hold(2).await);
    let meta = bus::MessageMeta::default();

    let view = standby.stock.commit_in(Some(ShopId(shop)), sold, None, &meta).await.unwrap();
    assert_eq!(serde_json::to_value(&view).unwrap()["status"], "COMMITTED");
    standby.stock.release_in(Some(ShopId(shop)), released).await.unwrap();
    // Redelivered: the same answers, nothing moves twice.
    standby.stock.commit_in(Some(ShopId(shop)), sold, None, &meta).await.unwrap();
    standby.stock.release_in(Some(ShopId(shop)), released).await.unwrap();

    assert_eq!(standby.stock.running(), 0, "the standby ran no actor");
    assert_eq!(app.assert_consistent(product).await, (7, 0), "3 sold, 2 back on sale");
    standby.shutdown.cancel();
}

/// The overlap of a hand-over: the old owner, cut off from the broker but still finishing
/// what it had in hand, and the new owner (its actors rebuilt from the rows) both hold the
/// same reservations in memory and settle them at once, one committing while the other
/// commits or releases. Each reservation settles once and moves the level once: what is on
/// hand is what was received less what the committed reservations took, and what stays
/// reserved is exactly an unrelated hold nobody settled (room enough that lowering
/// `reserved` twice would not run into its `>= 0` constraint).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_settling_one_reservation_move_the_level_once() {
    use cashvio_stock::reservations::{Stock, StockError, Tuning};
    use platform::ids::ReservationId;

    let app = spawn_app().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Phone charger", "1500.00", 200).await;
    app.reserve_rpc(shop, json!([{"productId": product, "quantity": 100}]), 600).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..40 {
        let hold = app.reserve_rpc(shop, json!([{"productId": product, "quantity": 1}]), 600).await.unwrap();
        ids.push(ReservationId(serde_json::from_value::<Uuid>(hold["reservationId"].clone()).unwrap()));
    }
    let old = app.stock.local();
    let pool = app.db.service_pool(ROLE, "stock").unwrap();
    let tuning = Tuning {
        idle_after: Duration::from_secs(30),
        call_timeout: Duration::from_secs(20),
        writers: 2,
        gather: Duration::from_millis(2),
    };
    let new = Stock::start(pool, tuning).await.unwrap();
    // The new owner starts the actors of products with holds, as on a hand-over: both now
    // hold all 41 reservations in memory.
    assert_eq!(new.revive_held(|_| true).await.unwrap(), 1);

    let meta = bus::MessageMeta::default();
    let settle = ids.iter().enumerate().map(|(i, &id)| {
        let (old, new, meta) = (&old, &new, &meta);
        async move {
            let by_old = old.commit(id, None, meta);
            let by_new = async {
                if i % 2 == 0 {
                    new.commit(id, None, meta).await
                } else {
                    new.release(id).await
                }
            };
            let (a, b) = tokio::join!(by_old, by_new);
            let busy = |r: &Result<_, StockError>| matches!(r, Err(StockError::Busy));
            let refused = (busy(&a), busy(&b));
            // A batch refused for another reservation's sake settled nothing: commit again,
            // as the order service's retry or its consumer of the sale would.
            if refused == (true, true) {
                let mut again = old.commit(id, None, meta).await;
                for _ in 0..50 {
                    if !busy(&again) {
                        break;
                    }
                    again = old.commit(id, None, meta).await;
                }
                assert!(again.is_ok(), "committed at last: {again:?}");
            }
            refused
        }
    });
    let refusals = futures::future::join_all(settle).await;
    let fenced = refusals.iter().filter(|(a, b)| *a || *b).count();
    eprintln!("settlements refused as settled elsewhere: {fenced} of 40");

    let ids: Vec<Uuid> = ids.iter().map(|r| r.0).collect();
    let count = |status: &'static str| {
        let ids = ids.clone();
        let db = &app.db.admin;
        async move {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from stock.reservations where reservation_id = any($1) and status = $2",
            )
            .bind(ids)
            .bind(status)
            .fetch_one(db)
            .await
            .unwrap()
        }
    };
    assert_eq!(count("HELD").await, 0, "every reservation settled");
    let committed = count("COMMITTED").await;
    assert!(committed >= 20, "the even ones were committed by both: {committed}");
    assert_eq!(app.assert_consistent(product).await, (200 - committed, 100), "one level move per settlement");
    new.stop_all();
}

/// How many shards the instance at `base` owns, as its metrics say.
async fn owned_at(app: &TestApp, base: &str) -> usize {
    let text = app.http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().filter(|l| l.starts_with("cashvio_stock_shard_owned") && l.ends_with(" 1")).count()
}

/// Two instances spread the shards between them: the first owns all eight until the second
/// joins, then lets one go per round until each owns four (the broker hands a shard let go
/// to the next consumer in line), and stays so. Reservations of shops on every shard keep
/// being served through both instances meanwhile, and none is held twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_spread_the_shards_between_them() {
    let app = crate::helpers::spawn_app_with(|c| c.shard_ping_every = Duration::from_millis(300)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while owned_at(&app, &app.base_url).await < 8 {
        assert!(Instant::now() < deadline, "the only instance owns every shard");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peer = app.spawn_peer().await;
    // A shop on each shard, with a product to reserve.
    let mut shops = Vec::new();
    while shops.len() < 8 {
        let shop = app.seed_shop().await;
        let k = contracts::routing::shard_of(shop, 8);
        if !shops.iter().any(|(s, _, _)| contracts::routing::shard_of(*s, 8) == k) {
            let product = app.bulk_product(shop, "Cable", "100.00", 1_000).await;
            shops.push((shop, product, app.staff(shop).await));
        }
    }
    let reserving = async {
        let mut granted = 0;
        for round in 0..40 {
            for (shop, product, token) in &shops {
                let base = if round % 2 == 0 { &app.base_url } else { &peer.base_url };
                let (status, _) = reserve_at(&app, base, Uuid::now_v7(), *shop, *product, token).await;
                // A request caught in a hand-over may be refused as busy; nothing else.
                assert!(status == 201 || status == 503, "reserve answered {status}");
                granted += usize::from(status == 201);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        granted
    };
    let spreading = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (a, b) = (owned_at(&app, &app.base_url).await, owned_at(&app, &peer.base_url).await);
            if (a, b) == (4, 4) {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "the shards were not spread: {a} and {b}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (granted, spread_at) = tokio::join!(reserving, spreading);
    eprintln!("{granted} of 320 reservations granted while the shards spread");
    assert!(granted >= 300, "the shards stayed served while they moved: {granted} of 320");
    // And stays spread.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!((owned_at(&app, &app.base_url).await, owned_at(&app, &peer.base_url).await), (4, 4));
    eprintln!("spread {:?} ago", spread_at.elapsed());
    for (_, product, _) in &shops {
        app.assert_consistent(*product).await;
    }
    peer.shutdown.cancel();
}

/// On one machine (`STOCK_SPREAD_SHARDS=false`) the first instance keeps every shard through
/// many rounds with a second serving beside it; the second forwards and runs no actor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_spreading_the_first_instance_keeps_every_shard() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.shard_ping_every = Duration::from_millis(300);
        c.spread_shards = false;
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while owned_at(&app, &app.base_url).await < 8 {
        assert!(Instant::now() < deadline, "the only instance owns every shard");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peer = app.spawn_peer().await;
    let shop = app.seed_shop().await;
    let product = app.bulk_product(shop, "Cable", "100.00", 10).await;
    let token = app.staff(shop).await;
    // Ten rounds: spreading would have moved four shards by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body) = reserve_at(&app, &peer.base_url, Uuid::now_v7(), shop, product, &token).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((owned_at(&app, &app.base_url).await, owned_at(&app, &peer.base_url).await), (8, 0));
    assert_eq!(peer.stock.running(), 0, "the second forwarded");
    assert_eq!(app.assert_consistent(product).await, (10, 1));
    peer.shutdown.cancel();
}

/// A shard let go comes back: the first instance holds a reservation in a shop of its
/// highest shard, lets that shard go when the second joins (its actors of it stop), the
/// second takes a short hold there and stops; the first gains the shard again, serves it
/// from the rows (both holds known), expires the short one on time and keeps the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_let_go_and_gained_back_is_served_from_the_rows() {
    let app = crate::helpers::spawn_app_with(|c| c.shard_ping_every = Duration::from_millis(300)).await;
    // A shop on shard 7, the one the first instance lets go first.
    let shop = loop {
        let shop = app.seed_shop().await;
        if contracts::routing::shard_of(shop, 8) == 7 {
            break shop;
        }
    };
    let product = app.bulk_product(shop, "Cable", "100.00", 50).await;
    let token = app.staff(shop).await;
    let (status, body) = reserve_at(&app, &app.base_url, Uuid::now_v7(), shop, product, &token).await;
    assert_eq!(status, 201, "{body}");

    let peer = app.spawn_peer().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (owned_at(&app, &app.base_url).await, owned_at(&app, &peer.base_url).await) != (4, 4) {
        assert!(Instant::now() < deadline, "the shards were not spread");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A short hold, taken by the shard's owner now (the peer), through the first instance.
    let short = json!({"reservationId": Uuid::now_v7(), "shopId": shop,
        "lines": [{"productId": product, "quantity": 3}], "ttlSeconds": 2});
    let (status, body) = app.call_at(&app.base_url, "POST", "/reservations", Some(short), Some(&token)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.assert_consistent(product).await, (50, 4));

    peer.shutdown.cancel();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (on_hand, reserved) = app.assert_consistent(product).await;
        if (on_hand, reserved) == (50, 1) {
            break;
        }
        assert!(Instant::now() < deadline, "the short hold never expired: {on_hand}/{reserved}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(owned_at(&app, &app.base_url).await, 8, "the first instance owns every shard again");
    // And it serves the shard: 49 more fit, the 50th does not.
    let (status, body) = app.reserve_http(shop, json!([{"productId": product, "quantity": 49}]), 60).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.reserve_http(shop, json!([{"productId": product, "quantity": 1}]), 60).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("STOCK_INSUFFICIENT")), "{body}");
}
