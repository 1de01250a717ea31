//! The reservations this process granted lately, in memory: a reservation's shop, products
//! and reserved lines, so that committing it (the order service's call, then the order
//! event's second commit) reads nothing. An entry lives until shortly after its hold would
//! expire, or [`SETTLED_KEEP`] after it was committed or released (long enough for the
//! event, which follows within a second when the broker is up). A miss reads the rows, as
//! after a restart or when another instance granted the reservation: the memory saves
//! round trips and is never the only place an answer comes from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use contracts::stock::ReservationView;
use platform::ids::{ProductId, ReservationId, ShopId};

use crate::domain::ReservationStatus;

/// How long a settled reservation is remembered.
pub const SETTLED_KEEP: Duration = Duration::from_secs(15);

/// Held entries are remembered this much past their expiry (the actors' clocks run late by
/// up to their flush interval).
const EXPIRY_SLACK: Duration = Duration::from_secs(5);

/// Forgotten entries are swept out once per this many insertions.
const SWEEP_EVERY: u64 = 1024;

/// No entry is kept longer than this (a hold may be asked for up to a day): a checkout commits
/// within seconds, and what is older reads the rows.
const LONGEST: Duration = Duration::from_secs(600);

/// At most this many entries: past it a new reservation is not remembered (its commit reads
/// the rows), so memory stays bounded whatever the load.
const MOST: usize = 100_000;

struct Entry {
    view: ReservationView,
    products: Vec<ProductId>,
    forget_at: Instant,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<ReservationId, Entry>,
    inserts: u64,
}

#[derive(Clone, Default)]
pub(super) struct Recent {
    inner: Arc<Mutex<Inner>>,
}

impl Recent {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A reservation the actors just granted (or granted again, to a retry).
    pub(super) fn held(&self, view: &ReservationView, products: Vec<ProductId>) {
        let slack = chrono::Duration::from_std(EXPIRY_SLACK).unwrap_or_default();
        let left = (view.expires_at + slack - Utc::now()).to_std().unwrap_or_default();
        let now = Instant::now();
        let forget_at = now + left.min(LONGEST);
        let mut inner = self.lock();
        inner.inserts += 1;
        if inner.inserts.is_multiple_of(SWEEP_EVERY) {
            inner.entries.retain(|_, e| e.forget_at > now);
        }
        let id = ReservationId(view.reservation_id);
        if let Some(e) = inner.entries.get_mut(&id) {
            // A retry: the same reservation, perhaps extended; every product it ever named
            // stays in its parts.
            for p in products {
                if !e.products.contains(&p) {
                    e.products.push(p);
                }
            }
            e.view = view.clone();
            e.forget_at = forget_at;
            return;
        }
        if inner.entries.len() >= MOST {
            return;
        }
        inner.entries.insert(id, Entry { view: view.clone(), products, forget_at });
    }

    /// The shop and products of a remembered reservation.
    pub(super) fn parts(&self, id: ReservationId) -> Option<(ShopId, Vec<ProductId>)> {
        let inner = self.lock();
        let e = inner.entries.get(&id).filter(|e| e.forget_at > Instant::now())?;
        Some((ShopId(e.view.shop_id), e.products.clone()))
    }

    /// Every product's actor settled the reservation with `status`: the view as stored now.
    pub(super) fn settled(&self, id: ReservationId, status: ReservationStatus) -> Option<ReservationView> {
        let mut inner = self.lock();
        let e = inner.entries.get_mut(&id)?;
        e.view.status = status.as_str().to_owned();
        e.forget_at = e.forget_at.min(Instant::now() + SETTLED_KEEP);
        Some(e.view.clone())
    }

    /// Forgets a reservation whose state is better read from the rows.
    pub(super) fn forget(&self, id: ReservationId) {
        self.lock().entries.remove(&id);
    }

    /// Forgets everything (this instance stopped owning a shard).
    pub(super) fn clear(&self) {
        self.lock().entries.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn view(expires_in: chrono::Duration) -> ReservationView {
        ReservationView {
            reservation_id: Uuid::now_v7(),
            shop_id: Uuid::now_v7(),
            status: "HELD".into(),
            currency: "LKR".into(),
            expires_at: Utc::now() + expires_in,
            lines: Vec::new(),
        }
    }

    #[test]
    fn remembers_parts_until_settled_and_answers_the_settled_view() {
        let recent = Recent::default();
        let v = view(chrono::Duration::seconds(120));
        let id = ReservationId(v.reservation_id);
        let product = ProductId(Uuid::now_v7());
        recent.held(&v, vec![product]);
        assert_eq!(recent.parts(id), Some((ShopId(v.shop_id), vec![product])));
        let settled = recent.settled(id, ReservationStatus::Committed).unwrap();
        assert_eq!(settled.status, "COMMITTED");
        assert_eq!(recent.settled(id, ReservationStatus::Committed).unwrap().status, "COMMITTED");
        recent.forget(id);
        assert_eq!(recent.parts(id), None);
        assert!(recent.settled(id, ReservationStatus::Committed).is_none());
    }

    #[test]
    fn an_expired_hold_is_not_answered_and_is_swept() {
        let recent = Recent::default();
        let gone = view(chrono::Duration::seconds(-60));
        recent.held(&gone, vec![]);
        assert_eq!(recent.parts(ReservationId(gone.reservation_id)), None);
        for _ in 0..SWEEP_EVERY {
            recent.held(&view(chrono::Duration::seconds(60)), vec![]);
        }
        assert_eq!(recent.len() as u64, SWEEP_EVERY, "the expired entry was swept");
    }
}
