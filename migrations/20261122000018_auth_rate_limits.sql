-- Rate limits shared by every auth instance (issue 15): one row per limited key (an e-mail,
-- an IP) with its fixed window's start and hits. Swept by the service once per window.
create table auth.rate_limits (
    key          text primary key,
    window_start timestamptz not null,
    hits         integer not null check (hits > 0)
);
