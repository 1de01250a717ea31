//! Stock's requests, parsed once at the edge (HTTP, RPC, events) into commands the
//! reservation core trusts: nothing behind this module validates a count, a time to live or
//! a line's shape again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use contracts::stock::ReserveRequest;
use platform::ids::{ProductId, ReservationId, ShopId};

use crate::reservations::StockError;

platform::text_enum! {
    /// How a product is counted (`stock.products.tracking`).
    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum Tracking { Bulk => "BULK", Serialized => "SERIALIZED" }
}

platform::text_enum! {
    /// What moved stock (`stock.movements.kind`): the ledger's kinds.
    pub enum MovementKind {
        Receipt => "RECEIPT",
        Adjustment => "ADJUSTMENT",
        Reserve => "RESERVE",
        Release => "RELEASE",
        Expire => "EXPIRE",
        Sale => "SALE",
        Return => "RETURN",
    }
}

platform::text_enum! {
    /// A reservation's (and each of its lines') state (`stock.reservations.status`).
    pub enum ReservationStatus { Held => "HELD", Committed => "COMMITTED", Released => "RELEASED", Expired => "EXPIRED" }
}

platform::text_enum! {
    /// A serialized unit's state (`stock.items.status`).
    pub enum ItemStatus { Available => "AVAILABLE", Reserved => "RESERVED", Sold => "SOLD", Removed => "REMOVED" }
}

platform::typed_id!(
    /// A serialized unit (`stock.items`).
    ItemId
);

pub const MAX_LINES: usize = 100;
pub const MAX_TTL_SECS: u32 = 24 * 3600;
pub const MAX_QUANTITY: i64 = 100_000;

/// What a line asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Wanted {
    /// A count of a product (bulk, or any units of a serialized one).
    Quantity { product_id: ProductId, quantity: i64 },
    /// One serialized unit by its barcode (optionally also naming its product).
    Unit { barcode: String, product_id: Option<ProductId> },
}

/// A valid reservation request: 1 to `MAX_LINES` lines, each a count of 1 to `MAX_QUANTITY`
/// or one unit by barcode, with a time to live of 1 s to `MAX_TTL_SECS`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReserveCommand {
    pub reservation_id: ReservationId,
    pub shop_id: ShopId,
    pub ttl_seconds: u32,
    /// In request order: a line's position is its number.
    pub lines: Vec<Wanted>,
}

impl ReserveCommand {
    pub fn parse(req: &ReserveRequest) -> Result<Self, StockError> {
        if req.lines.is_empty() || req.lines.len() > MAX_LINES {
            return Err(StockError::Invalid(format!("1 to {MAX_LINES} lines")));
        }
        if req.ttl_seconds == 0 || req.ttl_seconds > MAX_TTL_SECS {
            return Err(StockError::Invalid(format!("ttlSeconds must be 1 to {MAX_TTL_SECS}")));
        }
        let lines = req
            .lines
            .iter()
            .map(|line| match (line.product_id, &line.barcode) {
                (product_id, Some(code)) if line.quantity == 1 => {
                    Ok(Wanted::Unit { barcode: code.clone(), product_id: product_id.map(ProductId) })
                }
                (_, Some(_)) => Err(StockError::Invalid("a barcode line reserves exactly one unit".into())),
                (Some(product_id), None) if (1..=MAX_QUANTITY).contains(&line.quantity) => {
                    Ok(Wanted::Quantity { product_id: ProductId(product_id), quantity: line.quantity })
                }
                (Some(_), None) => Err(StockError::Invalid(format!("quantity must be 1 to {MAX_QUANTITY}"))),
                (None, None) => Err(StockError::Invalid("each line needs productId or barcode".into())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            reservation_id: ReservationId(req.reservation_id),
            shop_id: ShopId(req.shop_id),
            ttl_seconds: req.ttl_seconds,
            lines,
        })
    }

    pub fn expires_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::seconds(i64::from(self.ttl_seconds))
    }

    /// The barcodes to resolve to units.
    pub fn barcodes(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Wanted::Unit { barcode, .. } => Some(barcode.clone()),
                Wanted::Quantity { .. } => None,
            })
            .collect()
    }

    /// What each product's actor is asked for, given the shop's units by barcode
    /// (barcode → (unit, product)).
    pub fn per_product(
        &self,
        units: &BTreeMap<String, (ItemId, ProductId)>,
    ) -> Result<BTreeMap<ProductId, Vec<crate::reservations::Want>>, StockError> {
        use crate::reservations::Want;
        let mut by_product: BTreeMap<ProductId, Vec<Want>> = BTreeMap::new();
        for (i, line) in self.lines.iter().enumerate() {
            let line_no = i32::try_from(i).unwrap_or(i32::MAX); // at most MAX_LINES
            match line {
                Wanted::Quantity { product_id, quantity } => by_product.entry(*product_id).or_default().push(Want {
                    line_no,
                    quantity: *quantity,
                    item_id: None,
                }),
                Wanted::Unit { barcode, product_id } => {
                    let (item, product) =
                        units.get(barcode).ok_or_else(|| StockError::UnitNotFound(barcode.clone()))?;
                    if product_id.is_some_and(|p| p != *product) {
                        return Err(StockError::Invalid(format!("barcode {barcode} is not a unit of that product")));
                    }
                    by_product.entry(*product).or_default().push(Want { line_no, quantity: 1, item_id: Some(item.0) });
                }
            }
        }
        Ok(by_product)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::stock::ReserveLine;
    use uuid::Uuid;

    fn req(lines: Vec<ReserveLine>, ttl: u32) -> ReserveRequest {
        ReserveRequest { reservation_id: Uuid::now_v7(), shop_id: Uuid::now_v7(), lines, ttl_seconds: ttl }
    }

    fn qty(product: Uuid, quantity: i64) -> ReserveLine {
        ReserveLine { product_id: Some(product), barcode: None, quantity }
    }

    fn unit(code: &str, product: Option<Uuid>, quantity: i64) -> ReserveLine {
        ReserveLine { product_id: product, barcode: Some(code.into()), quantity }
    }

    #[test]
    fn a_valid_request_keeps_its_lines_in_order() {
        let p = Uuid::now_v7();
        let cmd = ReserveCommand::parse(&req(vec![qty(p, 3), unit("SN1", None, 1)], 900)).unwrap();
        assert_eq!(
            cmd.lines,
            vec![
                Wanted::Quantity { product_id: ProductId(p), quantity: 3 },
                Wanted::Unit { barcode: "SN1".into(), product_id: None }
            ]
        );
        assert_eq!(cmd.barcodes(), vec!["SN1".to_owned()]);
    }

    #[test]
    fn invalid_requests_are_refused_with_what_is_wrong() {
        let p = Uuid::now_v7();
        let cases = [
            (req(vec![], 900), "lines"),
            (req((0..101).map(|_| qty(p, 1)).collect(), 900), "lines"),
            (req(vec![qty(p, 1)], 0), "ttlSeconds"),
            (req(vec![qty(p, 1)], MAX_TTL_SECS + 1), "ttlSeconds"),
            (req(vec![qty(p, 0)], 900), "quantity"),
            (req(vec![qty(p, MAX_QUANTITY + 1)], 900), "quantity"),
            (req(vec![unit("SN1", None, 2)], 900), "exactly one unit"),
            (req(vec![ReserveLine { product_id: None, barcode: None, quantity: 1 }], 900), "productId or barcode"),
        ];
        for (r, says) in cases {
            match ReserveCommand::parse(&r) {
                Err(StockError::Invalid(m)) => assert!(m.contains(says), "{m:?} should mention {says:?}"),
                other => panic!("expected Invalid mentioning {says:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn lines_group_by_product_with_their_numbers() {
        let (a, b, item) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let cmd = ReserveCommand::parse(&req(vec![qty(a, 2), unit("SN1", Some(b), 1), qty(a, 5)], 60)).unwrap();
        let units = BTreeMap::from([("SN1".to_owned(), (ItemId(item), ProductId(b)))]);
        let per = cmd.per_product(&units).unwrap();
        let a_lines: Vec<(i32, i64)> = per[&ProductId(a)].iter().map(|w| (w.line_no, w.quantity)).collect();
        assert_eq!(a_lines, vec![(0, 2), (2, 5)]);
        assert_eq!(per[&ProductId(b)][0].item_id, Some(item));
        assert_eq!(per[&ProductId(b)][0].line_no, 1);
    }

    #[test]
    fn a_barcode_of_another_product_or_unknown_is_refused() {
        let (a, b, item) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let units = BTreeMap::from([("SN1".to_owned(), (ItemId(item), ProductId(b)))]);
        let wrong = ReserveCommand::parse(&req(vec![unit("SN1", Some(a), 1)], 60)).unwrap();
        assert!(matches!(wrong.per_product(&units), Err(StockError::Invalid(_))));
        let unknown = ReserveCommand::parse(&req(vec![unit("SN2", None, 1)], 60)).unwrap();
        assert_eq!(unknown.per_product(&units).unwrap_err(), StockError::UnitNotFound("SN2".into()));
    }
}
