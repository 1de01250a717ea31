-- An employee record may be linked only to a member of the same shop (or to nobody): the
-- link is a composite foreign key on the membership, so another shop's user (or an unknown
-- id) cannot be stored, and removing the member unlinks the record instead of failing.
alter table auth.employees
    drop constraint employees_user_id_fkey,
    add constraint employees_member_fkey foreign key (shop_id, user_id)
        references auth.memberships (shop_id, user_id) on delete set null (user_id);
