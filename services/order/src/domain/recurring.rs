//! Recurring payments: the next due date by frequency. Monthly and longer steps keep the
//! day of the month they were set up on (the anchor) and clamp it to short months, so a
//! payment due on the 31st is due Feb 28 (29 in leap years) and Mar 31 again, never drifting
//! to the 28th.

use chrono::{Datelike, Days, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Quarterly,
    Annually,
}

impl Frequency {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "DAILY" => Frequency::Daily,
            "WEEKLY" => Frequency::Weekly,
            "MONTHLY" => Frequency::Monthly,
            "QUARTERLY" => Frequency::Quarterly,
            "ANNUALLY" | "YEARLY" => Frequency::Annually,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Daily => "DAILY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Quarterly => "QUARTERLY",
            Frequency::Annually => "ANNUALLY",
        }
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1).and_then(|first_next| first_next.pred_opt()).map_or(28, |last| last.day())
}

/// `months` after `date`'s month, on `anchor_day` or the month's last day if it is shorter.
/// `None` only past chrono's range (year ±262,000).
pub fn add_months(date: NaiveDate, months: u32, anchor_day: u32) -> Option<NaiveDate> {
    let index = i64::from(date.year()) * 12 + i64::from(date.month0()) + i64::from(months);
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
    NaiveDate::from_ymd_opt(year, month, anchor_day.clamp(1, 31).min(days_in_month(year, month)))
}

/// The due date after `due` for a payment of `frequency` anchored on `anchor_day`.
pub fn next_due(due: NaiveDate, frequency: Frequency, anchor_day: u32) -> Option<NaiveDate> {
    match frequency {
        Frequency::Daily => due.checked_add_days(Days::new(1)),
        Frequency::Weekly => due.checked_add_days(Days::new(7)),
        Frequency::Monthly => add_months(due, 1, anchor_day),
        Frequency::Quarterly => add_months(due, 3, anchor_day),
        Frequency::Annually => add_months(due, 12, anchor_day),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn month_ends_clamp_and_come_back() {
        let jan31 = d(2026, 1, 31);
        let feb = next_due(jan31, Frequency::Monthly, 31);
        assert_eq!(feb, Some(d(2026, 2, 28)));
        assert_eq!(feb.and_then(|f| next_due(f, Frequency::Monthly, 31)), Some(d(2026, 3, 31)));
        assert_eq!(next_due(d(2028, 1, 31), Frequency::Monthly, 31), Some(d(2028, 2, 29)), "leap year");
        assert_eq!(next_due(d(2028, 2, 29), Frequency::Annually, 29), Some(d(2029, 2, 28)));
        assert_eq!(next_due(d(2029, 2, 28), Frequency::Annually, 29), Some(d(2030, 2, 28)));
        assert_eq!(next_due(d(2031, 2, 28), Frequency::Annually, 29), Some(d(2032, 2, 29)));
        assert_eq!(next_due(d(2026, 11, 30), Frequency::Quarterly, 30), Some(d(2027, 2, 28)));
        assert_eq!(next_due(d(2026, 12, 31), Frequency::Daily, 31), Some(d(2027, 1, 1)));
        assert_eq!(next_due(d(2026, 12, 29), Frequency::Weekly, 29), Some(d(2027, 1, 5)));
    }

    proptest! {
        /// Stepping n times one month equals one step of n months: no drift, whatever the
        /// short months in between; every step lands on the anchor or the month's last day.
        #[test]
        fn monthly_steps_never_drift(y in 1990i32..2200, m in 1u32..=12, anchor in 1u32..=31, n in 1u32..60) {
            let start = d(y, m, anchor.min(days_in_month(y, m)));
            let mut at = start;
            for i in 1..=n {
                let next = next_due(at, Frequency::Monthly, anchor).unwrap_or(at);
                prop_assert!(next > at);
                prop_assert_eq!(next.day(), anchor.min(days_in_month(next.year(), next.month())));
                prop_assert_eq!(Some(next), add_months(start, i, anchor));
                at = next;
            }
        }

        #[test]
        fn every_frequency_moves_forward_by_its_step(y in 1990i32..2200, m in 1u32..=12, anchor in 1u32..=31) {
            let due = d(y, m, anchor.min(days_in_month(y, m)));
            for (f, months) in [(Frequency::Monthly, 1), (Frequency::Quarterly, 3), (Frequency::Annually, 12)] {
                let next = next_due(due, f, anchor).unwrap_or(due);
                let apart = (next.year() - due.year()) * 12 + i32::try_from(next.month()).unwrap_or(0) - i32::try_from(due.month()).unwrap_or(0);
                prop_assert_eq!(apart, months);
            }
            prop_assert_eq!(next_due(due, Frequency::Daily, anchor).map(|n| (n - due).num_days()), Some(1));
            prop_assert_eq!(next_due(due, Frequency::Weekly, anchor).map(|n| (n - due).num_days()), Some(7));
        }
    }
}
