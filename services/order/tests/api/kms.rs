//! KMS that stops answering: wallet calls answer a retryable 503 within seconds and change
//! nothing, cash sales go on, and wallets work again once KMS answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{kms_config, spawn_app_with};

/// A TCP relay to moto that can hold everything in flight: while stalled, bytes are taken
/// but not passed on, on new connections and pooled ones alike (KMS "unreachable").
struct Gate {
    url: String,
    stalled: Arc<AtomicBool>,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn gate() -> Gate {
    let upstream = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5000".to_owned());
    let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = stalled.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else { continue };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, flag.clone()));
            tokio::spawn(pump(sr, cw, flag.clone()));
        }
    });
    Gate { url, stalled }
}

#[tokio::test]
async fn kms_not_answering_makes_wallets_a_quick_503_while_cash_sales_go_on() {
    let gate = gate().await;
    let mut kms = kms_config();
    kms.endpoint_url = Some(gate.url.clone());
    let app = spawn_app_with(kms).await;
    let shop = app.seed_shop().await;
    let rice = app.bulk_product(shop, "Rice", "100.00", 100).await;
    let staff = app.staff(shop).await;
    let customer = app.seed_person("Sunil", "sunil-kms@example.test").await;
    let top_up = format!("/customer-wallet/{shop}/{customer}/top-up");

    gate.stalled.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (s, b) = app.call("POST", &top_up, Some(json!({"amount": "100.00", "method": "CASH"})), &staff).await;
    assert_eq!((s, b["code"].as_str()), (503, Some("WALLET_UNAVAILABLE")), "{b}");
    assert!(started.elapsed() < Duration::from_secs(15), "answered after {:?}", started.elapsed());
    // A cash sale needs no key.
    let sale = json!({"shopId": shop, "items": [{"productId": rice, "quantity": 1}], "payments": [{"method": "CASH", "amount": "100.00"}]});
    let (s, b) = app.call("POST", "/orders", Some(sale), &staff).await;
    assert_eq!(s, 201, "{b}");

    gate.stalled.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_100)).await; // the key slot's failure hold
    let (s, w) = app.call("POST", &top_up, Some(json!({"amount": "100.00", "method": "CASH"})), &staff).await;
    assert_eq!((s, w["balance"].as_str()), (201, Some("100.00")), "the refused top-up changed nothing: {w}");
}
