//! `cashvio-admin`: operator commands.
//!
//! - `migrate`: creates the database if missing, applies `migrations/` as the owner role,
//!   and gives each service role the password its `<SERVICE>_DATABASE_URL` carries.
//! - `render-nginx [--out FILE]`: renders `nginx/nginx.conf.template` from the environment.
//! - `create-super-admin --email E --name N`: the first platform super admin; the password
//!   comes from `SUPER_ADMIN_PASSWORD` or, when unset, a line on standard input.
//! - `rotate-signing-key`: a new access-token signing key; old ones stay published.
//! - `rewrap-wallet-keys --key K`: re-wraps every shop's wallet data key under the KMS key K
//!   (KMS ReEncrypt; the data keys and everything sealed with them stay as they are), while
//!   the order service runs. Point `KMS_KEY_ID` at K afterwards so new shops use it too.

use cashvio_admin::{accounts, migrate, nginx};
use platform::config::{exit_on_error, Env};

const USAGE: &str =
    "usage: cashvio-admin <migrate | render-nginx [--out FILE] | create-super-admin --email E --name N | rotate-signing-key | rewrap-wallet-keys --key K>";

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

async fn owner_pool(env: &Env) -> anyhow::Result<sqlx::PgPool> {
    let url = exit_on_error(env.secret_url("DATABASE_URL", &["postgres", "postgresql"]));
    let pool = platform::db::pool(&url, "auth", 2)?;
    Ok(pool)
}

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
        Some("create-super-admin") => {
            let (Some(email), Some(name)) = (flag(&args, "--email"), flag(&args, "--name")) else {
                eprintln!("{USAGE}");
                std::process::exit(64);
            };
            let password = match std::env::var("SUPER_ADMIN_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    eprintln!("password (from standard input):");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let pool = owner_pool(&env).await?;
            match accounts::create_super_admin(&pool, email, name, &password).await {
                Ok((id, true)) => println!("created super admin {email} ({id})"),
                Ok((id, false)) => println!("{email} ({id}) is now a super admin"),
                Err(e) => {
                    eprintln!("create-super-admin: {e:#}");
                    std::process::exit(1);
                }
            }
        }
        Some("rotate-signing-key") => {
            let ttl: u64 = exit_on_error(env.or("ACCESS_TOKEN_TTL_SECS", 900));
            let pool = owner_pool(&env).await?;
            let kid = accounts::rotate_signing_key(&pool, std::time::Duration::from_secs(ttl)).await?;
            println!("new signing key {kid}; older keys stay published for {} s", ttl + 120);
        }
        Some("rewrap-wallet-keys") => {
            let Some(key) = flag(&args, "--key") else {
                eprintln!("{USAGE}");
                std::process::exit(64);
            };
            let order = exit_on_error(cashvio_order::Config::from_env(&env));
            let kms = cashvio_order::wallet::keys::client(&order.kms);
            let pool = owner_pool(&env).await?;
            let n = cashvio_order::wallet::keys::KeyRing::rewrap_all(&kms, &pool, key).await?;
            println!("re-wrapped {n} shop data keys under {key}");
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(64);
        }
    }
    Ok(())
}
