//! The bench function's output contract (used by `unseen bench ckks --json`).
//! Not a timing test: only the shape of the records is checked.

#[test]
fn bench_records_have_the_expected_shape() {
    let records = unseen_ckks::bench::run(1, 1).expect("bench");
    let ops: Vec<&str> = records.iter().map(|r| r.op.as_str()).collect();
    assert_eq!(ops, unseen_ckks::bench::OPS);
    for r in &records {
        assert_eq!(r.n, 8192);
        assert_eq!(r.levels, 7);
        assert!(r.ms_median.is_finite() && r.ms_median >= 0.0);
    }
}
