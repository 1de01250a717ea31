//! A set of batches as the column arrays the write statement `unnest`s.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Batch;
use crate::domain::MovementKind;

fn int(v: i64) -> anyhow::Result<i32> {
    i32::try_from(v).context("a quantity out of range")
}

/// The rows of every batch as the columns `unnest` reads.
#[derive(Default)]
pub(super) struct Columns {
    pub(super) h_id: Vec<Uuid>,
    pub(super) h_shop: Vec<Uuid>,
    pub(super) h_exp: Vec<DateTime<Utc>>,
    pub(super) l_res: Vec<Uuid>,
    pub(super) l_no: Vec<i32>,
    pub(super) l_unit: Vec<i32>,
    pub(super) l_product: Vec<Uuid>,
    pub(super) l_item: Vec<Option<Uuid>>,
    pub(super) l_qty: Vec<i32>,
    pub(super) l_name: Vec<String>,
    pub(super) l_price: Vec<i64>,
    pub(super) m_shop: Vec<Uuid>,
    pub(super) m_product: Vec<Uuid>,
    pub(super) m_kind: Vec<MovementKind>,
    pub(super) m_on: Vec<i32>,
    pub(super) m_res: Vec<i32>,
    pub(super) m_item: Vec<Option<Uuid>>,
    pub(super) m_reason: Vec<Option<String>>,
    pub(super) m_actor: Vec<Option<Uuid>>,
    pub(super) m_source: Vec<Option<Uuid>>,
    pub(super) m_order: Vec<Option<Uuid>>,
    pub(super) m_cost: Vec<Option<i64>>,
    pub(super) m_supplier: Vec<Option<Uuid>>,
    pub(super) v_product: Vec<Uuid>,
    pub(super) v_on: Vec<i32>,
    pub(super) v_res: Vec<i32>,
}

impl Columns {
    pub(super) fn of(batches: &[&Batch]) -> anyhow::Result<Self> {
        let mut c = Self::default();
        // Headers in id order, once each: two writers inserting one multi-product
        // reservation's header then wait for each other in the same order.
        let headers: BTreeMap<Uuid, (Uuid, DateTime<Utc>)> =
            batches.iter().flat_map(|b| b.headers.iter().map(|(r, e)| (*r, (b.shop_id, *e)))).collect();
        for (r, (shop, exp)) in headers {
            c.h_id.push(r);
            c.h_shop.push(shop);
            c.h_exp.push(exp);
        }
        for b in batches {
            for (r, l) in &b.lines {
                c.l_res.push(*r);
                c.l_no.push(l.line_no);
                c.l_unit.push(l.unit_no);
                c.l_product.push(b.product_id);
                c.l_item.push(l.item_id);
                c.l_qty.push(int(l.quantity)?);
                c.l_name.push(l.name.clone());
                c.l_price.push(l.unit_price_minor);
            }
            for m in &b.movements {
                c.m_shop.push(b.shop_id);
                c.m_product.push(b.product_id);
                c.m_kind.push(m.kind);
                c.m_on.push(int(m.on_hand)?);
                c.m_res.push(int(m.reserved)?);
                c.m_item.push(m.item);
                c.m_reason.push(m.reason.clone());
                c.m_actor.push(m.actor);
                c.m_source.push(m.source);
                c.m_order.push(m.order);
                c.m_cost.push(m.unit_cost);
                c.m_supplier.push(m.supplier);
            }
        }
        // Level rows in product order (a product is in one batch; the order is for locks).
        let mut levels: BTreeMap<Uuid, (i64, i64)> = BTreeMap::new();
        for b in batches.iter().filter(|b| b.on_hand_delta != 0 || b.reserved_delta != 0) {
            let e = levels.entry(b.product_id).or_default();
            e.0 += b.on_hand_delta;
            e.1 += b.reserved_delta;
        }
        for (p, (on, res)) in levels {
            c.v_product.push(p);
            c.v_on.push(int(on)?);
            c.v_res.push(int(res)?);
        }
        Ok(c)
    }
}
