//! Renders the nginx path router from `nginx/nginx.conf.template` with the ports and hosts
//! the services are configured with.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use platform::config::{ConfigError, Env};

/// The template, compiled in so the binary renders without the source tree.
pub const TEMPLATE: &str = include_str!("../../nginx/nginx.conf.template");

#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    pub name: &'static str,
    pub host: String,
    pub port: u16,
    /// Every instance's port: `port`, then `port + 100*k` for instance k (`{PREFIX}_INSTANCES`,
    /// as `make up` runs them). One entry under compose, where scaled replicas share the
    /// port on their own addresses and nginx resolves the service's name to all of them.
    pub ports: Vec<u16>,
    pub body_limit: Option<&'static str>,
    pub stream_uploads: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct NginxConfig {
    pub listen: String,
    pub runtime_dir: String,
    pub error_log: String,
    pub access_log: String,
    pub daemon_off: bool,
    pub worker_processes: String,
    pub login_rate: String,
    pub login_burst: u32,
    pub default_body_limit: &'static str,
    pub services: Vec<Upstream>,
}

/// (path name, variable prefix, default port, body limit).
const SERVICES: &[(&str, &str, u16, Option<&str>)] = &[
    ("auth", "AUTH", 3010, None),
    ("stock", "STOCK", 3002, None),
    ("order", "ORDER", 3003, None),
    // Uploads stream through: up to 10 files of 10 MB plus the multipart framing.
    ("mailer", "MAILER", 3001, Some("101m")),
];

impl NginxConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let runtime_dir: String = match env.optional::<String>("NGINX_RUNTIME_DIR")? {
            Some(d) => d,
            None => std::env::current_dir()
                .map(|d| d.join(".stack/nginx"))
                .unwrap_or_else(|_| PathBuf::from("/tmp/cashvio-nginx"))
                .display()
                .to_string(),
        };
        let mut services = Vec::new();
        for (name, prefix, port, limit) in SERVICES {
            let port: u16 = env.or(&format!("{prefix}_PORT"), *port)?;
            let instances: u16 = env.or(&format!("{prefix}_INSTANCES"), 1)?;
            if !(1..=20).contains(&instances) {
                return Err(ConfigError::Invalid {
                    var: format!("{prefix}_INSTANCES"),
                    reason: "must be between 1 and 20".into(),
                });
            }
            let ports = (0..instances)
                .map(|k| {
                    port.checked_add(100 * k).ok_or_else(|| ConfigError::Invalid {
                        var: format!("{prefix}_PORT"),
                        reason: format!("instance {k} would listen past port 65535"),
                    })
                })
                .collect::<Result<Vec<u16>, _>>()?;
            services.push(Upstream {
                name,
                host: env.or(&format!("{prefix}_UPSTREAM_HOST"), "127.0.0.1".to_owned())?,
                port,
                ports,
                body_limit: *limit,
                stream_uploads: limit.is_some(),
            });
        }
        let port: u16 = env.or("NGINX_PORT", 8000)?;
        let bind: String = env.or("NGINX_BIND", "127.0.0.1".to_owned())?;
        Ok(Self {
            listen: format!("{bind}:{port}"),
            error_log: env.or("NGINX_ERROR_LOG", format!("{runtime_dir}/error.log"))?,
            access_log: env.or("NGINX_ACCESS_LOG", format!("{runtime_dir}/access.log"))?,
            runtime_dir,
            daemon_off: env.or("NGINX_DAEMON_OFF", false)?,
            worker_processes: env.or("NGINX_WORKER_PROCESSES", "auto".to_owned())?,
            login_rate: env.or("NGINX_LOGIN_RATE", "30r/m".to_owned())?,
            login_burst: env.or("NGINX_LOGIN_BURST", 20)?,
            default_body_limit: "1m",
            services,
        })
    }
}

pub fn render(config: &NginxConfig) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("nginx.conf", TEMPLATE).context("parsing the nginx template")?;
    env.get_template("nginx.conf")?.render(config).context("rendering the nginx template")
}
