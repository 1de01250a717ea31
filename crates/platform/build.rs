// sqlx::migrate! embeds migrations/ at compile time; without this a new migration file
// would not rebuild the crate and tests would run an old set.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
