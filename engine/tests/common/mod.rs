//! What the engine's root-only tests share. The checks themselves are testkit's
//! ([`linewatch_testkit::tools`]: whether CI is set, then a test that cannot run fails instead
//! of skipping; whether this process is root); they are named here for the tests that still
//! reach them through `common`.

pub(crate) use linewatch_testkit::tools::{in_ci, is_root};
