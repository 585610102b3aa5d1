//! The gateway's configuration file (`custos serve --config`): `Config::from_yaml` then `validate` on
//! any text never panic, and a configuration that validates does not fail later where `serve` uses it.
//!
//! custos-cli is a binary crate, so its `config.rs` is compiled here in place, read-only; the external
//! crates it names are this package's dependencies. If it starts to use `crate::` items, move `Config`
//! into a library and point this target at it.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/cli/src/config.rs"]
mod config;

use custos_audit::merkle::EMPTY_ROOT;
use custos_audit::{Checkpoint, SignerKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = config::Config::from_yaml(text) else {
        return;
    };
    let Ok(()) = config.validate() else {
        return;
    };
    // `serve` names the audit log's signing key and every checkpoint's origin after `audit.logName`;
    // a name that validates must not make the key or the first checkpoint fail at run time.
    let name = &config.audit.log_name;
    let key = SignerKey::from_seed(name, [1; 32])
        .unwrap_or_else(|e| panic!("audit.logName {name:?} validated but is no key name: {e}"));
    Checkpoint::new(name.clone(), 0, EMPTY_ROOT)
        .sign(&key)
        .unwrap_or_else(|e| {
            panic!("audit.logName {name:?} validated but cannot sign checkpoints: {e}")
        });
});
