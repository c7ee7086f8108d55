//! (filled in by the testkit work)
