-- Every reference inside stock stays inside one shop, enforced by the database: a product
-- cannot name another shop's supplier or category, a category another shop's parent, a
-- unit, level, ledger row or discount line another shop's product, even through a bug in
-- a handler. Each referenced table gets a unique (shop_id, id) key and each reference
-- becomes a composite foreign key on (shop_id, id), replacing the id-only one.

alter table stock.suppliers add constraint suppliers_shop_key unique (shop_id, supplier_id);
alter table stock.categories add constraint categories_shop_key unique (shop_id, category_id);
alter table stock.products add constraint products_shop_key unique (shop_id, product_id);
alter table stock.items add constraint items_shop_key unique (shop_id, item_id);
alter table stock.discounts add constraint discounts_shop_key unique (shop_id, discount_id);

alter table stock.categories
    drop constraint categories_parent_id_fkey,
    add constraint categories_parent_fkey foreign key (shop_id, parent_id) references stock.categories (shop_id, category_id);

alter table stock.products
    drop constraint products_supplier_id_fkey,
    drop constraint products_category_id_fkey,
    drop constraint products_sub_category_id_fkey,
    drop constraint products_sub_sub_category_id_fkey,
    add constraint products_supplier_fkey foreign key (shop_id, supplier_id) references stock.suppliers (shop_id, supplier_id),
    add constraint products_category_fkey foreign key (shop_id, category_id) references stock.categories (shop_id, category_id),
    add constraint products_sub_category_fkey foreign key (shop_id, sub_category_id) references stock.categories (shop_id, category_id),
    add constraint products_sub_sub_category_fkey foreign key (shop_id, sub_sub_category_id) references stock.categories (shop_id, category_id);

alter table stock.items
    drop constraint items_product_id_fkey,
    add constraint items_product_fkey foreign key (shop_id, product_id) references stock.products (shop_id, product_id);

alter table stock.levels
    drop constraint levels_product_id_fkey,
    add constraint levels_product_fkey foreign key (shop_id, product_id) references stock.products (shop_id, product_id);

-- A receipt names its supplier as a reference now (it was only text in the reason).
alter table stock.movements
    drop constraint movements_product_id_fkey,
    drop constraint movements_item_id_fkey,
    add column supplier_id uuid,
    add constraint movements_product_fkey foreign key (shop_id, product_id) references stock.products (shop_id, product_id),
    add constraint movements_item_fkey foreign key (shop_id, item_id) references stock.items (shop_id, item_id),
    add constraint movements_supplier_fkey foreign key (shop_id, supplier_id) references stock.suppliers (shop_id, supplier_id);

-- A discount's products carry the shop, so both sides can be held to it.
alter table stock.discount_products add column shop_id uuid;
update stock.discount_products dp set shop_id = d.shop_id from stock.discounts d where d.discount_id = dp.discount_id;
alter table stock.discount_products
    alter column shop_id set not null,
    drop constraint discount_products_discount_id_fkey,
    drop constraint discount_products_product_id_fkey,
    add constraint discount_products_discount_fkey foreign key (shop_id, discount_id)
        references stock.discounts (shop_id, discount_id) on delete cascade,
    add constraint discount_products_product_fkey foreign key (shop_id, product_id)
        references stock.products (shop_id, product_id);
