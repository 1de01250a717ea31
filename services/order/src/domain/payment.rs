//! Settles a sale's money: what the tenders cover, the change, what goes to or comes out
//! of the customer's wallet at the shop, and the unpaid rest that becomes a due. Pure.
//!
//! The balance equation every settlement keeps:
//! `tendered + due = total + to_wallet + change`, where `tendered` includes wallet payments
//! and the wallet moves by `to_wallet − wallet_debit − due`.

use platform::money::{Currency, Money, MoneyError};

use super::types::PaymentMethod;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tender {
    pub method: PaymentMethod,
    pub amount: Money,
}

/// The shop's credit policy (its settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditPolicy {
    pub allowed: bool,
    /// The deepest a customer's balance may go: −limit.
    pub limit: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettleInput {
    pub total: Money,
    /// Money the customer pays into their wallet on top of the sale (a due payment or a
    /// top-up at the till: the first system's positive `extraWalletAmount`).
    pub to_wallet: Money,
    /// A due the caller says this sale leaves (the first system's negative
    /// `extraWalletAmount`); it must equal what the tenders leave unpaid.
    pub declared_due: Option<Money>,
    /// Change goes to the wallet instead of back in cash.
    pub change_to_wallet: bool,
    /// The customer's wallet balance now; `None` when the sale names no customer.
    pub wallet_balance: Option<Money>,
    pub credit: CreditPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// Everything tendered, wallet payments included.
    pub tendered: Money,
    pub wallet_debit: Money,
    /// Cash handed back.
    pub change: Money,
    /// Credited to the wallet (to_wallet plus change kept there).
    pub to_wallet: Money,
    /// The unpaid rest, now owed by the customer (their balance goes down by it).
    pub due: Money,
    /// The wallet balance after the sale, when there is a customer.
    pub wallet_after: Option<Money>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("payments are {missing} short of the total")]
    Short { missing: Money },
    #[error("the wallet holds {balance}; {wanted} cannot be paid from it")]
    WalletInsufficient { balance: Money, wanted: Money },
    #[error("a wallet payment, a due or money into a wallet needs a customer")]
    CustomerRequired,
    #[error("this sale would take the customer's due past the shop's credit limit of {limit}")]
    CreditLimit { limit: Money },
    #[error("change of {change} is more than the cash tendered")]
    ChangeWithoutCash { change: Money },
    #[error("wallet payments of {wallet} exceed what the sale costs")]
    WalletOverpaid { wallet: Money },
    #[error("the declared due of {declared} differs from the unpaid rest of {unpaid}")]
    DueMismatch { declared: Money, unpaid: Money },
    #[error("amounts must be positive")]
    NotPositive,
}

pub fn settle(currency: Currency, input: &SettleInput, tenders: &[Tender]) -> Result<Settlement, SettleError> {
    let zero = Money::zero(currency);
    let mut cash = zero;
    let mut other = zero;
    let mut wallet = zero;
    for t in tenders {
        if t.amount.minor() <= 0 {
            return Err(SettleError::NotPositive);
        }
        match t.method {
            PaymentMethod::Cash => cash = cash.checked_add(t.amount)?,
            PaymentMethod::Card | PaymentMethod::Bank => other = other.checked_add(t.amount)?,
            PaymentMethod::Wallet => wallet = wallet.checked_add(t.amount)?,
        }
    }
    if input.total.is_negative() || input.to_wallet.is_negative() || input.declared_due.is_some_and(|d| d.is_negative())
    {
        return Err(SettleError::NotPositive);
    }
    let tendered = cash.checked_add(other)?.checked_add(wallet)?;
    let has_wallet = input.wallet_balance.is_some();
    if wallet.minor() > 0 {
        let balance = input.wallet_balance.ok_or(SettleError::CustomerRequired)?;
        if wallet.minor() > input.total.minor() {
            return Err(SettleError::WalletOverpaid { wallet });
        }
        if balance.checked_sub(wallet)?.is_negative() {
            return Err(SettleError::WalletInsufficient { balance, wanted: wallet });
        }
    }
    if input.to_wallet.minor() > 0 && !has_wallet {
        return Err(SettleError::CustomerRequired);
    }
    let need = input.total.checked_add(input.to_wallet)?;
    let (change, to_wallet, due) = if tendered.minor() >= need.minor() {
        let excess = tendered.checked_sub(need)?;
        if input.declared_due.is_some_and(|d| d.minor() > 0) {
            return Err(SettleError::DueMismatch { declared: input.declared_due.unwrap_or(zero), unpaid: zero });
        }
        if input.change_to_wallet && excess.minor() > 0 {
            if !has_wallet {
                return Err(SettleError::CustomerRequired);
            }
            (zero, input.to_wallet.checked_add(excess)?, zero)
        } else {
            if excess.minor() > cash.minor() {
                return Err(SettleError::ChangeWithoutCash { change: excess });
            }
            (excess, input.to_wallet, zero)
        }
    } else {
        let unpaid = need.checked_sub(tendered)?;
        if let Some(declared) = input.declared_due {
            if declared != unpaid {
                return Err(SettleError::DueMismatch { declared, unpaid });
            }
        }
        // Money into the wallet cannot itself be owed, and a due needs a customer and a
        // shop that gives credit.
        let Some(balance) = input.wallet_balance else { return Err(SettleError::Short { missing: unpaid }) };
        if input.to_wallet.minor() > 0 || !input.credit.allowed {
            return Err(SettleError::Short { missing: unpaid });
        }
        let after = balance.checked_sub(wallet)?.checked_sub(unpaid)?;
        if after.checked_add(input.credit.limit)?.is_negative() {
            return Err(SettleError::CreditLimit { limit: input.credit.limit });
        }
        (zero, zero, unpaid)
    };
    let wallet_after = match input.wallet_balance {
        Some(b) => Some(b.checked_add(to_wallet)?.checked_sub(wallet)?.checked_sub(due)?),
        None => None,
    };
    Ok(Settlement { tendered, wallet_debit: wallet, change, to_wallet, due, wallet_after })
}

/// Where a ledger row's money came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Sale,
    Change,
    DuePayment,
    WalletTopUp,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sale => "SALE",
            Source::Change => "CHANGE",
            Source::DuePayment => "DUE_PAYMENT",
            Source::WalletTopUp => "WALLET_TOP_UP",
        }
    }
}

/// One ledger row of a sale: money in (`outgoing == false`) or out by `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerMove {
    pub method: PaymentMethod,
    pub source: Source,
    pub outgoing: bool,
    pub amount: Money,
}

/// The ledger rows of a settled sale. Money paid into the wallet is taken from the last
/// non-wallet tenders (the till lists the sale's payment first): up to the customer's due
/// it is a due payment, beyond it a top-up. The rest of each tender is the sale; change
/// goes out in cash.
pub fn ledger_moves(
    tenders: &[Tender],
    s: &Settlement,
    balance_before: Option<Money>,
) -> Result<Vec<LedgerMove>, MoneyError> {
    let currency = s.tendered.currency();
    let zero = Money::zero(currency);
    // What was owed before this sale (after its own wallet payment, which cannot pay a due).
    let owed = balance_before.map_or(zero, |b| if b.is_negative() { b.checked_neg().unwrap_or(zero) } else { zero });
    let mut to_wallet = s.to_wallet;
    let mut due_left = owed;
    let mut moves = Vec::new();
    for t in tenders.iter().rev() {
        if t.method == PaymentMethod::Wallet {
            moves.push(LedgerMove { method: t.method, source: Source::Sale, outgoing: false, amount: t.amount });
            continue;
        }
        let take = if to_wallet.minor() < t.amount.minor() { to_wallet } else { t.amount };
        to_wallet = to_wallet.checked_sub(take)?;
        let paying_due = if due_left.minor() < take.minor() { due_left } else { take };
        due_left = due_left.checked_sub(paying_due)?;
        let top_up = take.checked_sub(paying_due)?;
        let sale = t.amount.checked_sub(take)?;
        for (source, amount) in [(Source::Sale, sale), (Source::DuePayment, paying_due), (Source::WalletTopUp, top_up)]
        {
            if amount.minor() > 0 {
                moves.push(LedgerMove { method: t.method, source, outgoing: false, amount });
            }
        }
    }
    moves.reverse();
    if s.change.minor() > 0 {
        moves.push(LedgerMove {
            method: PaymentMethod::Cash,
            source: Source::Change,
            outgoing: true,
            amount: s.change,
        });
    }
    Ok(moves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LKR: Currency = Currency::LKR;

    fn m(minor: i64) -> Money {
        Money::from_minor(minor, LKR)
    }

    fn input(total: i64, balance: Option<i64>) -> SettleInput {
        SettleInput {
            total: m(total),
            to_wallet: m(0),
            declared_due: None,
            change_to_wallet: false,
            wallet_balance: balance.map(m),
            credit: CreditPolicy { allowed: true, limit: m(10_000) },
        }
    }

    fn t(method: PaymentMethod, amount: i64) -> Tender {
        Tender { method, amount: m(amount) }
    }

    use PaymentMethod::{Card, Cash, Wallet};

    #[test]
    fn cash_gives_change() {
        let s = settle(LKR, &input(800, None), &[t(Cash, 1_000)]).unwrap();
        assert_eq!((s.change, s.due, s.to_wallet), (m(200), m(0), m(0)));
    }

    #[test]
    fn change_can_go_to_the_wallet() {
        let mut i = input(800, Some(0));
        i.change_to_wallet = true;
        let s = settle(LKR, &i, &[t(Cash, 1_000)]).unwrap();
        assert_eq!((s.change, s.to_wallet, s.wallet_after), (m(0), m(200), Some(m(200))));
    }

    #[test]
    fn split_tender_with_wallet() {
        let s = settle(LKR, &input(1_000, Some(300)), &[t(Wallet, 300), t(Card, 700)]).unwrap();
        assert_eq!((s.wallet_debit, s.wallet_after, s.change), (m(300), Some(m(0)), m(0)));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            settle(LKR, &input(1_000, None), &[t(Cash, 900)]),
            Err(SettleError::Short { missing: m(100) }),
            "no customer, no due"
        );
        assert_eq!(
            settle(LKR, &input(1_000, Some(100)), &[t(Wallet, 200), t(Cash, 800)]),
            Err(SettleError::WalletInsufficient { balance: m(100), wanted: m(200) })
        );
        assert_eq!(
            settle(LKR, &input(1_000, Some(-9_500)), &[t(Cash, 400)]),
            Err(SettleError::CreditLimit { limit: m(10_000) })
        );
        assert_eq!(
            settle(LKR, &input(1_000, None), &[t(Card, 1_200)]),
            Err(SettleError::ChangeWithoutCash { change: m(200) })
        );
        let mut no_credit = input(1_000, Some(0));
        no_credit.credit.allowed = false;
        assert_eq!(settle(LKR, &no_credit, &[t(Cash, 900)]), Err(SettleError::Short { missing: m(100) }));
        assert_eq!(settle(LKR, &input(1_000, None), &[t(Cash, 0)]), Err(SettleError::NotPositive));
    }

    #[test]
    fn a_declared_due_must_match_the_unpaid_rest() {
        let mut i = input(1_000, Some(0));
        i.declared_due = Some(m(300));
        assert_eq!(settle(LKR, &i, &[t(Cash, 700)]).unwrap().due, m(300));
        assert_eq!(
            settle(LKR, &i, &[t(Cash, 800)]),
            Err(SettleError::DueMismatch { declared: m(300), unpaid: m(200) })
        );
    }

    #[test]
    fn a_due_payment_with_nothing_bought() {
        let mut i = input(0, Some(-500));
        i.to_wallet = m(500);
        let s = settle(LKR, &i, &[t(Cash, 500)]).unwrap();
        assert_eq!((s.to_wallet, s.wallet_after, s.change), (m(500), Some(m(0)), m(0)));
    }

    proptest! {
        #[test]
        fn every_settlement_balances(
            total in 0i64..100_000,
            to_wallet in 0i64..5_000,
            balance in prop::option::of(-20_000i64..20_000),
            change_to_wallet in any::<bool>(),
            allowed in any::<bool>(),
            limit in 0i64..20_000,
            tenders in prop::collection::vec((0usize..4, 1i64..60_000), 0..4),
        ) {
            let methods = [PaymentMethod::Cash, PaymentMethod::Card, PaymentMethod::Bank, PaymentMethod::Wallet];
            let tenders: Vec<Tender> = tenders.iter().map(|(i, a)| t(methods[*i], *a)).collect();
            let i = SettleInput {
                total: m(total), to_wallet: m(to_wallet), declared_due: None, change_to_wallet,
                wallet_balance: balance.map(m), credit: CreditPolicy { allowed, limit: m(limit) },
            };
            if let Ok(s) = settle(LKR, &i, &tenders) {
                // The ledger holds exactly the money that changed hands.
                let moves = ledger_moves(&tenders, &s, i.wallet_balance).unwrap();
                let net: i64 = moves.iter().map(|mv| if mv.outgoing { -mv.amount.minor() } else { mv.amount.minor() }).sum();
                prop_assert_eq!(net, s.tendered.minor() - s.change.minor());
                let into_wallet: i64 = moves.iter()
                    .filter(|mv| matches!(mv.source, Source::DuePayment | Source::WalletTopUp))
                    .map(|mv| mv.amount.minor()).sum();
                prop_assert_eq!(into_wallet, s.to_wallet.minor());
                prop_assert!(moves.iter().all(|mv| mv.amount.minor() > 0));
                prop_assert_eq!(s.tendered.minor() + s.due.minor(), total + s.to_wallet.minor() + s.change.minor());
                prop_assert!(s.change.minor() >= 0 && s.due.minor() >= 0 && s.to_wallet.minor() >= 0);
                if let (Some(b), Some(after)) = (balance, s.wallet_after) {
                    prop_assert_eq!(after.minor(), b + s.to_wallet.minor() - s.wallet_debit.minor() - s.due.minor());
                    // A wallet payment never overdraws; only a permitted due goes below zero, within the limit.
                    prop_assert!(b - s.wallet_debit.minor() >= 0 || s.wallet_debit.minor() == 0);
                    if s.due.minor() > 0 {
                        prop_assert!(allowed && after.minor() >= -limit);
                    }
                } else {
                    prop_assert_eq!(s.due.minor(), 0);
                    prop_assert_eq!(s.wallet_debit.minor(), 0);
                    prop_assert_eq!(s.to_wallet.minor(), 0);
                }
            }
        }
    }
}
