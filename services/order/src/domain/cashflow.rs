//! The shop's money, computed from the ledger's daily totals (no I/O): balances per method,
//! income and expenses over a period, monthly trends, growth, the 30-day projection and the
//! shop's health.
//!
//! What counts as what (cash, card and bank only: a wallet payment spends money the shop
//! already took when the wallet was topped up, so counting it again would count it twice):
//! - income: sales, due payments, wallet top-ups and a register's surplus at close, less the
//!   change handed back;
//! - expenses: expenses, refunds and a register's shortfall at close;
//! - neither (the shop's money moving, not earned or spent): cash put into or taken out of a
//!   register, and a shift's opening float (which is not a movement in or out of the shop at
//!   all, so it is left out of the balances too).

use chrono::{Datelike, NaiveDate};

use platform::money::MoneyError;

/// One row of `sales.ledger_days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTotal {
    pub day: NaiveDate,
    pub method: String,
    pub source: String,
    pub direction: String,
    pub amount: i64,
    pub entries: i64,
}

impl DayTotal {
    fn signed(&self) -> i128 {
        if self.direction == "OUT" {
            -i128::from(self.amount)
        } else {
            i128::from(self.amount)
        }
    }

    fn counts(&self) -> bool {
        matches!(self.method.as_str(), "CASH" | "CARD" | "BANK")
    }
}

/// How a ledger row counts in the reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Income,
    Expense,
    Transfer,
    Neutral,
}

pub fn kind(source: &str, direction: &str) -> Kind {
    match (source, direction) {
        ("SALE" | "DUE_PAYMENT" | "WALLET_TOP_UP" | "CHANGE", _) | ("CLOSING_VARIANCE", "IN") => Kind::Income,
        ("EXPENSE" | "REFUND", _) | ("CLOSING_VARIANCE", _) => Kind::Expense,
        ("CASH_IN" | "CASH_OUT", _) => Kind::Transfer,
        _ => Kind::Neutral,
    }
}

/// The type the first system's dashboard sorts a row by: sales (and what belongs to them)
/// are ORDER_PAYMENT, money a customer paid in is DUE_PAYMENT, everything else EXPENSE.
pub fn client_type(source: &str) -> &'static str {
    match source {
        "SALE" | "CHANGE" | "REFUND" => "ORDER_PAYMENT",
        "DUE_PAYMENT" | "WALLET_TOP_UP" => "DUE_PAYMENT",
        _ => "EXPENSE",
    }
}

fn narrow(v: i128) -> Result<i64, MoneyError> {
    i64::try_from(v).map_err(|_| MoneyError::Overflow)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balances {
    pub cash: i64,
    pub card: i64,
    pub bank: i64,
    pub total: i64,
}

/// Money held per method: everything in less everything out, over all time.
pub fn balances(rows: &[DayTotal]) -> Result<Balances, MoneyError> {
    let (mut cash, mut card, mut bank) = (0i128, 0i128, 0i128);
    for r in rows.iter().filter(|r| r.counts() && kind(&r.source, &r.direction) != Kind::Neutral) {
        match r.method.as_str() {
            "CASH" => cash += r.signed(),
            "CARD" => card += r.signed(),
            _ => bank += r.signed(),
        }
    }
    Ok(Balances { cash: narrow(cash)?, card: narrow(card)?, bank: narrow(bank)?, total: narrow(cash + card + bank)? })
}

/// Income and expenses of the days `from..to` (`to` excluded), both positive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    pub income: i64,
    pub expense: i64,
}

impl Flow {
    pub fn net(&self) -> i64 {
        self.income.saturating_sub(self.expense)
    }
}

pub fn flow(rows: &[DayTotal], from: NaiveDate, to: NaiveDate) -> Result<Flow, MoneyError> {
    let (mut income, mut expense) = (0i128, 0i128);
    for r in rows.iter().filter(|r| r.counts() && r.day >= from && r.day < to) {
        match kind(&r.source, &r.direction) {
            Kind::Income => income += r.signed(),
            Kind::Expense => expense -= r.signed(),
            Kind::Transfer | Kind::Neutral => {}
        }
    }
    Ok(Flow { income: narrow(income)?, expense: narrow(expense)? })
}

/// The first day of `day`'s month, `back` months earlier.
pub fn month_start(day: NaiveDate, back: u32) -> NaiveDate {
    let index = i64::from(day.year()) * 12 + i64::from(day.month0()) - i64::from(back);
    let year = i32::try_from(index.div_euclid(12)).ok();
    let month = u32::try_from(index.rem_euclid(12)).ok().map(|m| m + 1);
    year.zip(month).and_then(|(y, m)| NaiveDate::from_ymd_opt(y, m, 1)).unwrap_or(day)
}

/// Income and expenses per month, the oldest first, for the `months` months up to `today`'s.
pub fn monthly(rows: &[DayTotal], today: NaiveDate, months: u32) -> Result<Vec<(NaiveDate, Flow)>, MoneyError> {
    (0..months)
        .rev()
        .map(|back| {
            let start = month_start(today, back);
            let end = super::recurring::add_months(start, 1, 1).unwrap_or(start);
            Ok((start, flow(rows, start, end)?))
        })
        .collect()
}

/// This period against the last in percent, one decimal. From nothing to something is +100,
/// from nothing to nothing 0.
pub fn growth(this: i64, last: i64) -> f64 {
    if last == 0 {
        return if this == 0 {
            0.0
        } else if this > 0 {
            100.0
        } else {
            -100.0
        };
    }
    let tenths = (i128::from(this) - i128::from(last)) * 1000 / i128::from(last).abs();
    // Percentages fit an f64 exactly enough; money never goes through one.
    #[allow(clippy::cast_precision_loss, reason = "a percentage for display")]
    let tenths = tenths.clamp(-1_000_000_000, 1_000_000_000) as f64;
    tenths / 10.0
}

/// Where the balance is heading in 30 days: today's balance, less the payments due within
/// them, plus the trailing 30 days' average net per day times 30 (that is, their net).
pub fn projection(balance: i64, due_within_30: i64, net_last_30: i64) -> Result<i64, MoneyError> {
    narrow(i128::from(balance) - i128::from(due_within_30) + i128::from(net_last_30))
}

/// CRITICAL when the projection is below zero; WARNING when it would not cover another
/// 30 days of the same bills; HEALTHY otherwise.
pub fn health(projected: i64, due_within_30: i64) -> &'static str {
    if projected < 0 {
        "CRITICAL"
    } else if projected < due_within_30 {
        "WARNING"
    } else {
        "HEALTHY"
    }
}

/// What a register should hold per method: every row of its shift, in less out (its
/// opening float included). Money is counted in cash; card, bank and wallet are what the
/// terminal and the books should show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerMethod {
    pub cash: i64,
    pub card: i64,
    pub bank: i64,
    pub wallet: i64,
}

pub fn expected<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, i64)>) -> Result<PerMethod, MoneyError> {
    let mut sums = [0i128; 4];
    for (method, direction, amount) in rows {
        let i = match method {
            "CASH" => 0,
            "CARD" => 1,
            "BANK" => 2,
            _ => 3,
        };
        sums[i] += if direction == "OUT" { -i128::from(amount) } else { i128::from(amount) };
    }
    Ok(PerMethod { cash: narrow(sums[0])?, card: narrow(sums[1])?, bank: narrow(sums[2])?, wallet: narrow(sums[3])? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(day: NaiveDate, method: &str, source: &str, direction: &str, amount: i64) -> DayTotal {
        DayTotal { day, method: method.into(), source: source.into(), direction: direction.into(), amount, entries: 1 }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn a_day_of_trading_adds_up() {
        let day = d(2026, 11, 3);
        let rows = [
            row(day, "CASH", "SALE", "IN", 100_000),
            row(day, "CASH", "CHANGE", "OUT", 20_000),
            row(day, "CARD", "SALE", "IN", 50_000),
            row(day, "WALLET", "SALE", "IN", 7_000),
            row(day, "BANK", "WALLET_TOP_UP", "IN", 10_000),
            row(day, "CASH", "EXPENSE", "OUT", 5_000),
            row(day, "CARD", "REFUND", "OUT", 3_000),
            row(day, "CASH", "CASH_OUT", "OUT", 30_000),
            row(day, "CASH", "OPENING_FLOAT", "IN", 10_000),
            row(day, "CASH", "CLOSING_VARIANCE", "OUT", 100),
        ];
        let b = balances(&rows).unwrap_or_default();
        assert_eq!(b, Balances { cash: 44_900, card: 47_000, bank: 10_000, total: 101_900 });
        let f = flow(&rows, day, d(2026, 11, 4)).unwrap_or_default();
        assert_eq!(f, Flow { income: 140_000, expense: 8_100 });
        assert_eq!(flow(&rows, d(2026, 11, 4), d(2026, 12, 1)).unwrap_or_default(), Flow::default());
        let months = monthly(&rows, d(2026, 12, 15), 3).unwrap_or_default();
        assert_eq!(
            months.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
            [d(2026, 10, 1), d(2026, 11, 1), d(2026, 12, 1)]
        );
        assert_eq!(months[1].1, f);
    }

    #[test]
    fn a_register_expects_its_float_and_its_cash_movements() {
        let rows = [
            ("CASH", "IN", 5_000),  // float
            ("CASH", "IN", 10_000), // sales
            ("CASH", "OUT", 1_500), // change
            ("CASH", "OUT", 700),   // refund
            ("CASH", "IN", 2_000),  // cash in
            ("CASH", "OUT", 3_000), // cash out
            ("CARD", "IN", 4_000),
            ("WALLET", "IN", 900),
        ];
        assert_eq!(expected(rows), Ok(PerMethod { cash: 11_800, card: 4_000, bank: 0, wallet: 900 }));
    }

    #[test]
    fn growth_projection_and_health() {
        assert!((growth(150, 100) - 50.0).abs() < f64::EPSILON);
        assert!((growth(50, 100) + 50.0).abs() < f64::EPSILON);
        assert!((growth(0, 0)).abs() < f64::EPSILON);
        assert!((growth(10, 0) - 100.0).abs() < f64::EPSILON);
        assert_eq!(projection(1_000, 300, -200), Ok(500));
        assert_eq!(health(-1, 0), "CRITICAL");
        assert_eq!(health(100, 300), "WARNING");
        assert_eq!(health(300, 300), "HEALTHY");
        assert_eq!(month_start(d(2026, 1, 20), 2), d(2025, 11, 1));
    }

    proptest! {
        /// Balances never drift from the rows they come from, in any order and split, and
        /// sums beyond i64 are an error rather than a wrap.
        #[test]
        fn sums_are_exact_in_any_order(amounts in proptest::collection::vec((0usize..4, 1i64..i64::MAX / 8, any::<bool>()), 0..40)) {
            let methods = ["CASH", "CARD", "BANK", "WALLET"];
            let day = d(2026, 5, 5);
            let rows: Vec<DayTotal> = amounts.iter()
                .map(|(m, a, out)| row(day, methods[*m], if *out { "EXPENSE" } else { "SALE" }, if *out { "OUT" } else { "IN" }, *a))
                .collect();
            let mut expected = [0i128; 3];
            for (m, a, out) in &amounts {
                if *m < 3 { expected[*m] += if *out { -i128::from(*a) } else { i128::from(*a) }; }
            }
            let total: i128 = expected.iter().sum();
            let fits = expected.iter().chain([&total]).all(|v| i64::try_from(*v).is_ok());
            match balances(&rows) {
                Ok(b) => {
                    prop_assert!(fits);
                    prop_assert_eq!([i128::from(b.cash), i128::from(b.card), i128::from(b.bank), i128::from(b.total)], [expected[0], expected[1], expected[2], total]);
                }
                Err(e) => { prop_assert!(!fits); prop_assert_eq!(e, MoneyError::Overflow); }
            }
            let mut reversed = rows.clone();
            reversed.reverse();
            prop_assert_eq!(balances(&rows), balances(&reversed));
        }
    }
}
