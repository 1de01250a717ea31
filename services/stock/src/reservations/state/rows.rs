//! The rows a batch of applied ops writes: still pure, from the state after the ops.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use bus::MessageMeta;

use super::{Op, ProductStock, Tracking};
use crate::domain::{MovementKind, ReservationStatus};
use crate::reservations::batch::{Batch, Low, Movement};

impl ProductStock {
    /// The rows and events a batch of `ops` (applied to this state already) writes.
    pub fn batch(&self, ops: &[Op], meta: MessageMeta) -> Batch {
        let mut b = Batch::new(self.product_id, self.shop_id, meta);
        for op in ops {
            self.add_to(&mut b, op);
        }
        if self.tracking == Tracking::Serialized {
            // Serialized products have no level row: their units are the level.
            b.on_hand_delta = 0;
            b.reserved_delta = 0;
        }
        let level = self.level();
        let on_hand_moved = b.on_hand_delta != 0
            || !b.sold_units.is_empty()
            || !b.returned_units.is_empty()
            || !b.removed_units.is_empty();
        if on_hand_moved {
            b.level_changed = Some(level);
        }
        // A low-stock notice when availability crossed the product's keepingUnits going down.
        if self.keeping_units > 0
            && self.available_at_batch_start > self.keeping_units
            && level.available <= self.keeping_units
        {
            b.low = Some(Low {
                product_name: self.name.clone(),
                available: level.available,
                keeping_units: self.keeping_units,
            });
        }
        b
    }

    fn add_to(&self, b: &mut Batch, op: &Op) {
        match op {
            Op::Reserve { reservation_id, expires_at } => self.add_reserve(b, *reservation_id, *expires_at),
            Op::Extend { reservation_id, expires_at } => b.extended.push((*reservation_id, *expires_at)),
            Op::Commit { reservation_id, quantity, items, order_id } => {
                b.settled.push((*reservation_id, ReservationStatus::Committed));
                if let Some(o) = order_id {
                    b.orders.push((*reservation_id, *o));
                }
                b.on_hand_delta -= quantity;
                b.reserved_delta -= quantity;
                b.sold_units.extend(items.iter().map(|i| (*i, *order_id)));
                let m = Movement {
                    source: Some(*reservation_id),
                    order: *order_id,
                    ..Movement::new(MovementKind::Sale, -1, -1)
                };
                self.per_unit(b, items, *quantity, m);
            }
            Op::Release { reservation_id, quantity, items, expired } => {
                let (kind, outcome) = if *expired {
                    (MovementKind::Expire, ReservationStatus::Expired)
                } else {
                    (MovementKind::Release, ReservationStatus::Released)
                };
                b.settled.push((*reservation_id, outcome));
                b.reserved_delta -= quantity;
                b.freed_units.extend(items.iter().copied());
                let m = Movement { source: Some(*reservation_id), ..Movement::new(kind, 0, -1) };
                self.per_unit(b, items, *quantity, m);
            }
            Op::Adjust { change } => {
                b.on_hand_delta += change.delta;
                b.movements.push(Movement {
                    reason: change.reason.clone(),
                    actor: change.actor_id,
                    source: change.source_id,
                    unit_cost: change.unit_cost_minor,
                    supplier: change.supplier_id,
                    ..Movement::new(change.kind, change.delta, 0)
                });
            }
            Op::ReturnUnit { item_id, return_id } => {
                b.returned_units.push(*item_id);
                let m = Movement {
                    item: Some(*item_id),
                    source: Some(*return_id),
                    ..Movement::new(MovementKind::Return, 1, 0)
                };
                b.movements.push(m);
            }
            Op::RemoveUnit { item_id, reason, actor_id } => {
                b.removed_units.push(*item_id);
                b.movements.push(Movement {
                    item: Some(*item_id),
                    reason: Some(reason.clone()),
                    actor: *actor_id,
                    ..Movement::new(MovementKind::Adjustment, -1, 0)
                });
            }
        }
    }

    /// A new hold: its header, lines, held units and ledger rows.
    fn add_reserve(&self, b: &mut Batch, reservation_id: Uuid, expires_at: DateTime<Utc>) {
        let Some(h) = self.holds.get(&reservation_id) else { return };
        b.headers.push((reservation_id, expires_at));
        for l in &h.lines {
            b.lines.push((reservation_id, l.clone()));
            if let Some(i) = l.item_id {
                b.held_units.push((i, reservation_id));
            }
        }
        b.reserved_delta += h.quantity;
        let m = Movement { source: Some(reservation_id), ..Movement::new(MovementKind::Reserve, 0, 1) };
        self.per_unit(b, &h.items, h.quantity, m);
    }

    /// One ledger row per bulk change (`m` scaled by the quantity), or one per unit of a
    /// serialized one.
    fn per_unit(&self, b: &mut Batch, items: &[Uuid], quantity: i64, m: Movement) {
        if self.tracking == Tracking::Bulk {
            b.movements.push(Movement { on_hand: m.on_hand * quantity, reserved: m.reserved * quantity, ..m });
        } else {
            for i in items {
                b.movements.push(Movement { item: Some(*i), ..m.clone() });
            }
        }
    }
}
