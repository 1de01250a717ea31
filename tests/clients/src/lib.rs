//! Nothing here: the crate is its test, `tests/replay.rs`, which replays the first Cashvio
//! front ends' calls against the running stack. `stack/smoke.sh` runs it after `make up`.
