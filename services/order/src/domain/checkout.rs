//! A till's order, in either shape, parsed into a [`Checkout`].
//!
//! Ours: `items[{barcode} | {productId, quantity}]`, `customer{name, email, phone}`,
//! `discount{type, value}`, `status`. The first Cashvio's: `items[{productId, barcodes[],
//! customPrice}]`, flat `customerName/Email/Phone`, `discount` + `discountType`, `draft`,
//! `sendReceiptEmail`, money as JSON numbers. Both become the same checkout; amounts stay
//! text until the shop's currency is known ([`Checkout::amounts`]).

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use platform::error::FieldError;
use platform::money::{Currency, Money, MoneyError, MoneyInput};
use platform::Problem;

use super::payment::Tender;
use super::pricing::{Discount, MAX_BASIS_POINTS};
use super::types::PaymentMethod;

/// As many lines as stock reserves in one request.
pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 100_000;
pub const MAX_PAYMENTS: usize = 10;
pub const MAX_NOTE: usize = 2_000;
const MAX_TEXT: usize = 200;

/// `POST /orders`: both shapes' fields. Unknown fields are refused, except the first
/// system's `print` and `customDueAmount`, which are accepted and ignored (the till prints
/// itself; a due is what the payments leave unpaid).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderBody {
    pub shop_id: Uuid,
    /// A registered customer (auth user id) or one of the shop's walk-in customers.
    pub customer_id: Option<Uuid>,
    pub customer: Option<CustomerBody>,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub customer_phone: Option<String>,
    #[serde(default)]
    pub items: Vec<ItemBody>,
    /// `{type, value}`, or (the first system) an amount with `discountType`.
    pub discount: Option<DiscountBody>,
    /// PERCENTAGE or FIXED, with a numeric `discount`.
    pub discount_type: Option<String>,
    #[serde(default)]
    pub payments: Vec<PaymentBody>,
    /// Paid toward the customer's dues (into the wallet) on top of the sale.
    pub due_paid_amount: Option<MoneyInput>,
    /// Positive: paid into the wallet on top of the sale. Negative: the due this sale leaves.
    pub extra_wallet_amount: Option<MoneyInput>,
    /// Keep the change in the customer's wallet instead of handing it back.
    pub change_to_wallet: Option<bool>,
    pub note: Option<String>,
    /// COMPLETED (default) or DRAFT.
    pub status: Option<String>,
    pub draft: Option<bool>,
    pub send_receipt_email: Option<bool>,
    /// The register the sale is rung up on.
    pub register_id: Option<Uuid>,
    /// Accepted and ignored (the first system's till).
    #[schema(value_type = Option<bool>)]
    pub print: Option<serde_json::Value>,
    /// Accepted and ignored: the due is what the payments leave unpaid.
    #[schema(value_type = Option<String>)]
    pub custom_due_amount: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerBody {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemBody {
    pub product_id: Option<Uuid>,
    /// One serialized unit.
    pub barcode: Option<String>,
    /// Serialized units of `productId` (the first system's shape).
    pub barcodes: Option<Vec<String>>,
    /// Bulk goods (default 1).
    pub quantity: Option<i64>,
    /// The per-unit price the cashier charges; differs from stock's → a recorded override.
    pub custom_price: Option<MoneyInput>,
    /// Same as `customPrice`.
    pub selling_price: Option<MoneyInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentBody {
    /// CASH, CARD, BANK or WALLET.
    pub method: String,
    pub amount: MoneyInput,
    pub reference: Option<String>,
}

/// `{type: PERCENTAGE|FIXED, value}` or a bare amount (with `discountType` beside it).
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
pub enum DiscountBody {
    Spec { kind: String, value: MoneyInput },
    Amount(MoneyInput),
}

impl<'de> Deserialize<'de> for DiscountBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Spec {
            #[serde(rename = "type")]
            kind: String,
            value: MoneyInput,
        }
        let raw: Box<serde_json::value::RawValue> = Deserialize::deserialize(d)?;
        if raw.get().trim_start().starts_with('{') {
            let spec: Spec = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
            return Ok(DiscountBody::Spec { kind: spec.kind, value: spec.value });
        }
        let amount: MoneyInput = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
        Ok(DiscountBody::Amount(amount))
    }
}

/// `POST /orders/{id}/complete`: how a saved draft is paid.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompletionBody {
    #[serde(default)]
    pub payments: Vec<PaymentBody>,
    pub due_paid_amount: Option<MoneyInput>,
    pub extra_wallet_amount: Option<MoneyInput>,
    pub change_to_wallet: Option<bool>,
    pub send_receipt_email: Option<bool>,
    pub register_id: Option<Uuid>,
}

fn parse_payments(body: Vec<PaymentBody>, errors: &mut Vec<FieldError>) -> Vec<PaymentRequest> {
    if body.len() > MAX_PAYMENTS {
        errors.push(FieldError { field: "payments".into(), message: format!("at most {MAX_PAYMENTS} payments") });
    }
    let mut payments = Vec::new();
    for (i, p) in body.into_iter().take(MAX_PAYMENTS).enumerate() {
        let Some(method) = PaymentMethod::parse(&p.method) else {
            errors.push(FieldError {
                field: format!("payments[{i}].method"),
                message: "CASH, CARD, BANK or WALLET".into(),
            });
            continue;
        };
        let reference = p.reference.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        if reference.as_ref().is_some_and(|r| r.chars().count() > MAX_TEXT) {
            errors.push(FieldError {
                field: format!("payments[{i}].reference"),
                message: "at most 200 characters".into(),
            });
        }
        payments.push(PaymentRequest { method, amount: p.amount, reference });
    }
    payments
}

/// Who the sale is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerRef {
    None,
    Id(Uuid),
    WalkIn { name: Option<String>, email: Option<String>, phone: Option<String> },
}

/// What one line asks stock for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRequest {
    pub product_id: Option<Uuid>,
    pub barcode: Option<String>,
    pub quantity: i64,
    pub custom_price: Option<MoneyInput>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    pub method: PaymentMethod,
    pub amount: MoneyInput,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DiscountRequest {
    Percentage(MoneyInput),
    Fixed(MoneyInput),
}

/// A validated order request, before money is read in the shop's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub shop_id: Uuid,
    pub customer: CustomerRef,
    pub lines: Vec<LineRequest>,
    discount: Option<DiscountRequest>,
    pub payments: Vec<PaymentRequest>,
    to_wallet: Option<MoneyInput>,
    due_paid: Option<MoneyInput>,
    pub change_to_wallet: bool,
    pub note: Option<String>,
    pub draft: bool,
    pub send_receipt: bool,
    pub register_id: Option<Uuid>,
}

/// The checkout's amounts in the shop's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amounts {
    /// Per line, the custom price if one was given.
    pub custom_prices: Vec<Option<Money>>,
    pub discount: Option<Discount>,
    pub tenders: Vec<Tender>,
    pub references: Vec<Option<String>>,
    /// Paid into the wallet on top of the sale.
    pub to_wallet: Money,
    /// A due the till declared (negative `extraWalletAmount`).
    pub declared_due: Option<Money>,
}

fn text(errors: &mut Vec<FieldError>, field: &str, value: Option<String>, max: usize) -> Option<String> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())?;
    if value.chars().count() > max {
        errors.push(FieldError { field: field.to_owned(), message: format!("at most {max} characters") });
        return None;
    }
    Some(value)
}

fn email(errors: &mut Vec<FieldError>, field: &str, value: Option<String>) -> Option<String> {
    let value = text(errors, field, value, 254)?;
    let ok = value.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !value.chars().any(char::is_whitespace);
    if !ok {
        errors.push(FieldError { field: field.to_owned(), message: "not an e-mail address".into() });
        return None;
    }
    Some(value.to_ascii_lowercase())
}

fn phone(errors: &mut Vec<FieldError>, field: &str, value: Option<String>) -> Option<String> {
    let value = text(errors, field, value, 40)?;
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if digits < 5 || !value.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c)) {
        errors.push(FieldError { field: field.to_owned(), message: "not a phone number".into() });
        return None;
    }
    Some(value)
}

impl Checkout {
    /// Parses either shape; every problem found is reported at once (422).
    pub fn parse(body: OrderBody) -> Result<Self, Problem> {
        let mut errors = Vec::new();
        let mut err = |field: &str, message: &str| {
            errors.push(FieldError { field: field.to_owned(), message: message.to_owned() });
        };

        let draft = match (body.status.as_deref().map(str::trim), body.draft) {
            (Some(s), draft) if s.eq_ignore_ascii_case("DRAFT") => {
                if draft == Some(false) {
                    err("draft", "contradicts status DRAFT");
                }
                true
            }
            (Some(s), draft) if s.eq_ignore_ascii_case("COMPLETED") => {
                if draft == Some(true) {
                    err("draft", "contradicts status COMPLETED");
                }
                false
            }
            (Some(_), _) => {
                err("status", "COMPLETED or DRAFT");
                false
            }
            (None, draft) => draft.unwrap_or(false),
        };

        let mut lines = Vec::new();
        if body.items.len() > MAX_LINES {
            err("items", &format!("at most {MAX_LINES} lines"));
        }
        for (i, item) in body.items.into_iter().take(MAX_LINES).enumerate() {
            let f = |name: &str| format!("items[{i}].{name}");
            if item.custom_price.is_some() && item.selling_price.is_some() {
                err(&f("sellingPrice"), "give customPrice or sellingPrice, not both");
            }
            let custom_price = item.custom_price.or(item.selling_price);
            let barcodes: Vec<String> = match (item.barcode, item.barcodes) {
                (Some(_), Some(_)) => {
                    err(&f("barcodes"), "give barcode or barcodes, not both");
                    continue;
                }
                (Some(b), None) => vec![b],
                (None, Some(bs)) => bs,
                (None, None) => Vec::new(),
            };
            let mut seen_bad = false;
            for b in &barcodes {
                let t = b.trim();
                if t.is_empty() || t.chars().count() > 100 {
                    err(&f("barcodes"), "a barcode is 1 to 100 characters");
                    seen_bad = true;
                    break;
                }
            }
            if seen_bad {
                continue;
            }
            if barcodes.is_empty() {
                let Some(product) = item.product_id else {
                    err(&f("productId"), "required: a productId with a quantity, or a barcode");
                    continue;
                };
                let quantity = item.quantity.unwrap_or(1);
                if !(1..=MAX_QUANTITY).contains(&quantity) {
                    err(&f("quantity"), &format!("from 1 to {MAX_QUANTITY}"));
                    continue;
                }
                lines.push(LineRequest { product_id: Some(product), barcode: None, quantity, custom_price });
            } else {
                if item.quantity.is_some_and(|q| q != 1 && usize::try_from(q).ok() != Some(barcodes.len())) {
                    err(&f("quantity"), "serialized units are sold one per barcode");
                    continue;
                }
                for b in barcodes {
                    lines.push(LineRequest {
                        product_id: item.product_id,
                        barcode: Some(b.trim().to_owned()),
                        quantity: 1,
                        custom_price: custom_price.clone(),
                    });
                }
            }
        }
        if lines.len() > MAX_LINES {
            err("items", &format!("at most {MAX_LINES} units and lines"));
        }
        let mut units: Vec<&str> = lines.iter().filter_map(|l| l.barcode.as_deref()).collect();
        units.sort_unstable();
        if units.windows(2).any(|w| w[0] == w[1]) {
            err("items", "a barcode appears twice");
        }

        let discount = match (body.discount, body.discount_type.as_deref().map(str::trim)) {
            (None, None) => None,
            (None, Some(_)) => None,
            (Some(DiscountBody::Spec { kind, value }), None) => match kind.trim().to_ascii_uppercase().as_str() {
                "PERCENTAGE" => Some(DiscountRequest::Percentage(value)),
                "FIXED" => Some(DiscountRequest::Fixed(value)),
                _ => {
                    err("discount.type", "PERCENTAGE or FIXED");
                    None
                }
            },
            (Some(DiscountBody::Spec { .. }), Some(_)) => {
                err("discountType", "give the type inside discount{type, value} or beside a number, not both");
                None
            }
            (Some(DiscountBody::Amount(value)), kind) => match kind.map(str::to_ascii_uppercase).as_deref() {
                Some("PERCENTAGE") => Some(DiscountRequest::Percentage(value)),
                Some("FIXED") | None => Some(DiscountRequest::Fixed(value)),
                Some(_) => {
                    err("discountType", "PERCENTAGE or FIXED");
                    None
                }
            },
        };

        let walk_in = body.customer.map(|c| (c.name, c.email, c.phone));
        let flat = (body.customer_name, body.customer_email, body.customer_phone);
        let has_flat = flat.0.is_some() || flat.1.is_some() || flat.2.is_some();
        let (name, mail, tel) = match (walk_in, has_flat) {
            (Some(_), true) => {
                err("customer", "give customer{...} or customerName/Email/Phone, not both");
                (None, None, None)
            }
            (Some(c), false) => c,
            (None, _) => flat,
        };
        let name = text(&mut errors, "customer.name", name, MAX_TEXT);
        let mail = email(&mut errors, "customer.email", mail);
        let tel = phone(&mut errors, "customer.phone", tel);
        let customer = match (body.customer_id, name.is_some() || mail.is_some() || tel.is_some()) {
            (Some(id), _) => CustomerRef::Id(id),
            (None, true) => CustomerRef::WalkIn { name, email: mail, phone: tel },
            (None, false) => CustomerRef::None,
        };
        let note = text(&mut errors, "note", body.note, MAX_NOTE);
        let payments = parse_payments(body.payments, &mut errors);

        if lines.is_empty()
            && !matches!(&body.extra_wallet_amount, Some(a) if !a.as_str().trim_start().starts_with('-'))
            && body.due_paid_amount.is_none()
        {
            errors.push(FieldError {
                field: "items".into(),
                message: "an order needs at least one item (or, with no items, a positive extraWalletAmount)".into(),
            });
        }
        if draft && lines.is_empty() {
            errors.push(FieldError { field: "items".into(), message: "a draft needs items".into() });
        }
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        Ok(Checkout {
            shop_id: body.shop_id,
            customer,
            lines,
            discount,
            payments,
            to_wallet: body.extra_wallet_amount,
            due_paid: body.due_paid_amount,
            change_to_wallet: body.change_to_wallet.unwrap_or(false),
            note,
            draft,
            send_receipt: body.send_receipt_email.unwrap_or(true),
            register_id: body.register_id,
        })
    }

    /// The checkout that completes a saved draft: its lines (with their recorded overrides),
    /// customer, discount and note, paid as `body` says.
    #[allow(clippy::too_many_arguments, reason = "the draft's stored parts, one each")]
    pub fn completing(
        shop_id: Uuid,
        customer_id: Option<Uuid>,
        lines: Vec<LineRequest>,
        discount_type: Option<&str>,
        discount_value: Option<&str>,
        note: Option<String>,
        body: CompletionBody,
    ) -> Result<Self, Problem> {
        let mut errors = Vec::new();
        let payments = parse_payments(body.payments, &mut errors);
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        let discount = match (discount_type, discount_value) {
            (Some("PERCENTAGE"), Some(v)) => Some(DiscountRequest::Percentage(MoneyInput::new(v))),
            (Some("FIXED"), Some(v)) => Some(DiscountRequest::Fixed(MoneyInput::new(v))),
            _ => None,
        };
        Ok(Checkout {
            shop_id,
            customer: customer_id.map_or(CustomerRef::None, CustomerRef::Id),
            lines,
            discount,
            payments,
            to_wallet: body.extra_wallet_amount,
            due_paid: body.due_paid_amount,
            change_to_wallet: body.change_to_wallet.unwrap_or(false),
            note,
            draft: false,
            send_receipt: body.send_receipt_email.unwrap_or(true),
            register_id: body.register_id,
        })
    }

    /// Reads every amount in `currency`: more decimals than it has is `MONEY_PRECISION`,
    /// anything that is not an amount (or overflows) is a 422 on the field.
    pub fn amounts(&self, currency: Currency) -> Result<Amounts, Problem> {
        let mut errors = Vec::new();
        let mut read =
            |field: String, input: &MoneyInput, signed: bool| read_money(&mut errors, currency, field, input, signed);
        let custom_prices: Vec<Option<Money>> = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| l.custom_price.as_ref().and_then(|p| read(format!("items[{i}].customPrice"), p, false)))
            .collect();
        let discount = match &self.discount {
            None => None,
            Some(DiscountRequest::Fixed(v)) => read("discount".into(), v, false).map(Discount::Fixed),
            // Basis points: a percentage read with two decimals ("12.5" → 1250).
            Some(DiscountRequest::Percentage(v)) => match Money::parse(v.as_str(), Currency::USD) {
                Ok(bp) if (0..=MAX_BASIS_POINTS).contains(&bp.minor()) => Some(Discount::Percentage(bp.minor())),
                _ => None,
            },
        };
        let bad_percentage = matches!(&self.discount, Some(DiscountRequest::Percentage(_))) && discount.is_none();
        let mut tenders = Vec::new();
        let mut references = Vec::new();
        for (i, p) in self.payments.iter().enumerate() {
            if let Some(amount) = read(format!("payments[{i}].amount"), &p.amount, false) {
                if amount.minor() == 0 {
                    continue; // a zero tender (the first till sends them) moves nothing
                }
                tenders.push(Tender { method: p.method, amount });
                references.push(p.reference.clone());
            }
        }
        let extra = self.to_wallet.as_ref().and_then(|v| read("extraWalletAmount".into(), v, true));
        let due_paid = self.due_paid.as_ref().and_then(|v| read("duePaidAmount".into(), v, false));
        if bad_percentage {
            errors.push(FieldError {
                field: "discount".into(),
                message: "a percentage from 0 to 100, with at most two decimals".into(),
            });
        }
        if !errors.is_empty() {
            let precision = errors.iter().all(|e| e.message.contains("decimal places"));
            let mut problem = Problem::validation(errors);
            if precision {
                problem.code = "MONEY_PRECISION".into();
            }
            return Err(problem);
        }
        let zero = Money::zero(currency);
        // A positive extraWalletAmount is money into the wallet; duePaidAmount says the same
        // (the first till sends both for a due payment), so the larger of the two counts.
        let (to_wallet, declared_due) = match extra {
            Some(e) if e.is_negative() => (due_paid.unwrap_or(zero), Some(e.checked_neg().unwrap_or(zero))),
            Some(e) => (if due_paid.is_some_and(|d| d.minor() > e.minor()) { due_paid.unwrap_or(e) } else { e }, None),
            None => (due_paid.unwrap_or(zero), None),
        };
        Ok(Amounts { custom_prices, discount, tenders, references, to_wallet, declared_due })
    }
}

fn read_money(
    errors: &mut Vec<FieldError>,
    currency: Currency,
    field: String,
    input: &MoneyInput,
    signed: bool,
) -> Option<Money> {
    let message = match input.to_money(currency) {
        Ok(m) if m.is_negative() && !signed => "must not be negative".to_owned(),
        Ok(m) => return Some(m),
        Err(MoneyError::TooPrecise) => format!("{currency} has {} decimal places", currency.exponent()),
        Err(MoneyError::Overflow) => "too large".to_owned(),
        Err(_) => "not an amount".to_owned(),
    };
    errors.push(FieldError { field, message });
    None
}
