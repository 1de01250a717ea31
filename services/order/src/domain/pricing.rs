//! Prices a sale: the price charged per line (stock's, or a recorded override), the order
//! discount and its share on each line. Pure functions of their inputs.
//!
//! Rounding happens once, here: a percentage discount is computed on the subtotal
//! (`Money::percentage`, half away from zero, to the minor unit) and then split over the
//! lines by largest remainder, so the line shares always add up to the order discount
//! exactly and no line is rounded on its own.

use platform::money::{Currency, Money, MoneyError};

/// The order discount as the cashier gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discount {
    /// Basis points: 1250 is 12.5 %. At most 10 000.
    Percentage(i64),
    /// An amount off the whole order; more than the subtotal is clamped to it.
    Fixed(Money),
}

pub const MAX_BASIS_POINTS: i64 = 10_000;

/// One reserved line, priced by stock, with what the cashier wants to charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineInput {
    pub quantity: i64,
    /// Stock's undiscounted price.
    pub list_price: Money,
    /// Stock's price after the shop's active discounts.
    pub unit_price: Money,
    /// The per-unit price the cashier charges, when given.
    pub custom_price: Option<Money>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricedLine {
    pub sold_price: Money,
    /// Whether `sold_price` differs from stock's price (a recorded override).
    pub overridden: bool,
    /// quantity × sold price.
    pub gross: Money,
    /// This line's share of the order discount.
    pub discount: Money,
    /// gross − discount.
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub lines: Vec<PricedLine>,
    pub subtotal: Money,
    pub discount: Money,
    pub total: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("a price cannot be negative")]
    NegativePrice,
    #[error("a discount must be between 0 and 100 %, or a non-negative amount")]
    BadDiscount,
    #[error("a quantity must be positive")]
    BadQuantity,
}

/// Prices `lines` in `currency` with the order `discount`.
pub fn price(currency: Currency, lines: &[LineInput], discount: Option<Discount>) -> Result<Priced, PricingError> {
    let mut priced = Vec::with_capacity(lines.len());
    let mut subtotal = Money::zero(currency);
    for line in lines {
        if line.quantity <= 0 {
            return Err(PricingError::BadQuantity);
        }
        let sold = line.custom_price.unwrap_or(line.unit_price);
        if sold.is_negative() || line.unit_price.is_negative() || line.list_price.is_negative() {
            return Err(PricingError::NegativePrice);
        }
        let gross = sold.checked_mul(line.quantity)?;
        subtotal = subtotal.checked_add(gross)?;
        priced.push(PricedLine {
            sold_price: sold,
            overridden: sold != line.unit_price,
            gross,
            discount: Money::zero(currency),
            total: gross,
        });
    }
    let discount = match discount {
        None => Money::zero(currency),
        Some(Discount::Percentage(bp)) => {
            if !(0..=MAX_BASIS_POINTS).contains(&bp) {
                return Err(PricingError::BadDiscount);
            }
            subtotal.percentage(bp)?
        }
        Some(Discount::Fixed(amount)) => {
            if amount.is_negative() {
                return Err(PricingError::BadDiscount);
            }
            if amount.currency() != currency {
                return Err(MoneyError::CurrencyMismatch.into());
            }
            // Clamped: a discount never makes a total negative.
            if amount.minor() > subtotal.minor() {
                subtotal
            } else {
                amount
            }
        }
    };
    let shares = allocate(discount.minor(), &priced.iter().map(|l| l.gross.minor()).collect::<Vec<_>>())?;
    for (line, share) in priced.iter_mut().zip(shares) {
        line.discount = Money::from_minor(share, currency);
        line.total = line.gross.checked_sub(line.discount)?;
    }
    let total = subtotal.checked_sub(discount)?;
    Ok(Priced { lines: priced, subtotal, discount, total })
}

/// Splits `amount` (0 ≤ amount ≤ Σ weights) over `weights` in proportion, by largest
/// remainder: the shares add up to `amount` exactly and none exceeds its weight.
fn allocate(amount: i64, weights: &[i64]) -> Result<Vec<i64>, MoneyError> {
    let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if total == 0 || amount == 0 {
        return Ok(vec![0; weights.len()]);
    }
    let amount = i128::from(amount);
    let mut shares = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given: i128 = 0;
    for (i, w) in weights.iter().enumerate() {
        let exact = amount * i128::from(*w);
        let share = exact / total;
        given += share;
        shares.push(share);
        remainders.push((exact % total, i));
    }
    // The largest remainders get one more minor unit each; ties go to the earlier line.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = usize::try_from(amount - given).map_err(|_| MoneyError::Overflow)?;
    for (_, i) in remainders.into_iter().take(left) {
        shares[i] += 1;
    }
    shares.into_iter().map(|s| i64::try_from(s).map_err(|_| MoneyError::Overflow)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LKR: Currency = Currency::LKR;

    fn m(minor: i64) -> Money {
        Money::from_minor(minor, LKR)
    }

    fn line(quantity: i64, price: i64) -> LineInput {
        LineInput { quantity, list_price: m(price), unit_price: m(price), custom_price: None }
    }

    #[test]
    fn a_percentage_is_rounded_once_on_the_subtotal() {
        // 3 × 3.33 = 9.99; 10 % = 0.999 → 1.00 once (three rounded line shares would be 0.99).
        let p = price(LKR, &[line(1, 333), line(1, 333), line(1, 333)], Some(Discount::Percentage(1_000))).unwrap();
        assert_eq!(p.subtotal, m(999));
        assert_eq!(p.discount, m(100));
        assert_eq!(p.total, m(899));
        assert_eq!(p.lines.iter().map(|l| l.discount.minor()).collect::<Vec<_>>(), vec![34, 33, 33]);
    }

    #[test]
    fn a_fixed_discount_larger_than_the_subtotal_is_clamped() {
        let p = price(LKR, &[line(2, 500)], Some(Discount::Fixed(m(5_000)))).unwrap();
        assert_eq!(p.discount, m(1_000));
        assert_eq!(p.total, m(0));
    }

    #[test]
    fn a_custom_price_is_an_override_only_when_it_differs() {
        let mut l = line(1, 1_000);
        l.custom_price = Some(m(1_000));
        assert!(!price(LKR, &[l], None).unwrap().lines[0].overridden);
        l.custom_price = Some(m(900));
        let p = price(LKR, &[l], None).unwrap();
        assert!(p.lines[0].overridden);
        assert_eq!(p.total, m(900));
    }

    #[test]
    fn bad_inputs_are_refused() {
        let mut l = line(1, 100);
        l.custom_price = Some(m(-1));
        assert_eq!(price(LKR, &[l], None), Err(PricingError::NegativePrice));
        assert_eq!(price(LKR, &[line(0, 100)], None), Err(PricingError::BadQuantity));
        assert_eq!(price(LKR, &[line(1, 100)], Some(Discount::Percentage(10_001))), Err(PricingError::BadDiscount));
        assert_eq!(price(LKR, &[line(1, 100)], Some(Discount::Fixed(m(-1)))), Err(PricingError::BadDiscount));
        assert_eq!(price(LKR, &[line(i64::MAX, 2)], None), Err(PricingError::Money(MoneyError::Overflow)));
    }

    proptest! {
        #[test]
        fn totals_add_up_and_never_go_negative(
            lines in prop::collection::vec((1i64..50, 0i64..10_000_000), 0..12),
            discount in prop_oneof![
                Just(None),
                (0i64..=10_000).prop_map(|bp| Some(Discount::Percentage(bp))),
                (0i64..1_000_000_000).prop_map(|a| Some(Discount::Fixed(Money::from_minor(a, Currency::LKR)))),
            ],
        ) {
            let input: Vec<LineInput> = lines.iter().map(|(q, p)| line(*q, *p)).collect();
            let p = price(LKR, &input, discount).unwrap();
            let gross: i64 = p.lines.iter().map(|l| l.gross.minor()).sum();
            let shares: i64 = p.lines.iter().map(|l| l.discount.minor()).sum();
            let totals: i64 = p.lines.iter().map(|l| l.total.minor()).sum();
            prop_assert_eq!(gross, p.subtotal.minor());
            prop_assert_eq!(shares, p.discount.minor());
            prop_assert_eq!(totals, p.total.minor());
            prop_assert!(p.total.minor() >= 0);
            prop_assert!(p.discount.minor() <= p.subtotal.minor());
            for l in &p.lines {
                prop_assert!(l.discount.minor() >= 0 && l.discount.minor() <= l.gross.minor());
            }
        }

        #[test]
        fn allocation_is_exact_and_proportional(
            weights in prop::collection::vec(0i64..1_000_000, 1..10),
            numerator in 0u32..=100,
        ) {
            let sum: i64 = weights.iter().sum();
            let amount = sum * i64::from(numerator) / 100;
            let shares = allocate(amount, &weights).unwrap();
            prop_assert_eq!(shares.iter().sum::<i64>(), amount);
            for (s, w) in shares.iter().zip(&weights) {
                // Within one minor unit of the exact proportional share.
                let exact = i128::from(amount) * i128::from(*w);
                let lo = if sum == 0 { 0 } else { exact / i128::from(sum) };
                prop_assert!(i128::from(*s) >= lo && i128::from(*s) <= lo + 1);
                prop_assert!(s <= w);
            }
        }
    }
}
