//! Operator commands: migrations isolate the services' roles; the nginx template renders
//! into a config nginx accepts; compose.yaml agrees with the template and `.env.example`.
#![allow(clippy::unwrap_used, reason = "helpers of a test crate panic with the failure, like its tests")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sqlx::{Connection, PgConnection};

use cashvio_admin::nginx::{render, NginxConfig};
use platform::config::Env;
use testkit::TestDb;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

async fn connect_as(db: &TestDb, role: &str) -> PgConnection {
    PgConnection::connect(db.url(role).expose()).await.unwrap()
}

#[tokio::test]
async fn each_service_role_reads_only_its_own_schema() {
    let db = TestDb::new().await.unwrap();
    let schemas = [
        ("cashvio_auth", "auth"),
        ("cashvio_stock", "stock"),
        ("cashvio_order", "sales"),
        ("cashvio_mailer", "mailer"),
    ];
    for (role, own) in schemas {
        let mut conn = connect_as(&db, role).await;
        for (_, other) in schemas {
            for table in ["outbox", "inbox"] {
                let result = sqlx::query(&format!("select count(*) from {other}.{table}")).fetch_one(&mut conn).await;
                if other == own {
                    assert!(result.is_ok(), "{role} must read {other}.{table}: {result:?}");
                } else {
                    let err = result.expect_err(&format!("{role} must not read {other}.{table}"));
                    let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
                    assert_eq!(
                        code.as_deref(),
                        Some("42501"),
                        "{role} on {other}.{table}: permission denied expected, got {err}"
                    );
                    assert!(err.to_string().contains("permission denied"), "{err}");
                }
            }
        }
        // A service cannot change the schema itself either.
        let ddl = sqlx::query(&format!("create table {own}.sneaky (x int)")).execute(&mut conn).await;
        assert!(ddl.is_err(), "{role} must not create tables");
    }
}

#[tokio::test]
async fn migrate_creates_the_database_and_is_rerunnable() {
    let name = testkit::unique("cashvio_test");
    let mut url = url::Url::parse(&testkit::pg_server_url()).unwrap();
    url.set_path(&name);
    let config = cashvio_admin::migrate::MigrateConfig {
        database_url: platform::config::Secret::new(url.to_string()),
        role_passwords: vec![],
    };
    cashvio_admin::migrate::run(&config).await.unwrap();
    cashvio_admin::migrate::run(&config).await.expect("running migrate twice is harmless");
    let mut conn = PgConnection::connect(url.as_str()).await.unwrap();
    let schemas: Vec<String> = sqlx::query_scalar(
        "select schema_name::text from information_schema.schemata where schema_name in ('auth','stock','sales','mailer') order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(schemas, ["auth", "mailer", "sales", "stock"]);
}

fn render_for_test(dir: &Path) -> String {
    // Defaults and the documented variables only; the runtime dir is the test's own.
    std::env::set_var("NGINX_RUNTIME_DIR", dir);
    std::env::set_var("NGINX_ERROR_LOG", dir.join("error.log"));
    let config = NginxConfig::from_env(&Env::process_only()).unwrap();
    render(&config).unwrap()
}

#[test]
fn nginx_template_renders_into_a_config_nginx_accepts() {
    let dir = std::env::temp_dir().join(testkit::unique("nginx"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = render_for_test(&dir);
    for needle in [
        "location /auth/",
        "location /stock/",
        "location /order/",
        "location /mailer/",
        "proxy_pass http://auth/;",
        "proxy_set_header X-Request-Id $request_id;",
        "client_max_body_size 101m;",
        "client_max_body_size 1m;",
        "limit_req zone=auth_login",
        "application/problem+json",
        "listen 127.0.0.1:8000;",
        "server 127.0.0.1:3010 max_fails=2 fail_timeout=5s;",
        "proxy_next_upstream error timeout http_502;",
    ] {
        assert!(conf.contains(needle), "rendered config lacks {needle:?}");
    }
    let path = dir.join("nginx.conf");
    std::fs::write(&path, &conf).unwrap();
    let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nginx is installed (make test installs it)");
    let out = std::process::Command::new(nginx).args(["-t", "-p"]).arg(&dir).arg("-c").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nginx -t refused the rendered config:\n{stderr}\n{conf}");
    assert!(stderr.contains("test is successful"), "{stderr}");
}

#[test]
fn several_instances_become_one_upstream_each() {
    let dir = std::env::temp_dir().join(testkit::unique("nginx"));
    std::fs::create_dir_all(&dir).unwrap();
    // This test runs in a process of its own (nextest): the variables are its alone.
    std::env::set_var("ORDER_INSTANCES", "3");
    let conf = render_for_test(&dir);
    let order = conf.split("upstream order {").nth(1).and_then(|u| u.split('}').next()).unwrap();
    for port in [3003, 3103, 3203] {
        assert!(order.contains(&format!("server 127.0.0.1:{port} max_fails=2")), "{order}");
    }
    let auth = conf.split("upstream auth {").nth(1).and_then(|u| u.split('}').next()).unwrap();
    assert_eq!(auth.matches("server ").count(), 1, "{auth}");
    std::env::set_var("ORDER_INSTANCES", "0");
    let refused = NginxConfig::from_env(&Env::process_only()).unwrap_err().to_string();
    assert!(refused.contains("ORDER_INSTANCES"), "{refused}");
}

fn env_example_keys() -> BTreeSet<String> {
    std::fs::read_to_string(root().join(".env.example"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_owned()))
        .filter(|k| !k.is_empty())
        .collect()
}

#[test]
fn compose_agrees_with_the_nginx_template_and_env_example() {
    let mut compose: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("compose.yaml")).unwrap()).unwrap();
    compose.apply_merge().unwrap(); // the `<<: *service-env` anchors
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<String> = services.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect();
    for needed in
        ["postgres", "rabbitmq", "moto", "migrate", "nginx-config", "nginx", "auth", "stock", "order", "mailer"]
    {
        assert!(names.contains(needed), "compose.yaml lacks service {needed}: {names:?}");
    }

    // Every environment variable compose sets is documented in .env.example.
    let documented = env_example_keys();
    let infra = ["postgres", "rabbitmq", "moto", "mailpit", "nginx"];
    let mut env_by_service: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (name, svc) in services {
        let name = name.as_str().unwrap().to_owned();
        let mut vars = BTreeMap::new();
        if let Some(env) = svc["environment"].as_mapping() {
            for (k, v) in env {
                let value = match v {
                    serde_yaml::Value::String(s) => s.clone(),
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    _ => String::new(),
                };
                vars.insert(k.as_str().unwrap().to_owned(), value);
            }
        }
        if !infra.contains(&name.as_str()) {
            for k in vars.keys() {
                assert!(
                    documented.contains(k),
                    "compose service {name} sets {k}, which .env.example does not document"
                );
            }
        }
        env_by_service.insert(name, vars);
    }

    // The ports and hosts nginx is rendered with are the ones the services listen on.
    let nginx_env = &env_by_service["nginx-config"];
    for (svc, prefix, default_port) in
        [("auth", "AUTH", "3010"), ("stock", "STOCK", "3002"), ("order", "ORDER", "3003"), ("mailer", "MAILER", "3001")]
    {
        let port_var = format!("{prefix}_PORT");
        let svc_port = env_by_service[svc].get(&port_var).cloned().unwrap_or_else(|| default_port.to_owned());
        let nginx_port = nginx_env.get(&port_var).cloned().unwrap_or_else(|| default_port.to_owned());
        assert_eq!(svc_port, nginx_port, "{svc}: service port and nginx upstream port differ");
        assert_eq!(
            nginx_env.get(&format!("{prefix}_UPSTREAM_HOST")).map(String::as_str),
            Some(svc),
            "nginx must reach {svc} by its compose service name"
        );
        assert_eq!(
            env_by_service[svc].get("HOST").map(String::as_str),
            Some("0.0.0.0"),
            "{svc} must listen on all interfaces in a container"
        );
        let db_url = env_by_service[svc].get(&format!("{prefix}_DATABASE_URL")).cloned().unwrap_or_default();
        assert!(
            db_url.contains(&format!("cashvio_{}", if svc == "order" { "order" } else { svc })),
            "{svc} connects as its own role: {db_url}"
        );
    }
    // nginx publishes the documented port.
    let ports: Vec<String> = services
        .get("nginx")
        .and_then(|n| n["ports"].as_sequence())
        .map(|p| p.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    assert!(ports.iter().any(|p| p.ends_with(":8000")), "nginx publishes 8000: {ports:?}");
    assert_eq!(nginx_env.get("NGINX_PORT").map(String::as_str), Some("8000"));

    // And the template really uses the names compose feeds it.
    let template = cashvio_admin::nginx::TEMPLATE;
    assert!(template.contains("{{ s.host }}:{{ port }}"), "template renders upstream host and ports");
}

#[tokio::test]
async fn super_admin_comes_from_the_command_and_keys_rotate() {
    let db = TestDb::new().await.unwrap();
    let pool = db.admin_in("auth").await;
    let email = format!("root.{}@example.test", uuid::Uuid::new_v4().simple());
    let (id, created) =
        cashvio_admin::accounts::create_super_admin(&pool, &email, "Root", "a long admin secret").await.unwrap();
    assert!(created);
    let (again, created) =
        cashvio_admin::accounts::create_super_admin(&pool, &email, "Root", "another long secret").await.unwrap();
    assert_eq!((again, created), (id, false), "running it again promotes/updates the same account");
    let (role, hash): (String, String) =
        sqlx::query_as("select role, password_hash from auth.users where user_id = $1")
            .bind(id)
            .fetch_one(&db.admin)
            .await
            .unwrap();
    assert_eq!(role, "SUPER_ADMIN");
    assert!(cashvio_auth::crypto::verify_password("another long secret".into(), Some(hash)).await);
    assert!(
        cashvio_admin::accounts::create_super_admin(&pool, &email, "Root", "short").await.is_err(),
        "weak passwords refused"
    );

    let first = cashvio_admin::accounts::rotate_signing_key(&pool, std::time::Duration::from_secs(900)).await.unwrap();
    let second = cashvio_admin::accounts::rotate_signing_key(&pool, std::time::Duration::from_secs(900)).await.unwrap();
    assert_ne!(first, second);
    let (active, published): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where retired_at is null), count(*) filter (where published_until is null or published_until > now())
           from auth.signing_keys",
    )
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert_eq!((active, published), (1, 2), "one key signs, both stay published");
}
