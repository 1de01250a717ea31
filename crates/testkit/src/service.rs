//! Starting services in tests: configuration for an in-process `Application` on port 0,
//! and helpers for running a service binary as a child process.

use std::process::Stdio;
use std::time::Duration;

use platform::config::CommonConfig;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::jwt::JwksServer;
use crate::TestDb;

/// The configuration a service would read from its environment, pointed at this test's
/// database (as the service's own role), the real broker and the test's JWKS.
pub fn common_config(service: &'static str, role: &str, schema: &str, db: &TestDb, jwks: &JwksServer) -> CommonConfig {
    CommonConfig {
        service,
        host: "127.0.0.1".to_owned(),
        port: 0,
        database_url: db.url(role),
        database_schema: schema.to_owned(),
        database_max_connections: 5,
        amqp_url: crate::amqp_url(),
        amqp_exchange: format!("{}.events", crate::unique("test")),
        amqp_queue_type: "classic".to_owned(),
        jwt: jwks.config(),
        shutdown_grace_secs: 5,
    }
}

/// Environment variables that make a service binary start against `db` and the JWKS.
pub fn binary_env(prefix: &str, role: &str, db: &TestDb, jwks: &JwksServer) -> Vec<(String, String)> {
    vec![
        (format!("{prefix}_PORT"), "0".to_owned()),
        (format!("{prefix}_DATABASE_URL"), db.url(role).expose().to_owned()),
        ("AMQP_URL".to_owned(), crate::amqp_url().expose().to_owned()),
        ("AMQP_EXCHANGE".to_owned(), format!("{}.events", crate::unique("test"))),
        ("AMQP_QUEUE_TYPE".to_owned(), "classic".to_owned()),
        ("JWKS_URL".to_owned(), jwks.url().to_string()),
        ("JWT_ISSUER".to_owned(), crate::jwt::ISSUER.to_owned()),
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
        ("SHUTDOWN_GRACE_SECS".to_owned(), "5".to_owned()),
    ]
}

/// Runs `binary` with exactly `env` (nothing inherited, no `.env` in its directory) and
/// returns (exit code, stderr) once it exits.
pub async fn run_to_exit(binary: &str, env: &[(String, String)]) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(crate::unique("bin"));
    let _ = std::fs::create_dir_all(&dir);
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(binary).env_clear().envs(env.iter().cloned()).current_dir(&dir).output(),
    )
    .await
    .expect("binary exits promptly")
    .expect("binary runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A service binary running as a child process.
pub struct ServiceProcess {
    pub child: tokio::process::Child,
    pub port: u16,
}

impl ServiceProcess {
    /// Starts `binary` and waits for its JSON "listening" log line to learn its port.
    pub async fn start(binary: &str, env: &[(String, String)]) -> Self {
        let dir = std::env::temp_dir().join(crate::unique("bin"));
        let _ = std::fs::create_dir_all(&dir);
        let mut child = tokio::process::Command::new(binary)
            .env_clear()
            .envs(env.iter().cloned())
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn service");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["message"] == "listening" {
                        return v["port"].as_u64().and_then(|p| u16::try_from(p).ok());
                    }
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("service logged its port");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, port }
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill");
        assert!(status.success());
    }
}

/// The operational endpoints every service has: health, readiness against the real
/// database and broker, metrics and the OpenAPI document.
pub async fn assert_shell(base_url: &str, service: &str) {
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base_url}{path}")).send();
    let health = get("/health").await.expect("health");
    assert_eq!(health.status(), 200, "{service} /health");
    let ready = get("/ready").await.expect("ready");
    let status = ready.status();
    let body: serde_json::Value = ready.json().await.expect("ready json");
    assert_eq!(status, 200, "{service} /ready: {body}");
    assert_eq!(body["checks"]["database"], "up", "{service}: {body}");
    assert_eq!(body["checks"]["broker"], "up", "{service}: {body}");
    let request_id = get("/health").await.expect("health").headers().get("x-request-id").cloned();
    assert!(request_id.is_some(), "{service}: responses carry X-Request-Id");
    let doc: serde_json::Value = get("/openapi.json").await.expect("openapi").json().await.expect("openapi json");
    assert!(doc["info"]["title"].as_str().is_some_and(|t| t.contains(service)), "{service}: {doc}");
    assert!(doc["paths"]["/ready"].is_object(), "{service}: {doc}");
    assert_openapi_tells_the_truth(service, &doc);
    let metrics = get("/metrics").await.expect("metrics").text().await.expect("metrics text");
    assert!(metrics.contains("route=\"/ready\""), "{service} metrics count requests per route: {metrics}");
    let missing = get("/no-such-path").await.expect("404");
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
}

/// The process contract of a service binary: bad configuration stops it at start with a
/// message naming the variable (no panic, no secret echoed); with good configuration it
/// serves, and SIGTERM makes it drain and exit 0.
pub async fn assert_process_contract(
    binary: &str,
    prefix: &str,
    role: &str,
    db: &TestDb,
    jwks: &JwksServer,
    extra_env: &[(&str, &str)],
) {
    let mut good = binary_env(prefix, role, db, jwks);
    good.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let db_var = format!("{prefix}_DATABASE_URL");
    let without = |var: &str| good.iter().filter(|(k, _)| k != var).cloned().collect::<Vec<_>>();
    let with = |var: &str, value: &str| {
        let mut env = without(var);
        env.push((var.to_owned(), value.to_owned()));
        env
    };
    let cases = [
        ("missing database url", without(&db_var), db_var.clone(), "missing"),
        ("malformed database url", with(&db_var, "postgres//cashvio:s3cr3t-pw@db"), db_var.clone(), "invalid"),
        ("wrong scheme", with(&db_var, "mysql://cashvio:s3cr3t-pw@db/cashvio"), db_var.clone(), "scheme"),
        ("malformed broker url", with("AMQP_URL", "amqp//guest:s3cr3t-pw@host"), "AMQP_URL".to_owned(), "invalid"),
        ("bad port", with(&format!("{prefix}_PORT"), "eighty"), format!("{prefix}_PORT"), "invalid"),
        ("missing issuer", without("JWT_ISSUER"), "JWT_ISSUER".to_owned(), "missing"),
    ];
    for (name, env, var, word) in cases {
        let (code, stderr) = run_to_exit(binary, &env).await;
        assert_eq!(code, Some(2), "{name}: exit code 2 expected, stderr: {stderr}");
        assert!(stderr.contains(&var), "{name}: the message names {var}: {stderr}");
        assert!(stderr.contains(word), "{name}: the message says {word}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{name}: no panic: {stderr}");
        assert!(!stderr.contains("s3cr3t-pw"), "{name}: secrets never echoed: {stderr}");
    }

    let mut process = ServiceProcess::start(binary, &good).await;
    let base = format!("http://127.0.0.1:{}", process.port);
    assert_shell(&base, prefix.to_ascii_lowercase().as_str()).await;
    process.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), process.child.wait())
        .await
        .expect("exits within the grace period after SIGTERM")
        .expect("wait");
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    assert!(reqwest::get(format!("{base}/health")).await.is_err(), "nothing listens after shutdown");
}

/// What the OpenAPI document must say for schemathesis (and clients) to trust it: every
/// `$ref` resolves; every error response is `application/problem+json`; every operation but
/// the operational ones documents the problems any of them can answer.
pub fn assert_openapi_tells_the_truth(service: &str, doc: &serde_json::Value) {
    fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        assert!(doc["components"]["schemas"][name].is_object(), "{service}: {r} does not resolve");
    }
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let responses = op["responses"].as_object().expect("responses");
            for (code, response) in responses {
                if code.starts_with('4') || code.starts_with('5') {
                    if let Some(content) = response["content"].as_object() {
                        let types: Vec<&String> = content.keys().collect();
                        assert_eq!(types, ["application/problem+json"], "{service}: {method} {path} {code}");
                    }
                }
            }
            let operational = op["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == "operations"));
            if !operational {
                for code in ["400", "401", "403", "422"] {
                    assert!(responses.contains_key(code), "{service}: {method} {path} documents {code}");
                }
            }
        }
    }
}
