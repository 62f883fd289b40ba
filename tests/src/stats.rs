//! Percentiles and ratios for the benchmarks in `tests/benches`.

use std::time::Duration;

/// The `p`-th percentile (0.0..=1.0) of `samples` (sorted in place).
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len().saturating_sub(1)) as f64 * p).round() as usize;
    samples.get(index).copied().unwrap_or_default()
}

/// Microseconds as a float, for printing.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Prints p50 and p90 of a candidate and its baseline, their p50 ratio and
/// whether it meets `target`; returns the ratio.
pub fn report(
    title: &str,
    baseline: (&str, &mut [Duration]),
    candidate: (&str, &mut [Duration]),
    target: f64,
) -> f64 {
    let (base_name, base) = baseline;
    let (cand_name, cand) = candidate;
    let (b50, b90) = (percentile(base, 0.5), percentile(base, 0.9));
    let (c50, c90) = (percentile(cand, 0.5), percentile(cand, 0.9));
    let ratio = c50.as_secs_f64() / b50.as_secs_f64();
    println!("{title}");
    println!(
        "  {base_name:<44} p50 {:9.2} µs   p90 {:9.2} µs",
        micros(b50),
        micros(b90)
    );
    println!(
        "  {cand_name:<44} p50 {:9.2} µs   p90 {:9.2} µs",
        micros(c50),
        micros(c90)
    );
    println!(
        "  ratio (p50 {cand_name} / p50 {base_name}): {ratio:.2}x   target <= {target:.2}x   {}",
        if ratio <= target { "OK" } else { "OVER TARGET" }
    );
    ratio
}

/// The mean time of one call of `work`, over `calls` calls in a row.
pub fn per_call(calls: usize, mut work: impl FnMut()) -> Duration {
    let start = std::time::Instant::now();
    for _ in 0..calls {
        work();
    }
    start.elapsed() / u32::try_from(calls.max(1)).unwrap_or(u32::MAX)
}

/// The first non-flag command-line argument as a number, or `default`
/// (`cargo bench` passes `--bench`).
pub fn iterations(default: usize) -> usize {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The median of `values` (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Calls per second of `tasks` concurrent tasks, each invoking `tool` with
/// `input` `calls` times (the output must echo the input).
pub async fn calls_per_second(
    host: &airlock::Host,
    tool: &airlock::Tool,
    input: &'static str,
    tasks: usize,
    calls: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let start = std::time::Instant::now();
    let running: Vec<_> = (0..tasks)
        .map(|_| {
            let (host, tool) = (host.clone(), tool.clone());
            tokio::spawn(async move {
                for _ in 0..calls {
                    let outcome = host.invoke(&tool, airlock::Invocation::new(input)).await?;
                    assert_eq!(outcome.output(), Some(input));
                }
                Ok::<_, airlock::InvokeError>(())
            })
        })
        .collect();
    for task in running {
        task.await??;
    }
    Ok((tasks * calls) as f64 / start.elapsed().as_secs_f64())
}

/// The medians of `rounds` measurements of `a` and of `b`, after one
/// warm-up of each, alternating which goes first.
pub async fn paired_medians<A, B, FA, FB>(
    rounds: usize,
    mut a: A,
    mut b: B,
) -> Result<(f64, f64), Box<dyn std::error::Error>>
where
    A: FnMut() -> FA,
    B: FnMut() -> FB,
    FA: std::future::Future<Output = Result<f64, Box<dyn std::error::Error>>>,
    FB: std::future::Future<Output = Result<f64, Box<dyn std::error::Error>>>,
{
    a().await?;
    b().await?;
    let (mut of_a, mut of_b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for round in 0..rounds {
        if round % 2 == 0 {
            of_a.push(a().await?);
            of_b.push(b().await?);
        } else {
            of_b.push(b().await?);
            of_a.push(a().await?);
        }
    }
    Ok((median(&mut of_a), median(&mut of_b)))
}
