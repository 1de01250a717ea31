//! `cashvio-admin`: operator commands.
//!
//! - `migrate`: creates the database if missing, applies `migrations/` as the owner role,
//!   and gives each service role the password its `<SERVICE>_DATABASE_URL` carries.
//! - `render-nginx [--out FILE]`: renders `nginx/nginx.conf.template` from the environment.

use cashvio_admin::{migrate, nginx};
use platform::config::{exit_on_error, Env};

const USAGE: &str = "usage: cashvio-admin <migrate | render-nginx [--out FILE]>";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env::load();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("migrate") => {
            let config = exit_on_error(migrate::MigrateConfig::from_env(&env));
            migrate::run(&config).await?;
            println!("migrations applied");
        }
        Some("render-nginx") => {
            let config = exit_on_error(nginx::NginxConfig::from_env(&env));
            let rendered = nginx::render(&config)?;
            match args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1)) {
                Some(path) => {
                    std::fs::write(path, rendered)?;
                    println!("wrote {path}");
                }
                None => print!("{rendered}"),
            }
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(64);
        }
    }
    Ok(())
}
