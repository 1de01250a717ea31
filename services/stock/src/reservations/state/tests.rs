//! The product's rules without a database: each transition, and a seeded property test that
//! random request sequences keep the invariants and that the rows a batch writes add up to
//! exactly what changed in memory.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use bus::MessageMeta;
use platform::Currency;

use super::*;

fn bulk(on_hand: i64) -> ProductStock {
    ProductStock {
        product_id: Uuid::now_v7(),
        shop_id: Uuid::now_v7(),
        name: "Kettle".into(),
        tracking: Tracking::Bulk,
        currency: Currency::LKR,
        price_minor: 450_000,
        warranty_months: 0,
        loyalty_points: 2,
        keeping_units: 0,
        on_hand,
        reserved: 0,
        units: HashMap::new(),
        discounts: Vec::new(),
        holds: HashMap::new(),
        settled: HashMap::new(),
        available_at_batch_start: on_hand,
    }
}

fn serialized(units: &[&str]) -> ProductStock {
    let mut p = bulk(0);
    p.tracking = Tracking::Serialized;
    for code in units {
        let unit = Unit { barcode: (*code).into(), price_minor: 1_000, warranty_months: Some(12), held_by: None };
        p.units.insert(Uuid::now_v7(), unit);
    }
    p
}

fn want(quantity: i64) -> Vec<Want> {
    vec![Want { line_no: 0, quantity, item_id: None }]
}

fn reserve(p: &mut ProductStock, id: Uuid, quantity: i64) -> Step<Held> {
    let shop = p.shop_id;
    p.reserve(shop, id, Utc::now() + Duration::minutes(15), &want(quantity), Utc::now())
}

/// Marks every hold written, as a successful flush does.
fn written(p: &mut ProductStock) {
    for h in p.holds.values_mut() {
        h.persisted = true;
    }
}

fn adjustment(delta: i64) -> Adjustment {
    Adjustment {
        delta,
        kind: crate::domain::MovementKind::Adjustment,
        reason: Some("count".into()),
        actor_id: None,
        unit_cost_minor: None,
        source_id: None,
        supplier_id: None,
        meta: MessageMeta::default(),
    }
}

#[test]
fn a_bulk_reservation_holds_what_is_available_and_refuses_more() {
    let mut p = bulk(5);
    let a = Uuid::now_v7();
    assert!(matches!(reserve(&mut p, a, 3), Step::Apply(Op::Reserve { .. })));
    assert_eq!(p.level(), Level { on_hand: 5, reserved: 3, available: 2 });
    match reserve(&mut p, Uuid::now_v7(), 3) {
        Step::Answer(Err(StockError::Insufficient { requested: 3, available: 2, .. })) => {}
        other => panic!("expected Insufficient, got {other:?}"),
    }
    assert_eq!(p.reserved, 3, "a refusal changes nothing");
    let other_shop = p.reserve(Uuid::now_v7(), Uuid::now_v7(), Utc::now(), &want(1), Utc::now());
    assert!(matches!(other_shop, Step::Answer(Err(StockError::ProductNotFound(_)))));
}

#[test]
fn a_retried_reservation_gets_the_same_lines_and_no_second_hold() {
    let mut p = bulk(5);
    let (a, shop, until) = (Uuid::now_v7(), p.shop_id, Utc::now() + Duration::minutes(15));
    let _ = p.reserve(shop, a, until, &want(2), Utc::now());
    assert!(
        matches!(p.reserve(shop, a, until, &want(2), Utc::now()), Step::Answer(Err(StockError::Busy))),
        "still being written"
    );
    written(&mut p);
    match p.reserve(shop, a, until, &want(2), Utc::now()) {
        Step::Answer(Ok(held)) => assert_eq!(held.lines.iter().map(|l| l.quantity).sum::<i64>(), 2),
        other => panic!("expected the same lines, got {other:?}"),
    }
    assert_eq!(p.reserved, 2);
}

/// A checkout taking over an abandoned attempt retries its reservation long after the first
/// try: the hold must not expire under it (it did, once: a sale booked 5 ms after its hold
/// expired, and its stock never left).
#[test]
fn a_late_retry_extends_the_hold_and_its_old_clock_does_not_release_it() {
    let mut p = bulk(5);
    let (a, shop, t0) = (Uuid::now_v7(), p.shop_id, Utc::now());
    let _ = p.reserve(shop, a, t0 + Duration::seconds(120), &want(2), t0);
    written(&mut p);
    let later = t0 + Duration::seconds(119);
    match p.reserve(shop, a, later + Duration::seconds(120), &want(2), later) {
        Step::Apply(Op::Extend { expires_at, .. }) => assert_eq!(expires_at, later + Duration::seconds(120)),
        other => panic!("expected the hold extended, got {other:?}"),
    }
    let rows = p
        .batch(&[Op::Extend { reservation_id: a, expires_at: later + Duration::seconds(120) }], MessageMeta::default());
    assert_eq!(rows.extended.len(), 1);
    assert!(rows.movements.is_empty() && rows.reserved_delta == 0, "an extension moves no stock");
    // The first clock fires at t0 + 120 s: the hold lives on.
    assert!(matches!(p.expire(a, t0 + Duration::seconds(120)), Step::Answer(Ok(()))));
    assert_eq!(p.reserved, 2);
    assert!(matches!(p.expire(a, later + Duration::seconds(121)), Step::Apply(Op::Release { expired: true, .. })));
    assert_eq!(p.reserved, 0);
}

#[test]
fn commit_and_release_wait_for_the_first_write_then_settle_once() {
    let mut p = bulk(5);
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let _ = reserve(&mut p, a, 2);
    let _ = reserve(&mut p, b, 1);
    assert!(matches!(p.commit(a, None), Step::Defer));
    assert!(matches!(p.release(b, false), Step::Defer));
    assert!(matches!(p.release(b, true), Step::Answer(Ok(()))), "an unwritten hold has no clock yet");
    written(&mut p);
    assert!(matches!(p.pin(a), Step::Answer(Ok(()))));
    assert!(matches!(p.commit(a, Some(Uuid::now_v7())), Step::Apply(Op::Commit { quantity: 2, .. })));
    assert!(matches!(p.release(b, false), Step::Apply(Op::Release { quantity: 1, expired: false, .. })));
    assert_eq!(p.level(), Level { on_hand: 3, reserved: 0, available: 3 });
    assert!(matches!(p.commit(a, None), Step::Answer(Ok(()))), "committing again answers the same");
    assert!(matches!(p.release(a, false), Step::Answer(Err(StockError::ReservationCommitted))));
    assert!(matches!(p.release(b, false), Step::Answer(Ok(()))), "releasing again is fine");
    assert!(matches!(p.commit(b, None), Step::Answer(Err(StockError::ReservationExpired))));
    assert!(matches!(p.commit(Uuid::now_v7(), None), Step::Lookup), "unknown here: the rows decide");
    assert!(matches!(reserve(&mut p, a, 1), Step::Answer(Err(StockError::ReservationCommitted))));
}

#[test]
fn settled_answers_follow_the_rows() {
    use crate::domain::ReservationStatus::{Committed, Expired, Held, Released};
    assert_eq!(settled_answer(None, true), Err(StockError::ReservationNotFound));
    assert_eq!(settled_answer(Some(Committed), true), Ok(()));
    assert_eq!(settled_answer(Some(Committed), false), Err(StockError::ReservationCommitted));
    assert_eq!(settled_answer(Some(Held), true), Err(StockError::Busy));
    assert_eq!(settled_answer(Some(Expired), true), Err(StockError::ReservationExpired));
    assert_eq!(settled_answer(Some(Released), false), Err(StockError::ReservationExpired));
}

#[test]
fn an_adjustment_never_takes_on_hand_below_what_is_reserved() {
    let mut p = bulk(5);
    let _ = reserve(&mut p, Uuid::now_v7(), 4);
    assert!(matches!(p.adjust(adjustment(-2)), Step::Answer(Err(StockError::Insufficient { available: 1, .. }))));
    assert!(matches!(p.adjust(adjustment(-1)), Step::Apply(_)));
    assert_eq!(p.level(), Level { on_hand: 4, reserved: 4, available: 0 });
    let mut s = serialized(&["SN1"]);
    assert!(matches!(s.adjust(adjustment(1)), Step::Answer(Err(StockError::Invalid(_)))));
}

#[test]
fn units_are_held_one_by_one_and_a_held_unit_cannot_be_taken_or_removed() {
    let mut p = serialized(&["SN1", "SN2", "SN3"]);
    let sn1 = p.units.iter().find(|(_, u)| u.barcode == "SN1").map(|(id, _)| *id).unwrap();
    let shop = p.shop_id;
    let by_code =
        vec![Want { line_no: 0, quantity: 1, item_id: Some(sn1) }, Want { line_no: 1, quantity: 2, item_id: None }];
    let a = Uuid::now_v7();
    let Step::Apply(op) = p.reserve(shop, a, Utc::now() + Duration::minutes(5), &by_code, Utc::now()) else {
        panic!("three units are free")
    };
    assert_eq!(p.level(), Level { on_hand: 3, reserved: 3, available: 0 });
    let lines = &p.holds[&a].lines;
    assert_eq!(lines.iter().map(|l| (l.line_no, l.unit_no)).collect::<Vec<_>>(), vec![(0, 0), (1, 0), (1, 1)]);
    assert!(lines.iter().all(|l| l.warranty_until.is_some()), "each unit's own warranty");
    let again = vec![Want { line_no: 0, quantity: 1, item_id: Some(sn1) }];
    let taken = p.reserve(shop, Uuid::now_v7(), Utc::now(), &again, Utc::now());
    assert!(matches!(taken, Step::Answer(Err(StockError::UnitUnavailable { .. }))));
    assert!(matches!(p.remove_unit(sn1, "broken".into(), None), Step::Answer(Err(StockError::UnitUnavailable { .. }))));
    let b = p.batch(&[op], MessageMeta::default());
    assert_eq!(b.held_units.len(), 3);
    assert_eq!(b.movements.len(), 3, "one ledger row per unit");
    assert_eq!((b.on_hand_delta, b.reserved_delta), (0, 0), "units are the level of a serialized product");
}

#[test]
fn a_batch_announces_a_low_stock_crossing_once() {
    let mut p = bulk(10);
    p.keeping_units = 4;
    let a = Uuid::now_v7();
    let _ = reserve(&mut p, a, 7);
    written(&mut p);
    let Step::Apply(op) = p.commit(a, None) else { panic!("held") };
    let b = p.batch(&[op], MessageMeta::default());
    assert_eq!(b.level_changed, Some(Level { on_hand: 3, reserved: 0, available: 3 }));
    assert_eq!(b.low.as_ref().map(|l| (l.available, l.keeping_units)), Some((3, 4)));
    p.available_at_batch_start = p.available();
    let Step::Apply(op) = p.adjust(adjustment(-1)) else { panic!("3 on hand") };
    assert!(p.batch(&[op], MessageMeta::default()).low.is_none(), "already below: no second notice");
}

/// Random requests on one bulk product; after each flush the batch's rows sum to exactly
/// what changed in memory, and reserved stays within 0..=on_hand.
#[test]
fn random_request_sequences_keep_the_level_and_the_ledger_in_step() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_122);
    for _ in 0..200 {
        let mut p = bulk(rng.gen_range(0..50));
        let mut held: Vec<Uuid> = Vec::new();
        let (mut ledger_on, mut ledger_res) = (p.on_hand, 0i64);
        for _ in 0..20 {
            let before = p.level();
            let mut ops = Vec::new();
            for _ in 0..rng.gen_range(1..8) {
                let step = match rng.gen_range(0..5) {
                    0 | 1 => {
                        let id = Uuid::now_v7();
                        held.push(id);
                        reserve(&mut p, id, rng.gen_range(1..6)).map_op()
                    }
                    2 if !held.is_empty() => {
                        let id = held.swap_remove(rng.gen_range(0..held.len()));
                        p.commit(id, None).map_op()
                    }
                    3 if !held.is_empty() => {
                        let id = held.swap_remove(rng.gen_range(0..held.len()));
                        p.release(id, rng.gen_bool(0.5)).map_op()
                    }
                    _ => p.adjust(adjustment(rng.gen_range(-5..10))).map_op(),
                };
                ops.extend(step);
            }
            let b = p.batch(&ops, MessageMeta::default());
            written(&mut p);
            p.available_at_batch_start = p.available();
            let after = p.level();
            assert!(0 <= after.reserved && after.reserved <= after.on_hand, "{after:?}");
            assert_eq!(b.on_hand_delta, after.on_hand - before.on_hand);
            assert_eq!(b.reserved_delta, after.reserved - before.reserved);
            ledger_on += b.movements.iter().map(|m| m.on_hand).sum::<i64>();
            ledger_res += b.movements.iter().map(|m| m.reserved).sum::<i64>();
            assert_eq!((ledger_on, ledger_res), (after.on_hand, after.reserved), "the ledger sums to the level");
        }
    }
}

trait MapOp {
    fn map_op(self) -> Option<Op>;
}

impl<T> MapOp for Step<T> {
    fn map_op(self) -> Option<Op> {
        match self {
            Step::Apply(op) => Some(op),
            _ => None,
        }
    }
}
