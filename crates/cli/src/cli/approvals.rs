//! `airlock approvals`: the operator's side of human approvals, and the
//! prompt `airlock run` shows on a terminal.

use super::args::{ApprovalsCommand, Cli, DecideArgs};
use super::serve::ask;
use super::{Failure, open_state};
use airlock::approvals::{
    Approval, DEFAULT_MAX_APPROVAL_WINDOW, OperatorDecision, Scope, Status, input_sha256,
    shown_input,
};
use airlock::{Host, PendingApproval, exit_code};
use airlock_serve::operator::{OperatorRequest, approval_from};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::time::SystemTime;

pub async fn run(cli: &Cli, command: &ApprovalsCommand) -> u8 {
    match execute(cli, command).await {
        Ok(()) => exit_code::OK,
        Err(failure) => failure.report(),
    }
}

/// Through a running server's operator socket when one answers (the server
/// then records who decided from the socket's peer credentials), else the
/// state directory's database directly.
async fn execute(cli: &Cli, command: &ApprovalsCommand) -> Result<(), Failure> {
    match command {
        ApprovalsCommand::List { all, json } => {
            let approvals = match ask(cli, &OperatorRequest::ApprovalsList { all: *all }).await? {
                Some(answer) => serde_json::from_value::<Vec<Value>>(answer)
                    .map_err(|e| Failure::usage("operator_socket_failed", e.to_string()))?
                    .into_iter()
                    .map(approval_from)
                    .collect::<Result<Vec<_>, _>>()?,
                None => airlock::approvals::kept_in(&open_state(cli)?).list(!all)?,
            };
            if *json {
                outln!(
                    "{}",
                    Value::Array(approvals.iter().map(approval_json).collect())
                );
            } else if approvals.is_empty() {
                outln!("no {}approvals", if *all { "" } else { "pending " });
            } else {
                for a in &approvals {
                    outln!(
                        "{}  {:<8} {}  {}  [{}]  {}",
                        a.id,
                        a.status.as_str(),
                        a.request.principal,
                        a.request.tool_name,
                        a.request.capabilities.join(", "),
                        a.request.input_summary
                    );
                }
            }
        }
        // The whole input is always shown; `--full` stays for scripts.
        ApprovalsCommand::Show { id, full: _, json } => {
            let approval =
                match ask(cli, &OperatorRequest::ApprovalsShow { id: id.clone() }).await? {
                    Some(answer) => Some(approval_from(answer)?),
                    None => airlock::approvals::kept_in(&open_state(cli)?).get(id)?,
                };
            let approval = approval.ok_or_else(|| {
                Failure::usage("approval_not_found", format!("no approval with id `{id}`"))
            })?;
            if *json {
                let mut shown = approval_json(&approval);
                shown["input"] = json!(approval.request.input);
                shown["input_sha256"] = json!(input_sha256(&approval.request.input));
                outln!("{shown}");
            } else {
                print_approval(&approval);
            }
        }
        ApprovalsCommand::Decide(args) => decide(cli, args).await?,
    }
    Ok(())
}

async fn decide(cli: &Cli, args: &DecideArgs) -> Result<(), Failure> {
    let decision = match (&args.allow, &args.deny) {
        (Some(allow), None) => allow.clone(),
        (None, Some(reason)) => OperatorDecision::Deny(reason.clone()),
        _ => {
            return Err(Failure::usage(
                "usage",
                "give exactly one of --allow and --deny",
            ));
        }
    };
    let request = OperatorRequest::ApprovalsDecide {
        id: args.id.clone(),
        decision: decision.clone(),
    };
    let approval = match ask(cli, &request).await? {
        Some(answer) => approval_from(answer)?,
        None => decide_here(cli, &args.id, &decision)?,
    };
    outln!(
        "{}: {decision} ({} for {}, decided by {})",
        approval.id,
        approval.request.tool_name,
        approval.request.principal,
        approval.decided_by.as_deref().unwrap_or("?")
    );
    if decision == OperatorDecision::AllowSession {
        // The session is whatever the caller named; say which, so the
        // next run is made in it.
        outln!(
            "it covers session `{0}`: later calls in it run without asking (`airlock run --session {0} …`)",
            approval.request.session_id
        );
    }
    Ok(())
}

/// Decides in the state directory's database, as the user at this
/// terminal (no server runs to identify an operator).
pub(crate) fn decide_here(
    cli: &Cli,
    id: &str,
    decision: &OperatorDecision,
) -> Result<airlock::approvals::Approval, Failure> {
    decision.window_within(DEFAULT_MAX_APPROVAL_WINDOW)?;
    let store = open_state(cli)?;
    let approval = airlock::approvals::kept_in(&store).decide(
        id,
        decision,
        &format!("cli:{}", local_user_name()),
        SystemTime::now(),
    )?;
    // A writer that stops signs a tree head over what it journaled.
    let key = std::sync::Arc::new(airlock::attest::HostKey::open_or_create(&cli.state_dir)?);
    airlock::journal::Journal::new(airlock::journal::kept_in(&store), key).seal()?;
    Ok(approval)
}

/// The user at this terminal, as decisions made without a server name them.
pub(crate) fn local_user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "local".to_string())
}

fn approval_json(a: &Approval) -> Value {
    let (scope, expires_at, reason) = match &a.status {
        Status::Allowed(Scope::Until(t)) => (Some("until"), Some(*t), None),
        Status::Allowed(scope) => (Some(scope.as_str()), None, None),
        Status::Denied(reason) => (None, None, Some(reason.clone())),
        Status::Pending => (None, None, None),
    };
    json!({
        "id": a.id,
        "created": a.created,
        "status": a.status.as_str(),
        "scope": scope,
        "expires_at": expires_at,
        "reason": reason,
        "decided_at": a.decided_at,
        "decided_by": a.decided_by,
        "used": a.used,
        "principal": a.request.principal,
        "session_id": a.request.session_id,
        "tool": a.request.tool_name,
        "tool_sha256": a.request.tool_sha256,
        "capabilities": a.request.capabilities,
        "grant": a.request.grant_summary,
        "grant_digest": a.request.grant_digest,
        "request_hash": a.request.request_hash,
        "input_summary": a.request.input_summary,
    })
}

fn print_approval(a: &Approval) {
    outln!("approval      {}", a.id);
    outln!("status        {}", a.status.as_str());
    outln!(
        "requested     {} by {} (session {:?})",
        a.created,
        a.request.principal,
        a.request.session_id
    );
    outln!(
        "tool          {} (sha256 {})",
        a.request.tool_name,
        a.request.tool_sha256
    );
    outln!("capabilities  {}", capabilities(a));
    outln!("grant         {}", a.request.grant_summary);
    outln!("input sha256  {}", input_sha256(&a.request.input));
    outln!("input         {}", shown_input(&a.request));
    if let Some(at) = &a.decided_at {
        outln!(
            "decided       {at} by {}",
            a.decided_by.as_deref().unwrap_or("?")
        );
    }
}

/// On a terminal: shows the pending request and asks the operator.
/// `None` leaves it pending.
pub fn prompt(host: &Host, pending: &PendingApproval) -> Option<OperatorDecision> {
    let approval = host.approvals()?.get(&pending.id).ok()??;
    let mut terminal = open_terminal()?;
    eprintln!("\n`{}` needs your approval:", pending.tool);
    print_to_stderr(&approval);
    loop {
        eprint!(
            "allow [o]nce, for the [s]ession, for a [t]ime (e.g. `t 30m`), [d]eny (e.g. `d reason`), or Enter to leave it pending: "
        );
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if terminal.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim();
        let (choice, rest) = line.split_once(' ').unwrap_or((line, ""));
        match choice {
            "" => return None,
            "o" => return Some(OperatorDecision::AllowOnce),
            "s" => return Some(OperatorDecision::AllowSession),
            "t" => match humantime::parse_duration(rest.trim()) {
                Ok(duration) => return Some(OperatorDecision::AllowFor(duration)),
                Err(e) => eprintln!("  {e}: write e.g. `t 30m`"),
            },
            "d" => {
                return Some(OperatorDecision::Deny(if rest.is_empty() {
                    "denied at the terminal".into()
                } else {
                    rest.to_string()
                }));
            }
            other => eprintln!("  `{other}` is not a choice"),
        }
    }
}

/// The capabilities, or why a tool without any needs approval.
fn capabilities(a: &Approval) -> String {
    if a.request.capabilities.is_empty() {
        "none (the operator marked the tool sensitive)".to_string()
    } else {
        a.request.capabilities.join(", ")
    }
}

fn print_to_stderr(a: &Approval) {
    eprintln!("  principal     {}", a.request.principal);
    eprintln!("  capabilities  {}", capabilities(a));
    eprintln!("  grant         {}", a.request.grant_summary);
    eprintln!("  input         {}", shown_input(&a.request));
    eprintln!("  approval id   {}", a.id);
}

/// The controlling terminal, even when stdin carried the input.
fn open_terminal() -> Option<Box<dyn BufRead>> {
    #[cfg(unix)]
    let file = std::fs::File::open("/dev/tty").ok()?;
    #[cfg(windows)]
    let file = std::fs::File::open("CONIN$").ok()?;
    Some(Box::new(std::io::BufReader::new(file)))
}
