-- An employee record may be linked only to a member of the same shop (or to nobody): the
-- link is a composite foreign key on the membership, so another shop's user (or an unknown
-- id) cannot be stored, and removing the member unlinks the record instead of failing.
-- Links that were already wrong (a removed member, another shop's user) are cleared first.
update auth.employees e set user_id = null
 where user_id is not null
   and not exists (select 1 from auth.memberships m where m.shop_id = e.shop_id and m.user_id = e.user_id);
alter table auth.employees
    drop constraint employees_user_id_fkey,
    add constraint employees_member_fkey foreign key (shop_id, user_id)
        references auth.memberships (shop_id, user_id) on delete set null (user_id);
