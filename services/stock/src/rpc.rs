//! `stock.rpc`: the order service reserves, commits and releases over RabbitMQ RPC.

use bus::{Incoming, RpcFault, RpcHandler};
use contracts::stock::{CommitRequest, ReleaseRequest, ReserveRequest};
use contracts::Rpc;
use platform::ids::{OrderId, ReservationId};

use crate::domain::ReserveCommand;
use crate::reservations::{Stock, StockError};

pub struct StockRpc {
    pub stock: Stock,
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
