//! Reservation throughput, three ways, in one process and one run, printed:
//! (a) the product actors with group commit (the service's core),
//! (b) a row-lock baseline: `select ... for update`, then update (as Saleor does),
//! (c) a guarded single `update ... where on_hand - reserved >= n`.
//! Each way writes the same records per reservation (header, line, ledger movement, level).
//! One hot product and 1,000 products spread evenly; 1, 16, 64 and 256 concurrent clients;
//! zero oversell checked after every run.
//!
//! Run: `cargo bench -p cashvio-stock --bench reserve` (needs PostgreSQL; ~2 minutes).
#![allow(clippy::unwrap_used, reason = "a benchmark stops with the failure")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cashvio_stock::domain::ReserveCommand;
use cashvio_stock::reservations::{Stock, Tuning};
use contracts::stock::{ReserveLine, ReserveRequest};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use testkit::TestDb;
use uuid::Uuid;

const RUN: Duration = Duration::from_secs(3);
const STOCK: i32 = 50_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    Actors,
    RowLock,
    Guarded,
}

struct Outcome {
    ops: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
}

async fn products(pool: &PgPool, shop: Uuid, n: usize) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "insert into stock.products (product_id, shop_id, name, tracking, sell_price_minor)
         select id, $2, 'Bench product', 'BULK', 1000 from unnest($1::uuid[]) as id",
    )
    .bind(&ids)
    .bind(shop)
    .execute(pool)
    .await
    .expect("products");
    sqlx::query(
        "insert into stock.levels (product_id, shop_id, on_hand) select id, $2, $3 from unnest($1::uuid[]) as id",
    )
    .bind(&ids)
    .bind(shop)
    .bind(STOCK)
    .execute(pool)
    .await
    .expect("levels");
    sqlx::query(
        "insert into stock.movements (shop_id, product_id, kind, on_hand_delta) select $2, id, 'RECEIPT', $3 from unnest($1::uuid[]) as id",
    )
    .bind(&ids)
    .bind(shop)
    .bind(STOCK)
    .execute(pool)
    .await
    .expect("receipts");
    ids
}

/// The baselines write what the actors write for one reservation, one transaction each.
async fn baseline(pool: &PgPool, way: Way, shop: Uuid, product: Uuid) -> bool {
    let Ok(mut tx) = pool.begin().await else { return false };
    let granted = match way {
        Way::RowLock => {
            let (on_hand, reserved): (i32, i32) =
                match sqlx::query_as("select on_hand, reserved from stock.levels where product_id = $1 for update")
                    .bind(product)
                    .fetch_one(&mut *tx)
                    .await
                {
                    Ok(r) => r,
                    Err(_) => return false,
                };
            if on_hand - reserved < 1 {
                false
            } else {
                sqlx::query("update stock.levels set reserved = reserved + 1 where product_id = $1")
                    .bind(product)
                    .execute(&mut *tx)
                    .await
                    .is_ok()
            }
        }
        _ => sqlx::query(
            "update stock.levels set reserved = reserved + 1 where product_id = $1 and on_hand - reserved >= 1",
        )
        .bind(product)
        .execute(&mut *tx)
        .await
        .is_ok_and(|r| r.rows_affected() == 1),
    };
    if !granted {
        return false;
    }
    let id = Uuid::now_v7();
    let ok = sqlx::query("insert into stock.reservations (reservation_id, shop_id, expires_at) values ($1, $2, now() + interval '1 hour')")
        .bind(id)
        .bind(shop)
        .execute(&mut *tx)
        .await
        .is_ok()
        && sqlx::query(
            "insert into stock.reservation_lines (reservation_id, line_no, product_id, quantity, name, unit_price_minor)
             values ($1, 0, $2, 1, 'Bench product', 1000)",
        )
        .bind(id)
        .bind(product)
        .execute(&mut *tx)
        .await
        .is_ok()
        && sqlx::query("insert into stock.movements (shop_id, product_id, kind, reserved_delta, reservation_id) values ($1, $2, 'RESERVE', 1, $3)")
            .bind(shop)
            .bind(product)
            .bind(id)
            .execute(&mut *tx)
            .await
            .is_ok();
    ok && tx.commit().await.is_ok()
}

async fn run(
    pool: &PgPool,
    coordinator: &Stock,
    way: Way,
    shop: Uuid,
    targets: Arc<Vec<Uuid>>,
    clients: usize,
) -> Outcome {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (pool, coordinator, targets) = (pool.clone(), coordinator.clone(), targets.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = c;
            while start.elapsed() < RUN {
                let product = targets[i % targets.len()];
                i += clients;
                let t = Instant::now();
                let ok = match way {
                    Way::Actors => {
                        let req = ReserveRequest {
                            reservation_id: Uuid::now_v7(),
                            shop_id: shop,
                            lines: vec![ReserveLine { product_id: Some(product), barcode: None, quantity: 1 }],
                            ttl_seconds: 3_600,
                        };
                        let cmd = ReserveCommand::parse(&req).unwrap();
                        coordinator.reserve(&cmd, &bus::MessageMeta::default()).await.is_ok()
                    }
                    _ => baseline(&pool, way, shop, product).await,
                };
                assert!(ok, "{way:?}: a reservation failed with ample stock");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    // The p-th percentile as the element at floor(len * p / 100).
    let pct = |p: usize| all.get((all.len() * p / 100).min(all.len().saturating_sub(1))).copied().unwrap_or_default();
    Outcome { ops: all.len(), secs, p50: pct(50), p99: pct(99) }
}

/// No oversell and no drift: per product, reserved equals the held lines and the ledger.
async fn check(pool: &PgPool, targets: &[Uuid], granted: usize) {
    let (reserved, over, lines, ledger): (i64, i64, i64, i64) = sqlx::query_as(
        "select coalesce(sum(l.reserved), 0)::bigint, count(*) filter (where l.reserved > l.on_hand),
                (select count(*) from stock.reservation_lines where product_id = any($1) and status = 'HELD'),
                (select coalesce(sum(reserved_delta), 0)::bigint from stock.movements where product_id = any($1))
           from stock.levels l where l.product_id = any($1)",
    )
    .bind(targets)
    .fetch_one(pool)
    .await
    .expect("check");
    assert_eq!(over, 0, "oversold");
    assert_eq!(reserved, i64::try_from(granted).unwrap_or(-1), "reserved equals granted");
    assert_eq!((lines, ledger), (reserved, reserved), "lines and ledger agree with the level");
}

#[allow(clippy::cast_precision_loss)]
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let db = TestDb::new().await.expect("database");
        let url = db.url("cashvio_stock");
        let opts = platform::db::connect_options(&url, "stock").expect("options");
        let pool = PgPoolOptions::new().max_connections(80).connect_with(opts).await.expect("pool");
        // The service's defaults (STOCK_WRITERS, else 2 writers).
        let writers = std::env::var("STOCK_WRITERS").ok().and_then(|w| w.parse().ok()).unwrap_or(2);
        let tuning = Tuning {
            idle_after: Duration::from_secs(600),
            call_timeout: Duration::from_secs(60),
            writers,
            gather: Duration::from_millis(2),
        };
        let coordinator = Stock::start(pool.clone(), tuning).await.expect("stock");
        let shop = Uuid::now_v7();
        sqlx::query("insert into stock.shops (shop_id, name, currency) values ($1, 'Bench', 'LKR')")
            .bind(shop)
            .execute(&pool)
            .await
            .expect("shop");

        println!(
            "stock reservations, 1 unit each, {RUN:?} per run; reservations/s, p50, p99; ratio = actors / baseline"
        );
        println!(
            "{:<10} {:>7}  {:>24}  {:>24}  {:>24}  {:>7} {:>7}",
            "layout", "clients", "(a) actors", "(b) row lock", "(c) guarded update", "a/b", "a/c"
        );
        for (layout, n) in [("hot", 1usize), ("1000", 1_000)] {
            for clients in [1usize, 16, 64, 256] {
                let mut cells = Vec::new();
                let mut rates = Vec::new();
                for way in [Way::Actors, Way::RowLock, Way::Guarded] {
                    let targets = Arc::new(products(&pool, shop, n).await);
                    // Warm-up: every product once (actors start and load).
                    for p in targets.iter() {
                        match way {
                            Way::Actors => {
                                let req = ReserveRequest {
                                    reservation_id: Uuid::now_v7(),
                                    shop_id: shop,
                                    lines: vec![ReserveLine { product_id: Some(*p), barcode: None, quantity: 1 }],
                                    ttl_seconds: 3_600,
                                };
                                let cmd = ReserveCommand::parse(&req).unwrap();
                                coordinator.reserve(&cmd, &bus::MessageMeta::default()).await.expect("warm-up");
                            }
                            _ => assert!(baseline(&pool, way, shop, *p).await),
                        }
                    }
                    let out = run(&pool, &coordinator, way, shop, targets.clone(), clients).await;
                    check(&pool, &targets, out.ops + n).await;
                    let rate = out.ops as f64 / out.secs;
                    rates.push(rate);
                    cells.push(format!(
                        "{rate:>8.0}/s {:>5.1}ms {:>6.1}ms",
                        out.p50.as_secs_f64() * 1e3,
                        out.p99.as_secs_f64() * 1e3
                    ));
                }
                println!(
                    "{layout:<10} {clients:>7}  {:>24}  {:>24}  {:>24}  {:>6.1}x {:>6.1}x",
                    cells[0],
                    cells[1],
                    cells[2],
                    rates[0] / rates[1],
                    rates[0] / rates[2]
                );
            }
        }
        println!("zero oversell: checked after every run (reserved <= on hand; reserved = held lines = ledger)");
    });
}
