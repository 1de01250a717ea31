//! Publishing events straight onto an exchange, as another service's relay would.

use uuid::Uuid;

use bus::message::{MessageMeta, Outgoing};
use bus::Broker;
use contracts::Event;
use lapin::options::BasicPublishOptions;

/// Publishes `event` with `message_id` (pass the same id twice to simulate a redelivery)
/// and waits for the broker's confirm.
pub async fn publish<E: Event>(broker: &Broker, exchange: &str, event: &E, message_id: Uuid) {
    let ch = broker.confirm_channel().await.expect("channel");
    bus::topology::declare_exchange(&ch, exchange).await.expect("exchange");
    let out = Outgoing {
        message_id,
        message_type: E::TYPE.to_owned(),
        version: E::VERSION,
        occurred_at: chrono::Utc::now(),
        meta: MessageMeta { request_id: Some(format!("test-{message_id}")), traceparent: None },
        body: serde_json::to_vec(event).expect("json"),
    };
    let confirm = ch
        .basic_publish(exchange, event.routing_key(), BasicPublishOptions::default(), &out.body, out.properties())
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(confirm.is_ack(), "broker confirmed");
    let _ = ch.close(200, "done").await;
}

/// Publishes many events on one channel (a producer's relay does the same), waiting for all
/// confirms at the end.
pub async fn publish_all<E: Event>(broker: &Broker, exchange: &str, events: &[E]) {
    let ch = broker.confirm_channel().await.expect("channel");
    bus::topology::declare_exchange(&ch, exchange).await.expect("exchange");
    let mut confirms = Vec::with_capacity(events.len());
    for event in events {
        let out = Outgoing {
            message_id: Uuid::now_v7(),
            message_type: E::TYPE.to_owned(),
            version: E::VERSION,
            occurred_at: chrono::Utc::now(),
            meta: MessageMeta::default(),
            body: serde_json::to_vec(event).expect("json"),
        };
        let confirm = ch
            .basic_publish(exchange, event.routing_key(), BasicPublishOptions::default(), &out.body, out.properties())
            .await
            .expect("publish");
        confirms.push(confirm);
    }
    for c in confirms {
        assert!(c.await.expect("confirm").is_ack(), "broker confirmed");
    }
    let _ = ch.close(200, "done").await;
}
