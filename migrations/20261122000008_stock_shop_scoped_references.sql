-- Every reference inside stock stays inside one shop, enforced by the database: a product
-- cannot name another shop's supplier or category, a category another shop's parent, a
-- unit, level, ledger row or discount line another shop's product, even through a bug in
-- a handler. Each referenced table gets a unique (shop_id, id) key and each reference
-- becomes a composite foreign key on (shop_id, id), replacing the id-only one.
--
-- On a database that already holds cross-shop references (the bug this closes), products'
-- optional references to another shop's supplier or category are cleared first; the keys
-- are added NOT VALID (enforced for every new row at once) and then validated, and a table
-- whose old rows cannot pass (the ledger is append-only) keeps an unvalidated key and a
-- warning in the migration log instead of failing the deploy.
update stock.products p set supplier_id = null
 where supplier_id is not null
   and not exists (select 1 from stock.suppliers x where x.supplier_id = p.supplier_id and x.shop_id = p.shop_id);
update stock.products p set category_id = null
 where category_id is not null
   and not exists (select 1 from stock.categories x where x.category_id = p.category_id and x.shop_id = p.shop_id);
update stock.products p set sub_category_id = null
 where sub_category_id is not null
   and not exists (select 1 from stock.categories x where x.category_id = p.sub_category_id and x.shop_id = p.shop_id);
update stock.products p set sub_sub_category_id = null
 where sub_sub_category_id is not null
   and not exists (select 1 from stock.categories x where x.category_id = p.sub_sub_category_id and x.shop_id = p.shop_id);

alter table stock.suppliers add constraint suppliers_shop_key unique (shop_id, supplier_id);
alter table stock.categories add constraint categories_shop_key unique (shop_id, category_id);
alter table stock.products add constraint products_shop_key unique (shop_id, product_id);
alter table stock.items add constraint items_shop_key unique (shop_id, item_id);
alter table stock.discounts add constraint discounts_shop_key unique (shop_id, discount_id);

alter table stock.categories
    drop constraint categories_parent_id_fkey,
    add constraint categories_parent_fkey foreign key (shop_id, parent_id) references stock.categories (shop_id, category_id) not valid;

alter table stock.products
    drop constraint products_supplier_id_fkey,
    drop constraint products_category_id_fkey,
    drop constraint products_sub_category_id_fkey,
    drop constraint products_sub_sub_category_id_fkey,
    add constraint products_supplier_fkey foreign key (shop_id, supplier_id) references stock.suppliers (shop_id, supplier_id) not valid,
    add constraint products_category_fkey foreign key (shop_id, category_id) references stock.categories (shop_id, category_id) not valid,
    add constraint products_sub_category_fkey foreign key (shop_id, sub_category_id) references stock.categories (shop_id, category_id) not valid,
    add constraint products_sub_sub_category_fkey foreign key (shop_id, sub_sub_category_id) references stock.categories (shop_id, category_id) not valid;

alter table stock.items
    drop constraint items_product_id_fkey,
    add constraint items_product_fkey foreign key (shop_id, product_id) references stock.products (shop_id, product_id) not valid;

alter table stock.levels
    drop constraint levels_product_id_fkey,
    add constraint levels_product_fkey foreign key (shop_id, product_id) references stock.products (shop_id, product_id) not valid;

-- A receipt names its supplier as a reference now (it was only text in the reason).
alter table stock.movements
    drop constraint movements_product_id_fkey,
    drop constraint movements_item_id_fkey,
    add column supplier_id uuid,
    add constraint movements_product_fkey foreign key (shop_id, product_id) references stock.products (shop_id, product_id) not valid,
    add constraint movements_item_fkey foreign key (shop_id, item_id) references stock.items (shop_id, item_id) not valid,
    add constraint movements_supplier_fkey foreign key (shop_id, supplier_id) references stock.suppliers (shop_id, supplier_id) not valid;

-- A discount's products carry the shop, so both sides can be held to it.
alter table stock.discount_products add column shop_id uuid;
update stock.discount_products dp set shop_id = d.shop_id from stock.discounts d where d.discount_id = dp.discount_id;
alter table stock.discount_products
    alter column shop_id set not null,
    drop constraint discount_products_discount_id_fkey,
    drop constraint discount_products_product_id_fkey,
    add constraint discount_products_discount_fkey foreign key (shop_id, discount_id)
        references stock.discounts (shop_id, discount_id) on delete cascade not valid,
    add constraint discount_products_product_fkey foreign key (shop_id, product_id)
        references stock.products (shop_id, product_id) not valid;

-- A change's source (a return, an idempotency key's effect) is looked up per product
-- before it is applied a second time.
create index movements_source_idx on stock.movements (product_id, reservation_id) where reservation_id is not null;

-- Validate what the existing rows allow (see the top).
do $$
declare
    c record;
begin
    for c in select * from (values
        ('categories', 'categories_parent_fkey'),
        ('products', 'products_supplier_fkey'),
        ('products', 'products_category_fkey'),
        ('products', 'products_sub_category_fkey'),
        ('products', 'products_sub_sub_category_fkey'),
        ('items', 'items_product_fkey'),
        ('levels', 'levels_product_fkey'),
        ('movements', 'movements_product_fkey'),
        ('movements', 'movements_item_fkey'),
        ('movements', 'movements_supplier_fkey'),
        ('discount_products', 'discount_products_discount_fkey'),
        ('discount_products', 'discount_products_product_fkey')) as t(tbl, con)
    loop
        begin
            execute format('alter table stock.%I validate constraint %I', c.tbl, c.con);
        exception when foreign_key_violation then
            raise warning 'stock.%: % keeps old rows that cross shops; new rows are checked', c.tbl, c.con;
        end;
    end loop;
end
$$;
