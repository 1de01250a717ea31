-- A serialized unit taken out of stock by hand (damaged, lost, entered by mistake) keeps its
-- row and its ledger history: it becomes REMOVED, never deleted. Sold units cannot be removed.
alter table stock.items drop constraint items_status_check;
alter table stock.items add constraint items_status_check check (status in ('AVAILABLE', 'RESERVED', 'SOLD', 'REMOVED'));
