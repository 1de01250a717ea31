//! The sender: claims due queued e-mails with a lease (`for update skip locked`, so several
//! mailer instances share the work), sends them concurrently over the pooled transport, and
//! records each outcome as soon as it is known. A temporary failure backs off
//! exponentially; the last attempt, a permanent refusal or an unusable address marks the
//! e-mail failed and announces `mailer.email.failed` through the outbox.

use std::sync::Arc;
use std::time::Duration;

use platform::shutdown::CancellationToken;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use uuid::Uuid;

use bus::MessageMeta;
use contracts::mailer::EmailFailed;

use crate::config::DeliveryConfig;
use crate::email::smtp::{self, SendError, Smtp};

#[derive(sqlx::FromRow)]
struct Due {
    email_id: Uuid,
    recipient: String,
    template: String,
    subject: String,
    html_body: Option<String>,
    text_body: Option<String>,
    attempts: i32,
    shop_id: Option<Uuid>,
    request_id: Option<String>,
    traceparent: Option<String>,
}

/// How long a claimed e-mail is the claiming sender's: longer than any one SMTP exchange
/// (sends are cut off at half of it), so two senders never hold it at once.
const LEASE: Duration = Duration::from_secs(60);

enum Outcome {
    Sent(String),
    Retry(String),
    Failed(String),
}

pub struct Sender {
    pool: PgPool,
    smtp: Arc<Smtp>,
    config: DeliveryConfig,
}

impl Sender {
    pub fn new(pool: PgPool, smtp: Arc<Smtp>, config: DeliveryConfig) -> Self {
        Self { pool, smtp, config }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener = None;
        while !shutdown.is_cancelled() {
            if listener.is_none() {
                listener = async {
                    let mut l = PgListener::connect_with(&self.pool).await?;
                    l.listen("mailer_emails").await?;
                    Ok::<_, sqlx::Error>(l)
                }
                .await
                .map_err(|e| tracing::warn!(error = %e, "mail sender cannot listen; polling"))
                .ok();
            }
            match self.send_batch().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "mail sender batch failed"),
            }
            // Idle until new mail, the next retry falls due, or a poll tick.
            let wait = self.next_due_in().await.unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(1));
            let broken = match listener.as_mut() {
                Some(l) => tokio::select! {
                    () = shutdown.cancelled() => break,
                    r = tokio::time::timeout(wait, l.recv()) => matches!(r, Ok(Err(_))),
                },
                None => tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(wait) => false,
                },
            };
            if broken {
                listener = None;
            }
        }
        tracing::info!("mail sender stopped");
    }

    async fn next_due_in(&self) -> Option<Duration> {
        next_due_in(&self.pool).await
    }

    /// One batch; returns how many e-mails it settled. The batch is claimed with a lease
    /// (its next attempt moves past `LEASE`, committed at once), then each e-mail is sent and
    /// its outcome recorded on its own as soon as it is known: a mailer killed mid-batch
    /// leaves only the e-mails whose outcome was not yet recorded, and they fall due again
    /// when the lease ends (another instance may take them then). A duplicate needs the
    /// process to die between the SMTP server's acceptance and that one update; it then
    /// carries the same Message-ID (`<email_id@cashvio.mailer>`), which mail stores collapse.
    pub async fn send_batch(&self) -> anyhow::Result<usize> {
        let due: Vec<Due> = sqlx::query_as(
            "update emails e set next_attempt_at = now() + make_interval(secs => $2)
               from (select email_id from emails
                      where status = 'queued' and next_attempt_at <= now()
                      order by next_attempt_at
                      limit $1
                        for update skip locked) c
              where e.email_id = c.email_id
             returning e.email_id, e.recipient, e.template, e.subject, e.html_body, e.text_body, e.attempts,
                       e.shop_id, e.request_id, e.traceparent",
        )
        .bind(self.config.batch_size)
        .bind(LEASE.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = due.iter().map(|d| d.email_id).collect();
        let attachments: Vec<(Uuid, String, String, Vec<u8>)> = sqlx::query_as(
            "select email_id, filename, content_type, content from email_attachments where email_id = any($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let sends = due.iter().map(|d| {
            let files: Vec<(String, String, Vec<u8>)> = attachments
                .iter()
                .filter(|a| a.0 == d.email_id)
                .map(|a| (a.1.clone(), a.2.clone(), a.3.clone()))
                .collect();
            async move {
                // Within the lease, so no other sender takes it while this one still tries.
                let outcome = match tokio::time::timeout(LEASE / 2, self.send_one(d, files)).await {
                    Ok(o) => o,
                    Err(_) => Outcome::Retry("the SMTP exchange took longer than the lease allows".into()),
                };
                if let Err(e) = self.record(d, outcome).await {
                    // Not lost: the e-mail falls due again when its lease ends.
                    tracing::warn!(email_id = %d.email_id, error = %format!("{e:#}"), "could not record a send");
                }
            }
        });
        futures::future::join_all(sends).await;
        Ok(due.len())
    }

    /// Records one e-mail's outcome at once (in its own transaction).
    async fn record(&self, d: &Due, outcome: Outcome) -> anyhow::Result<()> {
        let attempts = d.attempts + 1;
        match outcome {
            Outcome::Sent(provider_id) => {
                sqlx::query(
                    "update emails set status = 'sent', attempts = $2, sent_at = now(), last_error = null,
                            provider_message_id = $3,
                            html_body = case when sensitive then null else html_body end,
                            text_body = case when sensitive then null else text_body end
                      where email_id = $1",
                )
                .bind(d.email_id)
                .bind(attempts)
                .bind(provider_id)
                .execute(&self.pool)
                .await?;
            }
            Outcome::Retry(error) if attempts < self.config.max_attempts => {
                let delay = self.backoff(attempts);
                tracing::warn!(email_id = %d.email_id, attempts, %error, retry_in_ms = delay.as_millis(), "send failed; will retry");
                sqlx::query(
                    "update emails set attempts = $2, last_error = $3,
                            next_attempt_at = now() + make_interval(secs => $4)
                      where email_id = $1",
                )
                .bind(d.email_id)
                .bind(attempts)
                .bind(&error)
                .bind(delay.as_secs_f64())
                .execute(&self.pool)
                .await?;
            }
            Outcome::Retry(error) | Outcome::Failed(error) => {
                tracing::error!(email_id = %d.email_id, attempts, %error, "e-mail failed for good");
                let mut tx = self.pool.begin().await?;
                mark_failed(&mut tx, d.email_id, attempts, &error).await?;
                let meta = MessageMeta { request_id: d.request_id.clone(), traceparent: d.traceparent.clone() };
                let failure = Failure {
                    email_id: d.email_id,
                    template: &d.template,
                    recipient: &d.recipient,
                    attempts,
                    error: &error,
                    shop_id: d.shop_id,
                };
                announce_failure(&mut tx, &failure, &meta).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    async fn send_one(&self, d: &Due, attachments: Vec<(String, String, Vec<u8>)>) -> Outcome {
        let (Some(html), Some(text)) = (&d.html_body, &d.text_body) else {
            return Outcome::Failed("the body was dropped (sensitive e-mail already sent)".into());
        };
        let message = match smtp::message(
            self.smtp.from_address(),
            &d.recipient,
            d.email_id,
            &d.subject,
            text,
            html,
            attachments,
        ) {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(format!("{e:#}")),
        };
        match self.smtp.send(message).await {
            Ok(id) => Outcome::Sent(id),
            Err(SendError::Temporary(e)) => Outcome::Retry(e),
            Err(SendError::Permanent(e)) => Outcome::Failed(e),
        }
    }

    fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(20);
        self.config.retry_base.saturating_mul(1u32 << exp).min(self.config.retry_max)
    }
}

pub async fn mark_failed(
    conn: &mut sqlx::PgConnection,
    email_id: Uuid,
    attempts: i32,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query("update emails set status = 'failed', attempts = $2, last_error = $3 where email_id = $1")
        .bind(email_id)
        .bind(attempts)
        .bind(error)
        .execute(conn)
        .await
        .map(|_| ())
}

/// An e-mail that failed for good.
pub struct Failure<'a> {
    pub email_id: Uuid,
    pub template: &'a str,
    pub recipient: &'a str,
    pub attempts: i32,
    pub error: &'a str,
    pub shop_id: Option<Uuid>,
}

/// `mailer.email.failed`, carrying the request context of the message that asked for the
/// e-mail (`meta`).
pub async fn announce_failure(
    conn: &mut sqlx::PgConnection,
    f: &Failure<'_>,
    meta: &MessageMeta,
) -> anyhow::Result<()> {
    let event = EmailFailed {
        email_id: f.email_id,
        template: f.template.to_owned(),
        recipient: f.recipient.to_owned(),
        attempts: f.attempts,
        last_error: f.error.chars().take(1_000).collect(),
        shop_id: f.shop_id,
    };
    bus::enqueue(conn, &event, meta).await?;
    Ok(())
}

/// How long until the next queued e-mail falls due; `None` when nothing is queued (the
/// sender then sleeps until woken or its poll tick). `min` over no rows is NULL, and so it
/// must stay: `greatest(NULL, 0)` is 0 in PostgreSQL, which had an idle sender polling a
/// hundred times a second.
pub async fn next_due_in(pool: &PgPool) -> Option<Duration> {
    let secs: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from (min(next_attempt_at) - now()))::float8 from mailer.emails where status = 'queued'",
    )
    .fetch_one(pool)
    .await
    .ok()
    .flatten();
    secs.map(|s| Duration::from_secs_f64(s.max(0.01)))
}
