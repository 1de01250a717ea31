//! A product's stock as pure state transitions: no I/O, no timers, no mailbox. Each request
//! is a `Step`: answered at once, applied in memory (an `Op` the next batch writes), deferred
//! until the batch in flight lands, or looked up in the rows. `batch` turns applied ops into
//! the rows they write. The actor (`super::actor`) drives it; tests drive it directly.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use platform::{Currency, Money};

use super::{Adjustment, Held, HeldLine, Level, StockError, Want};
pub use crate::domain::Tracking;
use crate::domain::{MovementKind, ReservationStatus};

#[derive(Debug, Clone)]
pub struct Unit {
    pub barcode: String,
    pub price_minor: i64,
    pub warranty_months: Option<i32>,
    /// None: available; Some(reservation): held.
    pub held_by: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct Hold {
    pub lines: Vec<HeldLine>,
    pub quantity: i64,
    pub items: Vec<Uuid>,
    pub expires_at: DateTime<Utc>,
    /// Written: its expiry clock runs and a retry gets its lines.
    pub persisted: bool,
}

/// A change applied in memory and waiting for the next batch.
#[derive(Debug, Clone)]
pub enum Op {
    Reserve {
        reservation_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    /// A retried reservation asked for a later expiry: the written hold lives on to it.
    Extend {
        reservation_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    Commit {
        reservation_id: Uuid,
        quantity: i64,
        items: Vec<Uuid>,
        order_id: Option<Uuid>,
    },
    Release {
        reservation_id: Uuid,
        quantity: i64,
        items: Vec<Uuid>,
        expired: bool,
    },
    Adjust {
        change: Adjustment,
    },
    ReturnUnit {
        item_id: Uuid,
        return_id: Uuid,
    },
    RemoveUnit {
        item_id: Uuid,
        reason: String,
        actor_id: Option<Uuid>,
    },
}

/// What a request comes to.
#[derive(Debug)]
pub enum Step<T> {
    /// Answer now; nothing changed.
    Answer(Result<T, StockError>),
    /// Applied in memory: answer once the batch holding the op is written.
    Apply(Op),
    /// The reservation's first write is still in flight: ask again after it.
    Defer,
    /// Not held here (any more): what the rows say decides (`settled_answer`).
    Lookup,
}

/// One product's stock.
#[derive(Debug, Clone)]
pub struct ProductStock {
    pub product_id: Uuid,
    pub shop_id: Uuid,
    pub name: String,
    pub tracking: Tracking,
    pub currency: Currency,
    pub price_minor: i64,
    pub warranty_months: i32,
    pub loyalty_points: i64,
    pub keeping_units: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub units: HashMap<Uuid, Unit>,
    /// (basis points, from, until) of the product's discounts.
    pub discounts: Vec<(i64, DateTime<Utc>, DateTime<Utc>)>,
    pub holds: HashMap<Uuid, Hold>,
    /// Reservations settled during this actor's life, for idempotent answers.
    pub settled: HashMap<Uuid, ReservationStatus>,
    /// Available before the pending batch (to see a low-stock crossing).
    pub available_at_batch_start: i64,
}

impl ProductStock {
    pub fn available(&self) -> i64 {
        self.level().available
    }

    pub fn level(&self) -> Level {
        let (on_hand, reserved) = match self.tracking {
            Tracking::Bulk => (self.on_hand, self.reserved),
            Tracking::Serialized => {
                let held = self.units.values().filter(|u| u.held_by.is_some()).count() as i64;
                (self.units.len() as i64, held)
            }
        };
        Level { on_hand, reserved, available: on_hand - reserved }
    }

    /// The price after the best discount active at `now`. Rounding happens here, once per unit.
    pub fn discounted(&self, list: i64, now: DateTime<Utc>) -> i64 {
        let best =
            self.discounts.iter().filter(|(_, from, until)| *from <= now && now < *until).map(|(bp, _, _)| *bp).max();
        match best {
            None => list,
            Some(bp) => Money::from_minor(list, self.currency).percentage(10_000 - bp).map_or(list, |m| m.minor()),
        }
    }

    fn hold_state(&self, reservation_id: Uuid) -> Option<bool> {
        self.holds.get(&reservation_id).map(|h| h.persisted)
    }

    /// Holds `wants` for a reservation, all or nothing.
    pub fn reserve(
        &mut self,
        shop_id: Uuid,
        reservation_id: Uuid,
        expires_at: DateTime<Utc>,
        wants: &[Want],
        now: DateTime<Utc>,
    ) -> Step<Held> {
        if shop_id != self.shop_id {
            return Step::Answer(Err(StockError::ProductNotFound(self.product_id)));
        }
        if let Some(h) = self.holds.get_mut(&reservation_id) {
            // A retry of the same reservation: the same lines, no second hold. It may come
            // long after the first (a caller taking over an abandoned attempt): it extends the
            // hold to its own expiry, so what it gets does not expire under it.
            if !h.persisted {
                return Step::Answer(Err(StockError::Busy));
            }
            if expires_at > h.expires_at {
                h.expires_at = expires_at;
                return Step::Apply(Op::Extend { reservation_id, expires_at });
            }
            return Step::Answer(Ok(Held { currency: self.currency, lines: h.lines.clone() }));
        }
        if let Some(s) = self.settled.get(&reservation_id) {
            let e = if *s == ReservationStatus::Committed {
                StockError::ReservationCommitted
            } else {
                StockError::ReservationExpired
            };
            return Step::Answer(Err(e));
        }
        let hold = match self.tracking {
            Tracking::Bulk => self.hold_bulk(wants, expires_at, now),
            Tracking::Serialized => self.hold_units(reservation_id, wants, expires_at, now),
        };
        match hold {
            Ok(h) => {
                self.holds.insert(reservation_id, h);
                Step::Apply(Op::Reserve { reservation_id, expires_at })
            }
            Err(e) => Step::Answer(Err(e)),
        }
    }

    fn line(&self, line_no: i32, quantity: i64, list: i64, now: DateTime<Utc>, months: i32) -> HeldLine {
        HeldLine {
            line_no,
            unit_no: 0,
            product_id: self.product_id,
            name: self.name.clone(),
            quantity,
            unit_price_minor: self.discounted(list, now),
            list_price_minor: list,
            item_id: None,
            barcode: None,
            warranty_until: (months > 0).then(|| now + chrono::Months::new(u32::try_from(months).unwrap_or(0))),
            loyalty_points: self.loyalty_points,
        }
    }

    fn hold_bulk(&mut self, wants: &[Want], expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Hold, StockError> {
        if wants.iter().any(|w| w.item_id.is_some()) {
            return Err(StockError::Invalid("a bulk product is reserved by quantity, not by barcode".into()));
        }
        let quantity: i64 = wants.iter().map(|w| w.quantity).sum();
        let available = self.on_hand - self.reserved;
        if quantity > available {
            return Err(StockError::Insufficient { product_id: self.product_id, requested: quantity, available });
        }
        self.reserved += quantity;
        let lines = wants
            .iter()
            .map(|w| self.line(w.line_no, w.quantity, self.price_minor, now, self.warranty_months))
            .collect();
        Ok(Hold { lines, quantity, items: Vec::new(), expires_at, persisted: false })
    }

    /// Serialized: specific units first (by barcode), then any available units for counts.
    fn hold_units(
        &mut self,
        reservation_id: Uuid,
        wants: &[Want],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Hold, StockError> {
        let mut chosen: Vec<(i32, Uuid)> = Vec::new();
        for w in wants {
            let Some(id) = w.item_id else { continue };
            match self.units.get(&id) {
                Some(u) if u.held_by.is_none() && !chosen.iter().any(|(_, c)| *c == id) => chosen.push((w.line_no, id)),
                Some(u) => return Err(StockError::UnitUnavailable { barcode: u.barcode.clone() }),
                None => return Err(StockError::UnitUnavailable { barcode: id.to_string() }),
            }
        }
        for w in wants.iter().filter(|w| w.item_id.is_none()) {
            let mut free: Vec<Uuid> = self
                .units
                .iter()
                .filter(|(id, u)| u.held_by.is_none() && !chosen.iter().any(|(_, c)| c == *id))
                .map(|(id, _)| *id)
                .collect();
            free.sort();
            let n = usize::try_from(w.quantity).unwrap_or(usize::MAX);
            if free.len() < n {
                let available = self.units.values().filter(|u| u.held_by.is_none()).count() as i64;
                return Err(StockError::Insufficient { product_id: self.product_id, requested: w.quantity, available });
            }
            chosen.extend(free.into_iter().take(n).map(|id| (w.line_no, id)));
        }
        let mut lines = Vec::with_capacity(chosen.len());
        for (k, (line_no, id)) in chosen.iter().enumerate() {
            let Some(u) = self.units.get(id).cloned() else { continue };
            let mut line =
                self.line(*line_no, 1, u.price_minor, now, u.warranty_months.unwrap_or(self.warranty_months));
            line.unit_no = i32::try_from(chosen[..k].iter().filter(|(l, _)| l == line_no).count()).unwrap_or(0);
            line.item_id = Some(*id);
            line.barcode = Some(u.barcode);
            lines.push(line);
            if let Some(u) = self.units.get_mut(id) {
                u.held_by = Some(reservation_id);
            }
        }
        let items: Vec<Uuid> = chosen.into_iter().map(|(_, id)| id).collect();
        Ok(Hold { lines, quantity: items.len() as i64, items, expires_at, persisted: false })
    }

    /// Stops nothing by itself: the actor stops the hold's expiry clock when this answers Ok.
    pub fn pin(&self, reservation_id: Uuid) -> Step<()> {
        match self.hold_state(reservation_id) {
            Some(true) => Step::Answer(Ok(())),
            Some(false) => Step::Defer,
            None => self.settled_here(reservation_id, true),
        }
    }

    /// The held stock leaves.
    pub fn commit(&mut self, reservation_id: Uuid, order_id: Option<Uuid>) -> Step<()> {
        match self.hold_state(reservation_id) {
            Some(false) => return Step::Defer,
            None => return self.settled_here(reservation_id, true),
            Some(true) => {}
        }
        let Some(h) = self.holds.remove(&reservation_id) else { return Step::Lookup };
        match self.tracking {
            Tracking::Bulk => {
                self.on_hand -= h.quantity;
                self.reserved -= h.quantity;
            }
            Tracking::Serialized => {
                for item in &h.items {
                    self.units.remove(item);
                }
            }
        }
        self.settled.insert(reservation_id, ReservationStatus::Committed);
        Step::Apply(Op::Commit { reservation_id, quantity: h.quantity, items: h.items, order_id })
    }

    /// The held stock is available again (released by the caller, or expired).
    pub fn release(&mut self, reservation_id: Uuid, expired: bool) -> Step<()> {
        match self.hold_state(reservation_id) {
            Some(false) if expired => Step::Answer(Ok(())), // its clock starts once it is written
            Some(false) => Step::Defer,
            None if expired => Step::Answer(Ok(())),
            None => match self.settled_here(reservation_id, false) {
                Step::Answer(Err(StockError::ReservationExpired)) => Step::Answer(Ok(())), // already released
                other => other,
            },
            Some(true) => {
                let Some(h) = self.undo_hold(reservation_id) else { return Step::Lookup };
                self.settled.insert(
                    reservation_id,
                    if expired { ReservationStatus::Expired } else { ReservationStatus::Released },
                );
                Step::Apply(Op::Release { reservation_id, quantity: h.quantity, items: h.items, expired })
            }
        }
    }

    /// A hold's clock ran out: released, unless a retry extended it meanwhile.
    pub fn expire(&mut self, reservation_id: Uuid, now: DateTime<Utc>) -> Step<()> {
        match self.holds.get(&reservation_id) {
            Some(h) if h.expires_at > now => Step::Answer(Ok(())),
            _ => self.release(reservation_id, true),
        }
    }

    /// Removes a hold and gives its stock back to what is available.
    pub fn undo_hold(&mut self, reservation_id: Uuid) -> Option<Hold> {
        let h = self.holds.remove(&reservation_id)?;
        match self.tracking {
            Tracking::Bulk => self.reserved -= h.quantity,
            Tracking::Serialized => {
                for item in &h.items {
                    if let Some(u) = self.units.get_mut(item) {
                        u.held_by = None;
                    }
                }
            }
        }
        Some(h)
    }

    /// A bulk level change that is not a reservation (its source, if any, checked already).
    pub fn adjust(&mut self, change: Adjustment) -> Step<Level> {
        if self.tracking != Tracking::Bulk {
            return Step::Answer(Err(StockError::Invalid("serialized stock changes unit by unit (items)".into())));
        }
        let next = self.on_hand + change.delta;
        if next < self.reserved {
            let available = self.on_hand - self.reserved;
            let requested = -change.delta;
            return Step::Answer(Err(StockError::Insufficient { product_id: self.product_id, requested, available }));
        }
        self.on_hand = next;
        Step::Apply(Op::Adjust { change })
    }

    /// A serialized unit was created; it is available now.
    pub fn add_unit(&mut self, item_id: Uuid, unit: Unit) {
        self.units.entry(item_id).or_insert(unit);
    }

    /// A unit leaves stock by hand (damaged, lost); only an available one can.
    pub fn remove_unit(&mut self, item_id: Uuid, reason: String, actor_id: Option<Uuid>) -> Step<()> {
        match self.units.get(&item_id) {
            Some(u) if u.held_by.is_none() => {
                self.units.remove(&item_id);
                Step::Apply(Op::RemoveUnit { item_id, reason, actor_id })
            }
            Some(u) => Step::Answer(Err(StockError::UnitUnavailable { barcode: u.barcode.clone() })),
            None => Step::Answer(Err(StockError::UnitNotFound(item_id.to_string()))),
        }
    }

    fn settled_here(&self, reservation_id: Uuid, want_commit: bool) -> Step<()> {
        match self.settled.get(&reservation_id) {
            Some(s) => Step::Answer(settled_answer(Some(*s), want_commit)),
            None => Step::Lookup,
        }
    }
}

/// Whether `ops` already hold a change with this source (a return, an idempotent receipt or
/// adjustment): its twin then waits for that batch.
pub fn in_batch<'a>(
    ops: impl IntoIterator<Item = &'a Op>,
    kind: MovementKind,
    source: Uuid,
    item: Option<Uuid>,
) -> bool {
    ops.into_iter().any(|op| match op {
        Op::Adjust { change } => item.is_none() && change.kind == kind && change.source_id == Some(source),
        Op::ReturnUnit { item_id, return_id } => Some(*item_id) == item && *return_id == source,
        _ => false,
    })
}

/// The answer for a reservation a product no longer holds, from its lines' status there.
pub fn settled_answer(status: Option<ReservationStatus>, want_commit: bool) -> Result<(), StockError> {
    match (status, want_commit) {
        (None, _) => Err(StockError::ReservationNotFound),
        (Some(ReservationStatus::Committed), true) => Ok(()),
        (Some(ReservationStatus::Committed), false) => Err(StockError::ReservationCommitted),
        (Some(ReservationStatus::Held), _) => Err(StockError::Busy), // being written right now
        (Some(ReservationStatus::Released | ReservationStatus::Expired), _) => Err(StockError::ReservationExpired),
    }
}

mod rows;
#[cfg(test)]
mod tests;
