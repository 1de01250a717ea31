//! What returned goods are worth. Pure.
//!
//! A line sold `quantity` units for `total` (after its discount share). Returning units is
//! valued by cumulative floor: the first `n` units returned are worth
//! `floor(total × n / quantity)`, so each return gets the difference, and however a line's
//! units come back, over one return or many, they add up to exactly `total` — never a minor
//! unit more, never one lost.

/// The value of returning `q` more units after `before` came back already; `None` when that
/// is more than was sold or an amount overflows.
pub fn value(total: i64, quantity: i64, before: i64, q: i64) -> Option<i64> {
    if quantity <= 0 || before < 0 || q <= 0 || before.checked_add(q)? > quantity || total < 0 {
        return None;
    }
    let cumulative = |n: i64| i128::from(total) * i128::from(n) / i128::from(quantity);
    i64::try_from(cumulative(before + q) - cumulative(before)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_unit_of_three_for_ten() {
        assert_eq!(value(1_000, 3, 0, 1), Some(333));
        assert_eq!(value(1_000, 3, 1, 1), Some(333));
        assert_eq!(value(1_000, 3, 2, 1), Some(334));
        assert_eq!(value(1_000, 3, 2, 2), None, "more than was sold");
        assert_eq!(value(1_000, 3, 0, 0), None);
    }

    proptest! {
        #[test]
        fn any_partition_adds_up_to_the_line_total(
            total in 0i64..1_000_000_000,
            parts in prop::collection::vec(1i64..20, 1..10),
        ) {
            let quantity: i64 = parts.iter().sum();
            let mut before = 0;
            let mut sum = 0;
            for q in &parts {
                let v = value(total, quantity, before, *q).unwrap();
                prop_assert!(v >= 0);
                sum += v;
                before += q;
            }
            prop_assert_eq!(sum, total);
            prop_assert_eq!(value(total, quantity, before, 1), None);
        }
    }
}
