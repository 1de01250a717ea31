-- The request behind an e-mail (the id and trace context of the message that asked for it),
-- so `mailer.email.failed`, published later by the sender, names it too.
alter table mailer.emails add column request_id text;
alter table mailer.emails add column traceparent text;
