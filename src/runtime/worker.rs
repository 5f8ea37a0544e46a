//! The sandbox worker process: reads jobs from stdin, runs each in a fresh Boa realm, writes
//! results to stdout. Everything that can run away is bounded by the parent, which kills this
//! process at the run's deadline; memory is bounded by RLIMIT_DATA set here at start.

use super::http::{self, FetchRequest, NetPolicy};
use super::{Job, JobResult, WorkerSettings};
use boa_engine::builtins::promise::PromiseState;
use boa_engine::error::{EngineError, RuntimeLimitError};
use boa_engine::object::builtins::JsPromise;
use boa_engine::property::Attribute;
use boa_engine::{js_string, Context, JsError, JsNativeError, JsResult, JsString, JsValue, NativeFunction, Source};
use std::cell::RefCell;
use std::io::{BufRead, Write};
use std::sync::Arc;

const PRELUDE: &str = include_str!("prelude.js");
/// Stack of the engine thread: deep enough for the engine's recursion limit through native callbacks.
const ENGINE_STACK: usize = 64 << 20;

type NativeFn = fn(&JsValue, &[JsValue], &mut Context) -> JsResult<JsValue>;

thread_local! {
    static NET: RefCell<Option<(reqwest::blocking::Client, Arc<NetPolicy>)>> = const { RefCell::new(None) };
}

/// Entry point of `actionsd sandbox-worker`. Never returns normally.
pub fn main(settings: WorkerSettings) -> std::process::ExitCode {
    let handle = std::thread::Builder::new()
        .name("sandbox".into())
        .stack_size(ENGINE_STACK)
        .spawn(move || serve(settings))
        .expect("spawn the sandbox thread");
    match handle.join() {
        Ok(code) => code,
        Err(_) => std::process::ExitCode::from(70),
    }
}

fn serve(settings: WorkerSettings) -> std::process::ExitCode {
    let policy = match NetPolicy::parse(&settings.deny_list, &settings.allow_list) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("sandbox: invalid network policy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match http::blocking_client(policy.clone()) {
        Ok(client) => NET.with(|n| *n.borrow_mut() = Some((client, policy))),
        Err(e) => {
            eprintln!("sandbox: http client: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    // Warm the engine once so the baseline includes its one-time allocations.
    drop(run_job(&Job {
        script: "function warm(ctx, api) {}".into(),
        name: "warm".into(),
        flow: 2,
        trigger: 4,
        context: serde_json::json!({}),
        state: serde_json::json!({}),
        top_level_ms: 1000,
    }));
    if settings.memory_limit > 0 {
        let baseline = data_size().unwrap_or(64 << 20);
        let limit = baseline + settings.memory_limit;
        if let Err(e) = rlimit::setrlimit(rlimit::Resource::DATA, limit, limit) {
            eprintln!("sandbox: cannot set the memory limit: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut line = String::new();
    loop {
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return std::process::ExitCode::SUCCESS,
            Ok(_) => {}
        }
        let result = match serde_json::from_str::<Job>(&line) {
            Ok(job) => run_job(&job),
            Err(e) => JobResult { ok: false, error: Some(format!("sandbox: bad job: {e}")), ..Default::default() },
        };
        let mut out = serde_json::to_string(&result).unwrap_or_else(|_| "{\"ok\":false}".into());
        out.push('\n');
        if stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush()).is_err() {
            return std::process::ExitCode::SUCCESS;
        }
    }
}

/// The process's data segment size (what RLIMIT_DATA counts), from /proc.
fn data_size() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmData:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn js_str(s: &str) -> JsValue {
    JsValue::from(JsString::from(s))
}

fn arg_string(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<String> {
    Ok(args.get(i).cloned().unwrap_or_default().to_string(ctx)?.to_std_string_escaped())
}

fn native_fetch(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let raw = arg_string(args, 0, ctx)?;
    let req: FetchRequest =
        serde_json::from_str(&raw).map_err(|e| JsNativeError::error().with_message(format!("fetch: {e}")))?;
    let result = NET.with(|n| match n.borrow().as_ref() {
        Some((client, policy)) => http::fetch_blocking(client, policy, req),
        None => Err("fetch: networking is not available".into()),
    });
    match result {
        Ok(resp) => Ok(js_str(&serde_json::to_string(&resp).unwrap_or_default())),
        Err(msg) => Err(JsNativeError::error().with_message(msg).into()),
    }
}

fn native_uuid(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let kind = arg_string(args, 0, ctx)?;
    let ns_arg = arg_string(args, 1, ctx)?;
    let name = arg_string(args, 2, ctx)?;
    let namespace = |s: &str| -> JsResult<uuid::Uuid> {
        uuid::Uuid::parse_str(s)
            .map_err(|_| JsNativeError::typ().with_message(format!("uuid: invalid namespace {s:?}")).into())
    };
    let id = match kind.as_str() {
        "v1" => {
            let mut node = [0u8; 6];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut node);
            uuid::Uuid::now_v1(&node)
        }
        "v4" => uuid::Uuid::new_v4(),
        "v7" => uuid::Uuid::now_v7(),
        "v3" => uuid::Uuid::new_v3(&namespace(&ns_arg)?, name.as_bytes()),
        "v5" => uuid::Uuid::new_v5(&namespace(&ns_arg)?, name.as_bytes()),
        "ns" => match ns_arg.as_str() {
            "dns" => uuid::Uuid::NAMESPACE_DNS,
            "url" => uuid::Uuid::NAMESPACE_URL,
            "oid" => uuid::Uuid::NAMESPACE_OID,
            _ => uuid::Uuid::NAMESPACE_X500,
        },
        other => return Err(JsNativeError::typ().with_message(format!("uuid: unknown version {other}")).into()),
    };
    Ok(js_str(&id.to_string()))
}

fn native_b64(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    use base64::Engine;
    let text = arg_string(args, 0, ctx)?;
    Ok(js_str(&base64::engine::general_purpose::STANDARD.encode(text.as_bytes())))
}

/// Decodes a base64 metadata value: JSON bytes are parsed, anything else is a string.
fn native_meta_value(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    use base64::Engine;
    let raw = arg_string(args, 0, ctx)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim()))
        .unwrap_or_else(|_| raw.into_bytes());
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        return JsValue::from_json(&value, ctx);
    }
    Ok(js_str(&String::from_utf8_lossy(&bytes)))
}

/// `String(value)` of a thrown value, or the engine's own message for its limit errors.
fn error_text(err: JsError, ctx: &mut Context) -> String {
    if let Some(EngineError::RuntimeLimit(limit)) = err.as_engine() {
        return match limit {
            RuntimeLimitError::Recursion | RuntimeLimitError::StackSize => "recursion limit exceeded".into(),
            RuntimeLimitError::LoopIteration => "loop iteration limit exceeded".into(),
        };
    }
    match err.into_opaque(ctx) {
        Ok(value) => match value.to_string(ctx) {
            Ok(s) => s.to_std_string_escaped(),
            Err(_) => "uncaught exception".into(),
        },
        Err(e) => e.to_string(),
    }
}

fn fail(error: String, logs_json: Option<String>) -> JobResult {
    let mut result = JobResult { ok: false, error: Some(error), ..Default::default() };
    if let Some(raw) = logs_json {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&raw) {
            result.logs = serde_json::from_value(v["logs"].clone()).unwrap_or_default();
            result.http_calls = v["httpCalls"].as_u64().unwrap_or(0) as u32;
            result.log_bytes = v["logBytes"].as_u64().unwrap_or(0);
        }
    }
    result
}

/// Runs one job in a fresh realm.
pub fn run_job(job: &Job) -> JobResult {
    let ctx = &mut Context::default();
    ctx.runtime_limits_mut().set_recursion_limit(512);
    match execute(job, ctx) {
        Ok(result) => result,
        Err(e) => fail(e, None),
    }
}

fn call_logs(run: &boa_engine::JsObject, ctx: &mut Context) -> Option<String> {
    let f = run.get(js_string!("logs"), ctx).ok()?;
    let v = f.as_callable()?.call(&JsValue::from(run.clone()), &[], ctx).ok()?;
    Some(v.to_string(ctx).ok()?.to_std_string_escaped())
}

fn execute(job: &Job, ctx: &mut Context) -> Result<JobResult, String> {
    let input = serde_json::json!({
        "flow": job.flow, "trigger": job.trigger, "name": job.name,
        "context": job.context, "state": job.state,
    });
    let natives: [(&str, usize, NativeFn); 4] = [
        ("__fetch", 1, native_fetch),
        ("__uuid", 3, native_uuid),
        ("__b64", 1, native_b64),
        ("__metaValue", 1, native_meta_value),
    ];
    for (name, len, f) in natives {
        ctx.register_global_callable(JsString::from(name), len, NativeFunction::from_fn_ptr(f))
            .map_err(|e| format!("sandbox: {e}"))?;
    }
    ctx.register_global_property(js_string!("__input"), JsString::from(input.to_string().as_str()), Attribute::all())
        .map_err(|e| format!("sandbox: {e}"))?;
    let run = ctx.eval(Source::from_bytes(PRELUDE)).map_err(|e| format!("sandbox: prelude failed: {e}"))?;
    let run = run.as_object().ok_or("sandbox: prelude returned no object")?.clone();
    // Hide the plumbing from the script; the prelude keeps its own references.
    let global = ctx.global_object();
    for name in ["__fetch", "__uuid", "__b64", "__metaValue", "__input"] {
        let _ = global.delete_property_or_throw(JsString::from(name), ctx);
    }
    for name in ["require", "console"] {
        let value = run.get(JsString::from(name), ctx).map_err(|e| format!("sandbox: {e}"))?;
        global.set(JsString::from(name), value, false, ctx).map_err(|e| format!("sandbox: {e}"))?;
    }
    let ctx_value = run.get(js_string!("ctx"), ctx).map_err(|e| format!("sandbox: {e}"))?;
    let api_value = run.get(js_string!("api"), ctx).map_err(|e| format!("sandbox: {e}"))?;

    if let Err(e) = ctx.eval(Source::from_bytes(job.script.as_bytes())) {
        let text = error_text(e, ctx);
        return Ok(fail(text, call_logs(&run, ctx)));
    }
    let entry = match global.get(JsString::from(job.name.as_str()), ctx) {
        Ok(v) if v.is_callable() => v,
        _ => return Ok(fail(format!("function \"{}\" not found", job.name), call_logs(&run, ctx))),
    };
    let returned = match entry.as_callable().expect("checked callable").call(
        &JsValue::undefined(),
        &[ctx_value, api_value],
        ctx,
    ) {
        Ok(v) => v,
        Err(e) => {
            let text = error_text(e, ctx);
            return Ok(fail(text, call_logs(&run, ctx)));
        }
    };
    // Drain the job queue; a returned promise must settle by then.
    if let Err(e) = ctx.run_jobs() {
        let text = error_text(e, ctx);
        return Ok(fail(text, call_logs(&run, ctx)));
    }
    if let Some(obj) = returned.as_object() {
        if let Ok(promise) = JsPromise::from_object(obj.clone()) {
            match promise.state() {
                PromiseState::Pending => return Ok(fail("promise never settled".into(), call_logs(&run, ctx))),
                PromiseState::Rejected(reason) => {
                    let text = error_text(JsError::from_opaque(reason), ctx);
                    return Ok(fail(text, call_logs(&run, ctx)));
                }
                PromiseState::Fulfilled(_) => {}
            }
        }
    }
    let finish = run.get(js_string!("finish"), ctx).map_err(|e| format!("sandbox: {e}"))?;
    let raw = match finish.as_callable().ok_or("sandbox: no finish")?.call(&JsValue::from(run.clone()), &[], ctx) {
        Ok(v) => v.to_string(ctx).map_err(|e| format!("sandbox: {e}"))?.to_std_string_escaped(),
        Err(e) => {
            let text = error_text(e, ctx);
            return Ok(fail(text, call_logs(&run, ctx)));
        }
    };
    let v: serde_json::Value = serde_json::from_str(&raw).map_err(|e| format!("sandbox: bad result: {e}"))?;
    Ok(JobResult {
        ok: true,
        error: None,
        state: Some(v["state"].clone()),
        logs: serde_json::from_value(v["logs"].clone()).unwrap_or_default(),
        http_calls: v["httpCalls"].as_u64().unwrap_or(0) as u32,
        log_bytes: v["logBytes"].as_u64().unwrap_or(0),
    })
}
