//! Benchmark P3: one `tool.execute` decision with the default policies and
//! 1,000 tool entities. The baseline, in the same run, is Cedar alone:
//! `Authorizer::is_authorized` on a request, context and entity set built
//! once in advance, so the ratio is what airlock adds (building the request
//! and context per call, reading the decision's policies and whether an
//! approval could lift it).
//!
//! - **evaluated**: the policies also read `context.run_id` and every call
//!   has its own run id, so every decision misses the cache and is
//!   evaluated. Target: p50 ≤ 10 µs.
//! - **cached**: the shipped policies, the same request again: a hit in
//!   the decision cache. Target: p50 ≤ 1 µs.
//!
//! `cargo bench -p airlock-tests --bench p3_cedar [-- BATCHES]`

use airlock::policy::{
    DEFAULT_POLICIES, DEFAULT_SCHEMA, PolicyEngine, Principal, RequestContext, ToolFacts,
};
use airlock::{Capability, World};
use airlock_tests::stats;
use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request, Schema};
use serde_json::json;
use std::hint::black_box;
use std::str::FromStr;
use std::time::Duration;

const TOOLS: usize = 1_000;
/// Read by no real policy of ours: it makes every call's decision depend on
/// its run id, so none is a cache hit.
const PER_RUN: &str = r#"forbid (principal, action == Airlock::Action::"tool.execute", resource) when { context.run_id == "revoked-run" };"#;
const CALLS_PER_BATCH: usize = 1_000;

fn facts(i: usize) -> ToolFacts {
    let world = [World::Pure, World::Network, World::Files, World::Files][i % 4];
    let capabilities = match i % 4 {
        2 => vec![Capability::FilesystemRead],
        _ => world.capabilities().to_vec(),
    };
    ToolFacts::derive(
        &format!("tool-{i}"),
        world,
        capabilities,
        &format!("{i:064x}"),
        false,
    )
}

/// Cedar alone: the same schema, policies and entities, asked directly.
struct Raw {
    authorizer: Authorizer,
    policies: PolicySet,
    entities: Entities,
    requests: Vec<Request>,
}

impl Raw {
    fn new(tools: &[ToolFacts], asked: &[usize]) -> Result<Self, Box<dyn std::error::Error>> {
        let (schema, _) = Schema::from_cedarschema_str(DEFAULT_SCHEMA)?;
        let entities = tools
            .iter()
            .map(|t| {
                json!({
                    "uid": {"type": "Airlock::Tool", "id": t.name},
                    "attrs": {"name": t.name, "world": t.world, "capabilities": t.capabilities, "sha256": t.sha256, "sensitive": t.sensitive},
                    "parents": [],
                })
            })
            .collect::<Vec<_>>();
        let entities = Entities::from_json_value(json!(entities), Some(&schema))?;
        let requests = asked
            .iter()
            .map(|&i| {
                let context = Context::from_json_value(
                    json!({"run_id": "", "session_id": "s", "device_id": "", "channel": "", "capabilities": tools[i].capabilities, "approved": false}),
                    None,
                )?;
                Ok(Request::new(
                    EntityUid::from_str(r#"Airlock::Agent::"claude""#)?,
                    EntityUid::from_str(r#"Airlock::Action::"tool.execute""#)?,
                    EntityUid::from_str(&format!(r#"Airlock::Tool::"{}""#, tools[i].name))?,
                    context,
                    None,
                )?)
            })
            .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
        Ok(Self {
            authorizer: Authorizer::new(),
            // The same policies as the evaluated path asks.
            policies: PolicySet::from_str(&format!("{DEFAULT_POLICIES}\n{PER_RUN}"))?,
            entities,
            requests,
        })
    }

    fn allowed(&self, index: usize) -> bool {
        self.authorizer
            .is_authorized(&self.requests[index], &self.policies, &self.entities)
            .decision()
            == cedar_policy::Decision::Allow
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batches = stats::iterations(300);
    let tools: Vec<ToolFacts> = (0..TOOLS).map(facts).collect();
    let engine = PolicyEngine::embedded();
    let per_run = PolicyEngine::from_sources(
        ("schema", DEFAULT_SCHEMA),
        &[("default", DEFAULT_POLICIES), ("per-run", PER_RUN)],
        None,
    )?;
    for tool in &tools {
        engine.register_tool(tool)?;
        per_run.register_tool(tool)?;
    }
    // A pure tool (allowed), a network tool (held for approval), a reader
    // (allowed) and a writer (held), spread over the entity set.
    let asked = [500, 501, 502, 503];
    let raw = Raw::new(&tools, &asked)?;
    let principal = Principal::agent("claude");
    let context = RequestContext {
        session_id: "s".into(),
        ..RequestContext::default()
    };
    for (slot, &i) in asked.iter().enumerate() {
        for decision in [
            engine.check_execute(&principal, &tools[i], &context, false),
            per_run.check_execute(&principal, &tools[i], &context, false),
        ] {
            assert_eq!(decision.allowed, raw.allowed(slot), "{}", tools[i].name);
            assert_eq!(decision.allowed, !tools[i].sensitive, "{}", tools[i].name);
            assert_eq!(
                decision.approval_possible, tools[i].sensitive,
                "{}",
                tools[i].name
            );
        }
    }

    let mut cedar = Vec::with_capacity(batches);
    let mut evaluated = Vec::with_capacity(batches);
    let mut cached = Vec::with_capacity(batches);
    let mut run = 0u64;
    for batch in 0..batches {
        let slot = batch % asked.len();
        let tool = &tools[asked[slot]];
        let mut measure_evaluated = || {
            stats::per_call(CALLS_PER_BATCH, || {
                run += 1;
                let context = RequestContext {
                    run_id: run.to_string(),
                    session_id: "s".into(),
                    ..RequestContext::default()
                };
                black_box(per_run.check_execute(
                    black_box(&principal),
                    black_box(tool),
                    &context,
                    false,
                ));
            })
        };
        let measure_cached = || {
            stats::per_call(CALLS_PER_BATCH, || {
                black_box(engine.check_execute(
                    black_box(&principal),
                    black_box(tool),
                    &context,
                    false,
                ));
            })
        };
        let measure_cedar = || {
            stats::per_call(CALLS_PER_BATCH, || {
                black_box(raw.allowed(black_box(slot)));
            })
        };
        // Rotate which goes first so none always runs on a warm cache.
        match batch % 3 {
            0 => {
                evaluated.push(measure_evaluated());
                cached.push(measure_cached());
                cedar.push(measure_cedar());
            }
            1 => {
                cedar.push(measure_cedar());
                evaluated.push(measure_evaluated());
                cached.push(measure_cached());
            }
            _ => {
                cached.push(measure_cached());
                cedar.push(measure_cedar());
                evaluated.push(measure_evaluated());
            }
        }
    }
    assert_eq!(
        per_run.cached_decisions(),
        (0, false),
        "every call evaluated"
    );
    assert_eq!(
        engine.cached_decisions(),
        (asked.len(), true),
        "the cached path hit the cache"
    );

    stats::report(
        &format!(
            "P3: one tool.execute decision, default policies, {TOOLS} tool entities, {batches} batches of {CALLS_PER_BATCH}"
        ),
        (
            "Cedar is_authorized, prebuilt request (baseline)",
            &mut cedar,
        ),
        ("check_execute, evaluated (cache miss)", &mut evaluated),
        2.0,
    );
    let mut cached_vs = cedar.clone();
    stats::report(
        "",
        (
            "Cedar is_authorized, prebuilt request (baseline)",
            &mut cached_vs,
        ),
        ("check_execute, cached (hit)", &mut cached),
        1.0,
    );
    for (what, samples, target) in [
        ("evaluated", &mut evaluated, Duration::from_micros(10)),
        ("cached", &mut cached, Duration::from_micros(1)),
    ] {
        let p50 = stats::percentile(samples, 0.5);
        println!(
            "  check_execute {what} p50 {:.3} µs per decision (target <= {} µs: {})",
            stats::micros(p50),
            stats::micros(target),
            if p50 <= target { "OK" } else { "OVER TARGET" }
        );
    }
    Ok(())
}
