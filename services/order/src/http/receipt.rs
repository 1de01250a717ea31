//! `GET /orders/{id}/receipt`: the sale's receipt as an HTML page, or as a PDF with
//! `Accept: application/pdf` (the same layout the e-mailed receipt attaches).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use contracts::common::Recipient;
use contracts::sales::{OrderCompleted, PaymentLine, ReceiptLine};
use platform::auth::AuthUser;
use platform::http::Path;
use platform::Problem;

use super::AppState;
use crate::db::shops;
use crate::error::Error;
use crate::view::OrderView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receipt))
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Receipt #{{ orderNumber }}</title>
<style>body{font-family:sans-serif;max-width:36rem;margin:2rem auto;color:#1f2933}td{padding:.2rem .4rem}
.r{text-align:right}.muted{color:#7b8794}</style></head><body>
<h1>{{ shop.name }}</h1>
{% if shop.address %}<div class="muted">{{ shop.address }}</div>{% endif %}
{% if shop.contactPhone %}<div class="muted">{{ shop.contactPhone }}</div>{% endif %}
<h2>Receipt #{{ orderNumber }}</h2><div class="muted">{{ completedAt }}</div>
<table>
{% for l in lines %}<tr><td>{{ l.name }}{% if l.barcode %}<br><span class="muted">#{{ l.barcode }}</span>{% endif %}
{% if l.warrantyUntil %}<br><span class="muted">warranty until {{ l.warrantyUntil[:10] }}</span>{% endif %}</td>
<td class="r">{{ l.quantity }} × {{ l.unitPrice }}</td><td class="r">−{{ l.discount }}</td><td class="r">{{ l.lineTotal }}</td></tr>
{% endfor %}
<tr><td colspan="3">Subtotal</td><td class="r">{{ subtotal }}</td></tr>
<tr><td colspan="3">Discounts</td><td class="r">−{{ discountTotal }}</td></tr>
<tr><td colspan="3"><b>Total ({{ currency }})</b></td><td class="r"><b>{{ total }}</b></td></tr>
{% for p in payments %}<tr><td colspan="3">Paid by {{ p.method | lower }}</td><td class="r">{{ p.amount }}</td></tr>{% endfor %}
<tr><td colspan="3">Change</td><td class="r">{{ change }}</td></tr>
</table></body></html>
"#;

/// The receipt of a booked order, as the completed event carries it.
fn receipt_of(order: &OrderView, shop: contracts::common::ShopBrand) -> OrderCompleted {
    OrderCompleted {
        order_id: order.id,
        reservation_id: None,
        order_number: order.sequence,
        shop,
        currency: order.currency.clone(),
        customer_id: order.customer_id,
        customer: order
            .customer
            .as_ref()
            .and_then(|c| c.email.as_ref().map(|email| Recipient { email: email.clone(), name: c.name.clone() })),
        lines: order
            .order_items
            .iter()
            .map(|l| ReceiptLine {
                name: l.name.clone(),
                product_id: Some(l.product_id),
                barcode: l.barcode.clone(),
                quantity: l.quantity,
                unit_price: l.selling_price.clone(),
                discount: l.discount.clone(),
                line_total: l.line_total.clone(),
                warranty_until: l.warranty_until,
            })
            .collect(),
        subtotal: order.subtotal.clone(),
        discount_total: order.discount.clone(),
        total: order.total.clone(),
        payments: order
            .payments
            .iter()
            .map(|p| PaymentLine { method: p.method.clone(), amount: p.amount.clone(), reference: p.reference.clone() })
            .collect(),
        change: order.change.clone(),
        wallet_balance_after: None,
        cashier_name: None,
        completed_at: order.completed_at.unwrap_or(order.created_at),
    }
}

/// The receipt of a sale (not of a draft or a cancelled order).
#[utoipa::path(get, path = "/orders/{id}/receipt", tag = "orders", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "The receipt: HTML, or PDF with Accept: application/pdf",
        content((String = "text/html"), (Vec<u8> = "application/pdf"))),
    (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn receipt(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Response, Problem> {
    let order = super::orders::visible(&s, &user, id).await?;
    if order.completed_at.is_none() {
        return Err(Error::OrderState(order.status).into());
    }
    let shop = shops::get(&s.pool, order.shop_id).await.map_err(Error::from)?.ok_or(Error::ShopNotFound)?;
    let event = receipt_of(&order, shop.brand());
    let wants_pdf =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/pdf"));
    if wants_pdf {
        let bytes = service::receipt::sale_pdf(&event);
        let mut res = (StatusCode::OK, bytes).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
        if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"receipt-{}.pdf\"", order.order_number)) {
            res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        return Ok(res);
    }
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    let html = env
        .render_str(PAGE, minijinja::Value::from_serialize(&event))
        .map_err(|e| Problem::internal(&anyhow::anyhow!("rendering a receipt: {e}")))?;
    let mut res = (StatusCode::OK, html).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    Ok(res)
}
