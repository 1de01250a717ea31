-- Every e-mail the platform owes is a row here, written in the same transaction as the
-- inbox record of the event that asked for it: a redelivered event finds its inbox row and
-- writes no second e-mail. The sender claims due rows, sends, and records the outcome;
-- failures back off (next_attempt_at) and end as 'failed', never silently dropped.
create table mailer.emails (
    email_id            uuid primary key,
    -- The event that produced it (null for nothing yet: every e-mail comes from an event).
    source_message_id   uuid,
    source_type         text not null,
    template            text not null,
    recipient           text not null,
    shop_id             uuid,
    subject             text not null,
    -- Rendered bodies. Cleared after sending for sensitive mail (OTPs, reset links).
    html_body           text,
    text_body           text,
    sensitive           boolean not null default false,
    status              text not null default 'queued',
    attempts            integer not null default 0,
    next_attempt_at     timestamptz not null default now(),
    last_error          text,
    provider_message_id text,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    sent_at             timestamptz,
    constraint emails_status_check check (status in ('queued', 'sent', 'failed')),
    constraint emails_attempts_check check (attempts >= 0)
);

-- The sender's scan: due queued mail, oldest first.
create index emails_due_idx on mailer.emails (next_attempt_at) where status = 'queued';
-- The admin list: by status, newest first.
create index emails_status_created_idx on mailer.emails (status, created_at desc);

create trigger emails_set_updated_at before update on mailer.emails
    for each row execute function public.set_updated_at();

-- Wakes the sender when mail is queued (delivered on commit).
create or replace function mailer.notify_emails() returns trigger
language plpgsql as $$
begin
    perform pg_notify('mailer_emails', '');
    return null;
end
$$;
create trigger emails_notify after insert or update of status on mailer.emails
    for each statement execute function mailer.notify_emails();

-- Attachments (receipt PDFs), kept with the e-mail so a retry sends the same bytes. The
-- PDF is also in S3 under the shop's receipts folder (s3_key).
create table mailer.email_attachments (
    attachment_id uuid primary key,
    email_id      uuid not null references mailer.emails (email_id) on delete cascade,
    filename      text not null,
    content_type  text not null,
    content       bytea not null,
    s3_key        text
);
create index email_attachments_email_idx on mailer.email_attachments (email_id);
