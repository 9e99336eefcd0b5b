//! Prints the CKKS micro-benchmarks (reference preset) as JSON lines:
//! `cargo bench -p unseen-ckks --bench ckks -- [iters] [threads]`
//! (defaults: 20 iterations, 1 thread). No criterion: the medians come from
//! [`unseen_ckks::bench::run`], the function the CLI uses.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; keep only the numeric arguments
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| a.parse::<usize>().is_ok());
    let iters = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let threads = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    for r in unseen_ckks::bench::run(iters, threads)? {
        println!(
            "{{\"op\":\"{}\",\"n\":{},\"levels\":{},\"ms_median\":{:.4}}}",
            r.op, r.n, r.levels, r.ms_median
        );
    }
    Ok(())
}
