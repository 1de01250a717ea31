-- Two tabs refreshing with the same refresh token at once must not sign the user out: a
-- reuse within a short grace period after the rotation gets the same successor back. The
-- successor is kept sealed with a pad derived from the token it replaced, so only a holder
-- of that (already used) token can read it; the database alone reveals nothing.
alter table auth.refresh_tokens add column successor_sealed bytea;
