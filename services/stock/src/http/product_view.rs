//! What a product reads back as: the row (with its level and nested names), the view in
//! the shop's currency (prices as the first system's clients read them), and the select
//! both list and read use.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use platform::{Currency, Money};

use crate::domain::Tracking;

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ProductRow {
    #[sqlx(rename = "product_id")]
    pub(super) id: Uuid,
    pub(super) shop_id: Uuid,
    pub(super) name: String,
    pub(super) display_name: Option<String>,
    pub(super) description: Option<String>,
    pub(super) image_urls: Vec<String>,
    pub(super) keeping_units: i32,
    pub(super) warranty_months: i32,
    pub(super) loyalty_points: i32,
    pub(super) supplier_id: Option<Uuid>,
    pub(super) category_id: Option<Uuid>,
    pub(super) sub_category_id: Option<Uuid>,
    pub(super) sub_sub_category_id: Option<Uuid>,
    /// ACTIVE, or INACTIVE when hidden (the first system's name, which its clients know;
    /// HIDE is accepted for it in requests).
    pub(super) status: String,
    pub(super) sku: Option<String>,
    pub(super) barcode: Option<String>,
    pub(super) tracking: Tracking,
    #[serde(skip)]
    pub(super) sell_price_minor: Option<i64>,
    /// The related records as nested objects, as the first system's clients read them:
    /// `supplier{id,name,email,contactNumber,haveWhatsApp}`, `category{id,name}`,
    /// `subCategory{id,name,categoryId}`, `subSubCategory{id,name,subCategoryId}`; null when unset.
    #[schema(value_type = Option<Object>)]
    pub(super) supplier: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub(super) category: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub(super) sub_category: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub(super) sub_sub_category: Option<serde_json::Value>,
    pub(super) on_hand: i64,
    pub(super) reserved: i64,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    #[serde(flatten)]
    pub(super) row: ProductRow,
    sell_price: Option<String>,
    available: i64,
    /// `available` again, under the name the first system's clients read.
    stock: i64,
}

pub const PRODUCT_SELECT: &str = "select p.product_id, p.shop_id, p.name, p.display_name, p.description, p.image_urls,
        p.keeping_units, p.warranty_months, p.loyalty_points, p.supplier_id, p.category_id, p.sub_category_id,
        p.sub_sub_category_id, case p.status when 'HIDE' then 'INACTIVE' else p.status end as status, p.sku, p.barcode, p.tracking, p.sell_price_minor, p.created_at, p.updated_at,
        (select json_build_object('id', su.supplier_id, 'name', su.name, 'email', su.email, 'contactNumber', su.contact_number,
                'haveWhatsApp', su.have_whatsapp) from suppliers su where su.supplier_id = p.supplier_id) as supplier,
        (select json_build_object('id', c.category_id, 'name', c.name) from categories c where c.category_id = p.category_id) as category,
        (select json_build_object('id', c.category_id, 'name', c.name, 'categoryId', c.parent_id)
           from categories c where c.category_id = p.sub_category_id) as sub_category,
        (select json_build_object('id', c.category_id, 'name', c.name, 'subCategoryId', c.parent_id)
           from categories c where c.category_id = p.sub_sub_category_id) as sub_sub_category,
        case when p.tracking = 'BULK' then coalesce(l.on_hand, 0)::bigint
             else (select count(*) from items i where i.product_id = p.product_id and i.status in ('AVAILABLE', 'RESERVED')) end as on_hand,
        case when p.tracking = 'BULK' then coalesce(l.reserved, 0)::bigint
             else (select count(*) from items i where i.product_id = p.product_id and i.status = 'RESERVED') end as reserved
   from products p left join levels l using (product_id)";

pub fn view(row: ProductRow, currency: Currency) -> ProductView {
    let sell_price = row.sell_price_minor.map(|m| Money::from_minor(m, currency).to_decimal_string());
    let available = row.on_hand - row.reserved;
    ProductView { row, sell_price, available, stock: available }
}
