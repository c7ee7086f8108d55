//! Inputs shared by linewatch's benchmarks, so every benchmark and every baseline beside it
//! parse exactly the same bytes. The benchmarks themselves are in `benches/`.
