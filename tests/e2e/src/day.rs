//! A shop set up for the day, and the till's calls: used by the scenario and the fault tests.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{unique, Stack, User};

pub const GET: Method = Method::GET;
pub const POST: Method = Method::POST;
pub const PUT: Method = Method::PUT;

pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

pub struct Shop {
    pub id: String,
    pub owner: User,
    pub cashier: User,
    pub register: String,
    pub charger: String,
    pub phone: String,
}

/// Owner, cashier, catalog (three category levels, a supplier, a bulk and a serialized
/// product with uploaded images), stock received, credit allowed, a register open.
pub async fn open_shop(stack: &Stack, name: &str) -> Shop {
    let (owner, shop) = stack.owner("Nimal Perera", name).await;
    let t = owner.token.clone();
    // The order service learns of the shop from auth's event.
    stack
        .eventually("the order service knows the shop", || async {
            let (s, _) = stack.call(GET, &format!("/order/shops/{shop}/settings"), None, Some(&t)).await;
            (s == 200).then_some(())
        })
        .await;
    let cashier = stack.staff(&owner, &shop, "Kamala Silva").await;

    let image = stack.upload_png(&t, "products").await;
    assert!(image.starts_with(&format!("shops/{shop}/products/")), "{image}");
    let category_image = stack.upload_png(&t, "categories").await;
    let c1 = stack
        .call(
            POST,
            "/stock/categories",
            Some(json!({"shopId": shop, "name": "Accessories", "status": "ACTIVE", "imageUrl": category_image})),
            Some(&t),
        )
        .await;
    let c1 = id(&Stack::expect(c1, 201, "category"));
    let c2 = stack
        .call(POST, "/stock/categories/subcategories", Some(json!({"name": "Power", "categoryId": c1})), Some(&t))
        .await;
    let c2 = id(&Stack::expect(c2, 201, "subcategory"));
    let c3 = stack
        .call(
            POST,
            "/stock/categories/subsubcategories",
            Some(json!({"name": "Chargers", "subCategoryId": c2})),
            Some(&t),
        )
        .await;
    let c3 = id(&Stack::expect(c3, 201, "sub-subcategory"));
    let supplier = stack
        .call(POST, "/stock/suppliers", Some(json!({"shopId": shop, "name": "Lanka Distributors", "contactNumber": "0812345678", "email": "sales@lanka.example"})), Some(&t))
        .await;
    let supplier = id(&Stack::expect(supplier, 201, "supplier"));
    let charger = json!({"shopId": shop, "name": "Charger", "tracking": "BULK", "sellPrice": "1500.00",
        "keepingUnits": 5, "imageUrls": [image], "supplierId": supplier, "categoryId": c1,
        "subCategoryId": c2, "subSubCategoryId": c3, "barcode": format!("CHG-{}", unique())});
    let charger =
        Stack::expect(stack.call(POST, "/stock/products", Some(charger), Some(&t)).await, 201, "bulk product");
    assert_eq!(charger["subSubCategory"]["name"], "Chargers");
    let charger = id(&charger);
    let phone = json!({"shopId": shop, "name": "Phone X", "tracking": "SERIALIZED", "imageUrls": [image],
        "warrantyMonths": 12, "categoryId": c1});
    let phone =
        id(&Stack::expect(stack.call(POST, "/stock/products", Some(phone), Some(&t)).await, 201, "serialized product"));
    for imei in ["IMEI-A", "IMEI-B"] {
        let unit = json!({"productId": phone, "barcode": format!("{imei}-{shop}"), "broughtPrice": "40000.00", "sellPrice": "50000.00"});
        Stack::expect(stack.call(POST, "/stock/items", Some(unit), Some(&t)).await, 201, "unit");
    }
    let receipt = json!({"quantity": 10, "unitCost": "900.00", "supplierId": supplier, "note": "opening stock"});
    let level = Stack::expect(
        stack.call(POST, &format!("/stock/products/{charger}/receive"), Some(receipt), Some(&t)).await,
        200,
        "receive",
    );
    assert_eq!((level["onHand"].as_i64(), level["available"].as_i64()), (Some(10), Some(10)));

    let settings = json!({"allowCredit": true, "creditLimit": "5000.00"});
    let s = Stack::expect(
        stack.call(PUT, &format!("/order/shops/{shop}/settings"), Some(settings), Some(&t)).await,
        200,
        "settings",
    );
    assert_eq!((s["allowCredit"].as_bool(), s["creditLimit"].as_str()), (Some(true), Some("5000.00")));

    let register = Uuid::now_v7().to_string();
    let x = stack
        .call(
            POST,
            &format!("/order/registers/{register}/open"),
            Some(json!({"float": "5000.00", "name": "Till 1"})),
            Some(&cashier.token),
        )
        .await;
    let x = Stack::expect(x, 201, "open the register");
    assert_eq!((x["status"].as_str(), x["expectedCash"].as_str()), (Some("OPEN"), Some("5000.00")));
    Shop { id: shop, owner, cashier, register, charger, phone }
}

/// A checkout by the cashier on the shop's register.
pub async fn sell(stack: &Stack, shop: &Shop, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut body = body;
    body["shopId"] = json!(shop.id);
    body["registerId"] = json!(shop.register);
    let (s, b) = stack.call_keyed(POST, "/order/orders", Some(body), Some(&shop.cashier.token), key).await;
    (s.as_u16(), b)
}

pub fn charger(shop: &Shop, quantity: i64) -> Value {
    json!({"productId": shop.charger, "quantity": quantity})
}

pub fn pay(method: &str, amount: &str) -> Value {
    json!({"method": method, "amount": amount})
}

pub async fn wallet(stack: &Stack, shop: &Shop, customer: &User) -> Value {
    let path = format!("/order/customer-wallet/{}/{}", shop.id, customer.id);
    Stack::expect(stack.call(GET, &path, None, Some(&shop.cashier.token)).await, 200, "wallet")
}
