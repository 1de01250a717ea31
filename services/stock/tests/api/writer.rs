//! The shared writer: a reservation of several products, written in a quiet moment, is one
//! transaction, and so is its commit (not one per product).

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::spawn_app_with;
use platform::ids::ReservationId;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quiet_reservation_of_three_products_and_its_commit_are_one_transaction_each() {
    // Generous, so that a loaded test machine cannot split a reservation; the default is 2 ms.
    let app = spawn_app_with(|c| c.gather = Duration::from_millis(500)).await;
    let shop = app.seed_shop().await;
    let mut products = Vec::new();
    for i in 0..3 {
        products.push(app.bulk_product(shop, &format!("Product {i}"), "5.00", 100).await);
    }
    let lines: Vec<serde_json::Value> = products.iter().map(|p| json!({"productId": p, "quantity": 2})).collect();
    // A quiet moment: no write for a while (the writer waits only then; under load batches
    // gather on their own).
    let quiet = || tokio::time::sleep(Duration::from_millis(20));
    for round in 0..10 {
        quiet().await;
        let view = app.reserve_rpc(shop, json!(lines), 600).await.expect("reserved");
        let id: Uuid = serde_json::from_value(view["reservationId"].clone()).unwrap();
        quiet().await;
        app.stock.commit(ReservationId(id), None, &bus::MessageMeta::default()).await.expect("committed");
        // Rows written by one transaction share its id (xmin).
        let (reserve_txs, sale_txs, reserve_rows, sale_rows): (i64, i64, i64, i64) = sqlx::query_as(
            "select count(distinct xmin::text) filter (where kind = 'RESERVE'),
                    count(distinct xmin::text) filter (where kind = 'SALE'),
                    count(*) filter (where kind = 'RESERVE'),
                    count(*) filter (where kind = 'SALE')
               from stock.movements where reservation_id = $1",
        )
        .bind(id)
        .fetch_one(&app.db.admin)
        .await
        .unwrap();
        assert_eq!((reserve_rows, sale_rows), (3, 3), "round {round}: a movement per product and step");
        assert_eq!(
            (reserve_txs, sale_txs),
            (1, 1),
            "round {round}: one transaction for the reservation, one for its commit"
        );
    }
    for p in &products {
        assert_eq!(app.assert_consistent(*p).await, (80, 0), "20 sold of 100, nothing held");
    }
}
