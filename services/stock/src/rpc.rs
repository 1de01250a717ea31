//! `stock.rpc.<k>`: the order service reserves, commits and releases over RabbitMQ RPC, on
//! the shard queue of the shop (`crate::shards`); other stock instances forward what they
//! were asked for a shard this one owns (`stock.forward`). What arrives here is done here.

use bus::{Incoming, MessageMeta, RpcFault, RpcHandler};
use contracts::stock::{CommitRequest, ReleaseRequest, ReserveRequest};
use contracts::Rpc;
use platform::ids::{OrderId, ProductId, ReservationId};

use crate::domain::{ItemId, ReserveCommand};
use crate::reservations::{Stock, StockError};
use crate::shards::{new_unit, Op, FORWARD};

pub struct StockRpc {
    /// The local side (`Stock::local`): a delivery on a shard's queue makes this instance
    /// its owner.
    pub stock: Stock,
}

impl StockRpc {
    /// An operation another instance forwarded; answers its outcome as it is (refusals too).
    async fn forwarded(&self, op: Op, meta: &MessageMeta) -> Result<serde_json::Value, StockError> {
        fn json(v: impl serde::Serialize) -> Result<serde_json::Value, StockError> {
            serde_json::to_value(v).map_err(|e| crate::reservations::internal("encoding a forwarded answer", e))
        }
        let s = &self.stock;
        match op {
            Op::Reserve(cmd) => json(s.reserve(&cmd, meta).await?),
            Op::Commit { reservation_id, order_id } => {
                json(s.commit(ReservationId(reservation_id), order_id.map(OrderId), meta).await?)
            }
            Op::Release { reservation_id } => json(s.release(ReservationId(reservation_id)).await?),
            Op::Adjust { product_id, change } => {
                json(s.adjust(ProductId(product_id), change.into_adjustment(meta)?).await?)
            }
            Op::AddUnit { product_id, item_id, barcode, price_minor, warranty_months } => {
                s.add_unit(ProductId(product_id), new_unit(item_id, barcode, price_minor, warranty_months)).await;
                json(())
            }
            Op::RemoveUnit { product_id, item_id, reason, actor_id } => {
                json(s.remove_unit(ProductId(product_id), ItemId(item_id), &reason, actor_id, meta).await?)
            }
            Op::ReturnUnit { product_id, item_id, return_id } => {
                json(s.return_unit(ProductId(product_id), ItemId(item_id), return_id, meta).await?)
            }
            Op::Ping => json(()),
            Op::Reload { product_id } => {
                s.reload(ProductId(product_id)).await;
                json(())
            }
        }
    }
}

fn fault(e: StockError) -> RpcFault {
    RpcFault { code: e.code().to_owned(), message: e.to_string() }
}

fn decode<T: serde::de::DeserializeOwned>(req: &Incoming) -> Result<T, RpcFault> {
    req.json().map_err(|e| RpcFault { code: "MALFORMED_REQUEST".into(), message: e.to_string() })
}

#[async_trait::async_trait]
impl RpcHandler for StockRpc {
    async fn handle(&self, req: &Incoming) -> Result<serde_json::Value, RpcFault> {
        let view = match req.message_type.as_str() {
            // The caller's request context (the till's checkout) goes on into stock's events.
            ReserveRequest::TYPE => match ReserveCommand::parse(&decode::<ReserveRequest>(req)?) {
                Ok(cmd) => self.stock.reserve(&cmd, &req.meta).await,
                Err(e) => Err(e),
            },
            CommitRequest::TYPE => {
                let r: CommitRequest = decode(req)?;
                self.stock.commit(ReservationId(r.reservation_id), r.order_id.map(OrderId), &req.meta).await
            }
            ReleaseRequest::TYPE => {
                self.stock.release(ReservationId(decode::<ReleaseRequest>(req)?.reservation_id)).await
            }
            FORWARD => {
                let op: Op = decode(req)?;
                let answer = self.forwarded(op, &req.meta).await;
                return serde_json::to_value(answer)
                    .map_err(|e| RpcFault { code: "INTERNAL".into(), message: e.to_string() });
            }
            other => {
                return Err(RpcFault {
                    code: "UNKNOWN_REQUEST".into(),
                    message: format!("stock.rpc does not serve {other}"),
                })
            }
        };
        let view = view.map_err(fault)?;
        serde_json::to_value(view).map_err(|e| RpcFault { code: "INTERNAL".into(), message: e.to_string() })
    }
}
