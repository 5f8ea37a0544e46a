//! The sandbox worker process: reads jobs from stdin, runs each in a fresh Boa realm, writes
//! results to stdout. Everything that can run away is bounded by the parent, which kills this
//! process at the run's deadline; memory is bounded by RLIMIT_DATA, set before each run to its
//! limit over what the worker holds then.

use super::api;
use super::http::{self, NetPolicy};
use super::{Job, JobResult, WorkerSettings};
use crate::domain::{FlowType, Trigger, TriggerType};
use boa_engine::builtins::promise::PromiseState;
use boa_engine::error::{EngineError, RuntimeLimitError};
use boa_engine::module::IdleModuleLoader;
use boa_engine::object::builtins::JsPromise;
use boa_engine::{Context, JsError, JsString, JsValue, Source};
use std::io::{BufRead, Write};
use std::sync::Arc;

/// Written to stderr by a worker that ends itself because a script's top level ran too long.
pub const TOP_LEVEL_EXIT: &str = "sandbox: top-level evaluation timed out";

/// Written to stderr by a worker that ends itself because its run passed the deadline and the
/// server did not kill it first (the server is gone or stalled).
pub const DEADLINE_EXIT: &str = "sandbox: run deadline passed";

/// How long after a run's deadline the worker ends itself. The server kills it at the deadline;
/// this is the second line, within runtime-v1's "timeout + 50 ms".
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(25);

/// Stack of the engine thread: deep enough for the engine's recursion limit through native callbacks.
const ENGINE_STACK: usize = 64 << 20;

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
    // First of all, so that a server that dies while this worker starts is noticed too.
    exit_on_hangup();
    let stdin = std::io::stdin();
    let mut jobs = stdin.lock();
    let policy = match NetPolicy::parse(&settings.deny_list, &settings.allow_list) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("sandbox: invalid network policy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let net = match http::blocking_client(policy.clone()) {
        Ok(client) => api::Net { client, policy },
        Err(e) => {
            eprintln!("sandbox: http client: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let watch = Watchdog::start();
    // Warm the engine once so the baseline includes its one-time allocations.
    drop(run_job(&Job {
        script: "function warm(ctx, api) {}".into(),
        name: "warm".into(),
        flow: 2,
        trigger: 4,
        context: serde_json::json!({}),
        state: serde_json::json!({}),
        top_level_ms: 1000,
        deadline_ms: 0,
        secrets: Default::default(),
        deny_fetch: false,
    }));
    // Past this data size a worker asks to be replaced (see JobResult::retire).
    let mut retire_at = u64::MAX;
    // The hard limit: what a worker may reach, a run's whole limit over the most a worker keeps
    // between runs (it is replaced past `retire_at`) and the realm built for the next run.
    let mut hard_limit = u64::MAX;
    if settings.memory_limit > 0 {
        let baseline = data_size().unwrap_or(64 << 20);
        retire_at = baseline.saturating_add(settings.memory_limit / 2);
        hard_limit = baseline.saturating_add(settings.memory_limit.saturating_mul(2));
        let limit = baseline.saturating_add(settings.memory_limit);
        if let Err(e) = rlimit::setrlimit(rlimit::Resource::DATA, limit, hard_limit) {
            eprintln!("sandbox: cannot set the memory limit: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    let mut stdout = std::io::stdout();
    let spill = settings.log_dir.as_deref().and_then(super::LogSpill::create);
    // The realm for the next run is built while waiting for it, off the request path.
    let mut next: Option<Result<Context, String>> = None;
    let fresh = || new_context_within(settings.memory_limit);
    loop {
        if next.is_none() {
            next = Some(fresh());
        }
        let Some(line) = next_job(&mut jobs) else { return std::process::ExitCode::SUCCESS };
        let mut ctx = next.take().unwrap_or_else(fresh);
        let mut broken = false;
        let result = match serde_json::from_str::<Job>(&line) {
            Ok(job) => {
                if job.deadline_ms > 0 {
                    watch.arm_run(std::time::Duration::from_millis(job.deadline_ms) + DEADLINE_MARGIN);
                }
                if let (Some(spill), Ok(ctx)) = (&spill, ctx.as_mut()) {
                    ctx.insert_data(spill.clone());
                }
                // The engine can panic where it asserts something a script managed to break; the
                // run then fails with what is known of it, and this worker, whose engine state is
                // unknown now, answers and ends (the answer asks the server for a fresh one).
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_job_in(&job, &mut ctx, Some(&watch), Some(&net))
                }));
                watch.disarm_run();
                run.unwrap_or_else(|panic| {
                    // The run may have panicked inside its top level, whose bound is still armed.
                    watch.disarm();
                    broken = true;
                    panicked(panic.as_ref(), &ctx)
                })
            }
            Err(e) => JobResult { ok: false, error: Some(format!("sandbox: bad job: {e}")), ..Default::default() },
        };
        let mut result = result;
        let held = if settings.memory_limit > 0 { data_size() } else { None };
        result.retire = broken || held.is_some_and(|size| size > retire_at);
        let mut out = serde_json::to_string(&result).unwrap_or_else(|_| "{\"ok\":false}".into());
        out.push('\n');
        if stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush()).is_err() {
            return std::process::ExitCode::SUCCESS;
        }
        if broken {
            return std::process::ExitCode::SUCCESS;
        }
        if let Some(spill) = &spill {
            spill.end_run();
        }
        // After the answer is out: the used realm is garbage now, and nothing else of the engine is
        // alive, so one collection here frees it without tracing a live realm (the collector's
        // own schedule would also trace the pre-built next one, once or more per run).
        drop(ctx);
        boa_engine::gc::force_collect();
        // The next run gets its whole limit over what the worker holds now (the allocator keeps
        // some of what this run freed): one system call, after the answer.
        if let Some(held) = held {
            let limit = held.saturating_add(settings.memory_limit).min(hard_limit);
            let _ = rlimit::setrlimit(rlimit::Resource::DATA, limit, hard_limit);
        }
    }
}

/// Ends the process when the server's end of stdin closes, whatever the engine thread is running
/// then. The server holds the only write end of this pipe, so a hang-up means the server is gone
/// (exited, crashed or killed with SIGKILL), and no run outlives its server. The thread asks
/// `poll` for no event at all: hang-up and errors are reported anyway, and a job arriving on the
/// pipe does not wake it (the engine thread reads the jobs itself, one wake-up per job).
fn exit_on_hangup() {
    std::thread::Builder::new()
        .name("hangup".into())
        .stack_size(64 * 1024)
        .spawn(|| {
            let stdin = std::io::stdin();
            let mut fds = [rustix::event::PollFd::new(&stdin, rustix::event::PollFlags::empty())];
            loop {
                match rustix::event::poll(&mut fds, None) {
                    Err(rustix::io::Errno::INTR) => continue,
                    Ok(0) => continue,
                    // A hang-up, an error on the pipe, or poll itself failing: no job can come.
                    _ => std::process::exit(0),
                }
            }
        })
        .expect("spawn the hang-up watch");
}

/// The next job line from the server, or None when the server is gone.
fn next_job(jobs: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match jobs.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

/// The process's data segment size (what RLIMIT_DATA counts). `/proc/self/statm` gives it in
/// pages with the main thread's stack added (a fixed size: that thread only waits for the
/// engine thread), which is taken off as `/proc/self/status` reports it once; statm is read per
/// run and per buffer, status (dozens of fields formatted by the kernel) only that once.
fn data_size() -> Option<u64> {
    static STACK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let stack = *STACK.get_or_init(|| status_field("VmStk:").unwrap_or(0));
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(5)?.parse().ok()?;
    Some((pages * rustix::param::page_size() as u64).saturating_sub(stack))
}

/// A size field of `/proc/self/status` (in kB there), in bytes.
fn status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The most of a thrown value's text a run keeps (answers and run records): like a record's
/// logs, a script cannot make its records or the answers that carry them arbitrarily large.
pub const MAX_ERROR_BYTES: usize = 64 * 1024;

/// `text` cut to [`MAX_ERROR_BYTES`] (at a character boundary), saying so.
fn bounded_error(mut text: String) -> String {
    if text.len() <= MAX_ERROR_BYTES {
        return text;
    }
    let mut end = MAX_ERROR_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("… ({dropped} more bytes)"));
    text
}

/// `String(value)` of a thrown value, or the engine's own message for its limit errors.
fn error_text(err: JsError, ctx: &mut Context) -> String {
    let position = throw_position(&err.to_string());
    // A buffer the engine could not allocate, left uncaught, is a breach of the memory limit like
    // any other allocation that fails (the run's limit, or what is left of it).
    if err.as_native().is_some_and(|e| e.is_range() && is_allocation_refusal(e.message())) {
        return "memory limit exceeded".into();
    }
    match err.as_engine() {
        Some(EngineError::RuntimeLimit(limit)) => {
            return match limit {
                RuntimeLimitError::Recursion | RuntimeLimitError::StackSize => "recursion limit exceeded".into(),
                RuntimeLimitError::LoopIteration => "loop iteration limit exceeded".into(),
            };
        }
        // The engine's own invariant failing where the specification says nothing can fail: the
        // call-depth limit reached inside its promise machinery (`async function r() { await r() }`).
        Some(EngineError::Panic(panic)) if panic.to_string().contains("cannot fail per spec") => {
            return "recursion limit exceeded".into();
        }
        // Any other: its first line, not the engine's stack dump.
        Some(EngineError::Panic(panic)) => {
            let text = panic.to_string();
            return format!("sandbox: engine error: {}", text.lines().next().unwrap_or_default());
        }
        _ => {}
    }
    let mut text = match err.into_opaque(ctx) {
        // `String(symbol)` is its description; `symbol.toString()` semantics, not a TypeError.
        Ok(value) if value.is_symbol() => {
            value.as_symbol().map(|s| s.descriptive_string().to_std_string_lossy()).unwrap_or_default()
        }
        Ok(value) => match value.to_string(ctx) {
            Ok(s) => s.to_std_string_lossy(),
            Err(_) => "uncaught exception".into(),
        },
        Err(e) => e.to_string(),
    };
    api::redact_run_text(ctx, &mut text);
    let text = bounded_error(text);
    match position {
        Some(at) => format!("{text} {at}"),
        None => text,
    }
}

/// The engine's texts for a data block it would not or could not allocate.
fn is_allocation_refusal(message: &str) -> bool {
    message == "cannot allocate a buffer that exceeds the maximum buffer size"
        || message.ends_with("while allocating data block")
        || message.starts_with("couldn't allocate the data block")
}

/// ` at <function> (<line>:<column>)` of the innermost frame, from the engine's backtrace
/// (lines like `    at b (unknown at :2:21)`).
fn throw_position(display: &str) -> Option<String> {
    let frame = display.lines().skip(1).map(str::trim).find(|l| l.starts_with("at "))?;
    let rest = frame.strip_prefix("at ")?;
    let (function, location) = rest.split_once(" (")?;
    let location = location.trim_end_matches(')');
    let line_col = location.rsplit_once(" at :").map(|(_, lc)| lc).unwrap_or(location);
    let mut parts = line_col.split(':');
    let (line, col) = (parts.next()?, parts.next()?);
    if line.parse::<u32>().is_err() || col.parse::<u32>().is_err() {
        return None;
    }
    Some(format!("at {function} ({line}:{col})"))
}

/// A fresh realm with the sandbox's settings. No module loader: `import()` must not read files.
pub fn new_context() -> Result<Context, String> {
    new_context_within(0)
}

/// The engine's hooks, with one change: an `ArrayBuffer` (or a typed array's buffer) larger than
/// what the run's memory limit leaves is refused at once, with the engine's own catchable
/// `RangeError`, as any engine refuses a buffer it cannot have; without this, the allocator's
/// refusal surfaced as an error text that printed the allocation's layout (Rust internals that
/// a script could put into a token).
struct SandboxHooks {
    max_buffer: u64,
    /// In a worker under a memory limit: also no more than the limit leaves now.
    limited: bool,
}

impl boa_engine::context::HostHooks for SandboxHooks {
    fn max_buffer_size(&self, _context: &mut Context) -> u64 {
        if !self.limited {
            return self.max_buffer;
        }
        // One read of /proc per buffer: what RLIMIT_DATA counts, against its current limit, less
        // the allocator's own need beyond the block (a large block is mapped with alignment room:
        // without it a block up to 4 MiB under what is left failed in the allocator, and the
        // script read the allocation's layout instead of the engine's text).
        let left = match (rlimit::getrlimit(rlimit::Resource::DATA), data_size()) {
            (Ok((soft, _)), Some(used)) => soft.saturating_sub(used).saturating_sub(ALLOCATOR_ROOM),
            _ => self.max_buffer,
        };
        left.min(self.max_buffer)
    }
}

/// What the allocator maps beyond a large block (measured: blocks up to 4 MiB under what
/// RLIMIT_DATA left failed, with 64 MiB, 128 MiB and 512 MiB limits), with a margin.
const ALLOCATOR_ROOM: u64 = 5 << 20;

/// The engine's own limit on one buffer (1.5 GiB), where no memory limit is set.
const ENGINE_MAX_BUFFER: u64 = 1_610_612_736;

/// A fresh realm whose buffers may not exceed `memory_limit` bytes (0: no memory limit).
fn new_context_within(memory_limit: u64) -> Result<Context, String> {
    let max_buffer = if memory_limit == 0 { ENGINE_MAX_BUFFER } else { memory_limit.min(ENGINE_MAX_BUFFER) };
    let mut ctx = Context::builder()
        .module_loader(std::rc::Rc::new(IdleModuleLoader))
        .host_hooks(std::rc::Rc::new(SandboxHooks { max_buffer, limited: memory_limit > 0 }))
        .build()
        .map_err(|e| format!("sandbox: {e}"))?;
    ctx.runtime_limits_mut().set_recursion_limit(512);
    guard_at(&mut ctx).map_err(|e| format!("sandbox: {e}"))?;
    lean_repeat(&mut ctx).map_err(|e| format!("sandbox: {e}"))?;
    lean_json_parse(&mut ctx).map_err(|e| format!("sandbox: {e}"))?;
    super::sort::install(&mut ctx).map_err(|e| format!("sandbox: {e}"))?;
    Ok(ctx)
}

/// Puts `function` on `object` as a built-in method: named `name`, `length` arguments, not a
/// constructor, writable and configurable but not enumerable (as the specification's own).
pub(super) fn define_builtin(
    ctx: &mut Context,
    object: &boa_engine::JsObject,
    name: &'static str,
    length: usize,
    function: boa_engine::NativeFunction,
) -> boa_engine::JsResult<()> {
    use boa_engine::object::FunctionObjectBuilder;
    use boa_engine::property::PropertyDescriptor;
    let function = FunctionObjectBuilder::new(ctx.realm(), function)
        .name(JsString::from(name))
        .length(length)
        .constructor(false)
        .build();
    object.define_property_or_throw(
        JsString::from(name),
        PropertyDescriptor::builder().value(function).writable(true).enumerable(false).configurable(true),
        ctx,
    )?;
    Ok(())
}

/// `JSON.parse` of the engine parses the text as script source, about 8 KB of memory per small
/// object: a 265 KB answer of 7,800 objects ran into the 64 MiB memory limit. Text without a
/// reviver is read by the reader of `fetch`'s `json()` (members in order, a later duplicate
/// winning, `__proto__` an ordinary member, `-0` kept); with a reviver, or text that reader
/// refuses, the engine's own parse decides, so its errors and its reviver walk stay as they are.
fn lean_json_parse(ctx: &mut Context) -> boa_engine::JsResult<()> {
    use boa_engine::{js_string, JsObject, NativeFunction};
    let json = ctx.intrinsics().objects().json();
    let Some(original) = json.get(js_string!("parse"), ctx)?.as_object() else { return Ok(()) };
    let parse = NativeFunction::from_copy_closure_with_captures(
        |this, args, original: &JsObject, ctx| {
            let text = args.first().cloned().unwrap_or_default().to_string(ctx)?;
            let reviver = args.get(1).cloned().unwrap_or_default();
            if !reviver.is_callable() {
                // A lone surrogate in the text itself (a cut string concatenated into JSON) is
                // read as its escape: inside a JSON string that is the same code unit.
                let source = text.to_std_string().unwrap_or_else(|_| {
                    let mut source = String::with_capacity(text.len() + 16);
                    for unit in char::decode_utf16(text.iter()) {
                        match unit {
                            Ok(c) => source.push(c),
                            Err(e) => source.push_str(&format!("\\u{:04x}", e.unpaired_surrogate())),
                        }
                    }
                    source
                });
                if let Some(value) = super::api::parse_json(&source, ctx) {
                    return Ok(value);
                }
            }
            original.call(this, &[JsValue::from(text), reviver], ctx)
        },
        original,
    );
    define_builtin(ctx, &json, "parse", 2, parse)
}

/// `String.prototype.repeat` of the engine holds a 16-byte slice per repetition while it builds
/// its result, so `"x".repeat(2621440)` (a 2.5 MB string) ran into the 64 MiB memory limit. The
/// replacement builds n copies by doubling: about log2(n) concatenations of two strings, at most
/// about three times the result's size at once. The steps and errors are the specification's.
fn lean_repeat(ctx: &mut Context) -> boa_engine::JsResult<()> {
    use boa_engine::value::IntegerOrInfinity;
    use boa_engine::{js_string, JsNativeError, NativeFunction};
    let repeat = NativeFunction::from_fn_ptr(|this, args, ctx| {
        let this = this.require_object_coercible()?;
        let string = this.to_string(ctx)?;
        let count = args.first().cloned().unwrap_or_default().to_integer_or_infinity(ctx)?;
        let n = match count {
            IntegerOrInfinity::Integer(i) if i >= 0 => i as u64,
            IntegerOrInfinity::PositiveInfinity => {
                return Err(JsNativeError::range()
                    .with_message("String.prototype.repeat: count must be less than infinity")
                    .into())
            }
            _ => {
                return Err(JsNativeError::range()
                    .with_message("String.prototype.repeat: count must be non-negative")
                    .into())
            }
        };
        if n == 0 || string.is_empty() {
            return Ok(js_string!().into());
        }
        if n.checked_mul(string.len() as u64).is_none_or(|total| total > u64::from(u32::MAX)) {
            return Err(JsNativeError::range()
                .with_message(
                    "repeat count must be a positive finite number that doesn't overflow the maximum string length (2^32 - 1)",
                )
                .into());
        }
        let (mut result, mut power, mut left) = (js_string!(), string, n);
        while left > 0 {
            if left & 1 == 1 {
                result = JsString::concat_array(&[result.as_str(), power.as_str()]);
            }
            left >>= 1;
            if left > 0 {
                power = JsString::concat_array(&[power.as_str(), power.as_str()]);
            }
        }
        Ok(result.into())
    });
    let string_prototype = ctx.intrinsics().constructors().string().prototype();
    define_builtin(ctx, &string_prototype, "repeat", 1, repeat)
}

/// `Array.prototype.at` and `String.prototype.at` of the engine negate the index, which panics
/// (the worker crashes) for an index of -2^63 or below, e.g. `"abc".at(-1e20)`. Each is wrapped
/// so that such an index reaches it as -2^53, where the result is the same (`undefined`).
fn guard_at(ctx: &mut Context) -> boa_engine::JsResult<()> {
    use boa_engine::value::IntegerOrInfinity;
    use boa_engine::{js_string, JsObject, JsValue, NativeFunction};
    const FLOOR: i64 = -(1 << 53);
    let prototypes =
        [ctx.intrinsics().constructors().array().prototype(), ctx.intrinsics().constructors().string().prototype()];
    for prototype in prototypes {
        let Some(original) = prototype.get(js_string!("at"), ctx)?.as_object() else { continue };
        let guarded = NativeFunction::from_copy_closure_with_captures(
            |this, args, original: &JsObject, ctx| {
                let index = match args.first().map(|v| v.to_integer_or_infinity(ctx)).transpose()? {
                    Some(IntegerOrInfinity::Integer(i)) => JsValue::new(i.max(FLOOR) as f64),
                    Some(IntegerOrInfinity::PositiveInfinity) => JsValue::new(f64::INFINITY),
                    Some(IntegerOrInfinity::NegativeInfinity) => JsValue::new(f64::NEG_INFINITY),
                    None => JsValue::undefined(),
                };
                original.call(this, &[index], ctx)
            },
            original,
        );
        define_builtin(ctx, &prototype, "at", 1, guarded)?;
    }
    Ok(())
}

/// A fresh realm with the job's `ctx`/`api` built, nothing run (for the benchmark's breakdown).
pub fn build_only(job: &Job) {
    if let (Ok(mut ctx), Some(trigger)) = (new_context(), Trigger::new(FlowType(job.flow), TriggerType(job.trigger))) {
        let _ = api::begin(&mut ctx, trigger, job);
    }
}

/// Runs one job in a fresh realm.
pub fn run_job(job: &Job) -> JobResult {
    run_job_in(job, &mut new_context(), None, None)
}

/// Ends the worker process when a bound passes while the engine still runs: a script's top level
/// (`min(5s, timeout)`; the server then reports the top-level timeout) and, as a second line
/// behind the server's kill, the whole run's deadline.
///
/// Arming and disarming only write the bounds; the watchdog thread is woken only when a bound
/// comes before the one it sleeps until (a run's bounds are usually later than the previous
/// run's, so most runs wake it not at all). When it wakes at a bound that was cleared or moved,
/// it goes back to sleep until the next one.
struct Watchdog {
    shared: Arc<(std::sync::Mutex<Bounds>, std::sync::Condvar)>,
}

#[derive(Default)]
struct Bounds {
    top: Option<std::time::Instant>,
    run: Option<std::time::Instant>,
    /// What the watchdog thread sleeps until (None: until it is woken).
    sleeping_until: Option<std::time::Instant>,
}

impl Bounds {
    fn next(&self) -> Option<std::time::Instant> {
        self.top.into_iter().chain(self.run).min()
    }
}

#[derive(Clone, Copy)]
enum Bound {
    TopLevel,
    Run,
}

impl Watchdog {
    fn start() -> Self {
        use std::time::Instant;
        let shared = Arc::new((std::sync::Mutex::new(Bounds::default()), std::sync::Condvar::new()));
        let watched = shared.clone();
        std::thread::Builder::new()
            .name("watchdog".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let (lock, wake) = &*watched;
                let mut bounds = lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    let now = Instant::now();
                    if bounds.top.is_some_and(|d| d <= now) {
                        eprintln!("{TOP_LEVEL_EXIT}");
                        std::process::exit(75);
                    }
                    if bounds.run.is_some_and(|d| d <= now) {
                        eprintln!("{DEADLINE_EXIT}");
                        std::process::exit(76);
                    }
                    let next = bounds.next();
                    bounds.sleeping_until = next;
                    bounds = match next {
                        Some(d) => match wake.wait_timeout(bounds, d - now) {
                            Ok((b, _)) => b,
                            Err(e) => e.into_inner().0,
                        },
                        None => wake.wait(bounds).unwrap_or_else(|e| e.into_inner()),
                    };
                }
            })
            .expect("spawn the watchdog");
        Watchdog { shared }
    }

    fn set(&self, bound: Bound, after: Option<std::time::Duration>) {
        let at = after.map(|a| std::time::Instant::now() + a);
        let (lock, wake) = &*self.shared;
        let mut bounds = lock.lock().unwrap_or_else(|e| e.into_inner());
        match bound {
            Bound::TopLevel => bounds.top = at,
            Bound::Run => bounds.run = at,
        }
        if let Some(at) = at {
            if bounds.sleeping_until.is_none_or(|s| at < s) {
                bounds.sleeping_until = Some(at);
                wake.notify_one();
            }
        }
    }

    fn arm(&self, bound: std::time::Duration) {
        self.set(Bound::TopLevel, Some(bound));
    }

    fn disarm(&self) {
        self.set(Bound::TopLevel, None);
    }

    fn arm_run(&self, bound: std::time::Duration) {
        self.set(Bound::Run, Some(bound));
    }

    fn disarm_run(&self) {
        self.set(Bound::Run, None);
    }
}

/// The answer of a run the engine panicked in: the call-depth limit where the engine asserts that
/// nothing can fail (an async generator's body), or else the panic's first line; with what the
/// run had logged, if its state can still be read.
fn panicked(panic: &(dyn std::any::Any + Send), ctx: &Result<Context, String>) -> JobResult {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("engine panic");
    let error = if text.contains("is_throw_completion") {
        "recursion limit exceeded".to_string()
    } else {
        format!("sandbox crashed: {}", text.lines().next().unwrap_or_default())
    };
    let usage = ctx
        .as_ref()
        .ok()
        .and_then(|ctx| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| api::usage(ctx))).ok());
    let mut result = JobResult { ok: false, error: Some(error), ..Default::default() };
    if let Some(usage) = usage {
        result.logs = usage.logs;
        result.http_calls = usage.http_calls;
        result.log_bytes = usage.log_bytes;
    }
    result
}

fn run_job_in(
    job: &Job,
    ctx: &mut Result<Context, String>,
    watch: Option<&Watchdog>,
    net: Option<&api::Net>,
) -> JobResult {
    let ctx = match ctx {
        Ok(ctx) => ctx,
        Err(e) => return JobResult { ok: false, error: Some(e.clone()), ..Default::default() },
    };
    if job.deny_fetch {
        ctx.insert_data(super::FetchDenied);
    } else if let Some(net) = net {
        ctx.insert_data(net.clone());
    }
    let mut result = match execute(job, ctx, watch) {
        Ok(result) => result,
        Err(e) => JobResult { ok: false, error: Some(e), ..Default::default() },
    };
    let usage = api::usage(ctx);
    result.logs = usage.logs;
    result.http_calls = usage.http_calls;
    result.log_bytes = usage.log_bytes;
    result
}

/// The global binding named like the action: a property of the global object (`function`,
/// `var`) or a lexical binding (`let`, `const`).
fn entry_function(job: &Job, global: &boa_engine::JsObject, ctx: &mut Context) -> Option<JsValue> {
    if let Ok(v) = global.get(JsString::from(job.name.as_str()), ctx) {
        if v.is_callable() {
            return Some(v);
        }
    }
    if !is_identifier(&job.name) {
        return None;
    }
    let probe = format!("typeof {0} === 'function' ? {0} : undefined", job.name);
    ctx.eval(Source::from_bytes(probe.as_bytes())).ok().filter(JsValue::is_callable)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

fn failed(error: String) -> Result<JobResult, String> {
    Ok(JobResult { ok: false, error: Some(error), ..Default::default() })
}

fn execute(job: &Job, ctx: &mut Context, watch: Option<&Watchdog>) -> Result<JobResult, String> {
    let trigger = Trigger::new(FlowType(job.flow), TriggerType(job.trigger))
        .ok_or_else(|| format!("sandbox: unsupported flow/trigger {}/{}", job.flow, job.trigger))?;
    let bindings = api::begin(ctx, trigger, job).map_err(|e| format!("sandbox: {e}"))?;
    let global = ctx.global_object();
    for (name, value) in [("require", bindings.require.clone()), ("console", bindings.console.clone())] {
        global.set(JsString::from(name), value, false, ctx).map_err(|e| format!("sandbox: {e}"))?;
    }
    if let Some(w) = watch {
        w.arm(std::time::Duration::from_millis(job.top_level_ms));
    }
    let evaluated = ctx.eval(Source::from_bytes(job.script.as_bytes()));
    if let Some(w) = watch {
        w.disarm();
    }
    if let Err(e) = evaluated {
        return failed(error_text(e, ctx));
    }
    let entry = match entry_function(job, &global, ctx) {
        Some(f) => f,
        None => return failed(format!("function \"{}\" not found", job.name)),
    };
    let args = [bindings.ctx.clone(), bindings.api.clone()];
    let returned = match entry.as_callable().expect("checked callable").call(&JsValue::undefined(), &args, ctx) {
        Ok(v) => v,
        Err(e) => return failed(error_text(e, ctx)),
    };
    // Drain the job queue; a returned promise must have settled by then.
    if let Err(e) = ctx.run_jobs() {
        return failed(error_text(e, ctx));
    }
    if let Some(obj) = returned.as_object() {
        if let Ok(promise) = JsPromise::from_object(obj.clone()) {
            match promise.state() {
                PromiseState::Pending => return failed("promise never settled".into()),
                PromiseState::Rejected(reason) => return failed(error_text(JsError::from_opaque(reason), ctx)),
                PromiseState::Fulfilled(_) => {}
            }
        }
    }
    match api::finish(&bindings, ctx) {
        Ok(state) => Ok(JobResult { ok: true, state: Some(state), ..Default::default() }),
        Err(e) => failed(error_text(e, ctx)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(script: &str) -> Job {
        Job {
            script: script.into(),
            name: "a".into(),
            flow: 2,
            trigger: 4,
            context: serde_json::json!({}),
            state: serde_json::json!({}),
            top_level_ms: 1000,
            deadline_ms: 0,
            secrets: Default::default(),
            deny_fetch: false,
        }
    }

    #[test]
    fn thrown_errors_name_their_position() {
        let cases = [
            ("function a(){ throw new Error('boom') }", "Error: boom at a (1:21)"),
            ("function a(){ b() }\nfunction b(){ throw new TypeError('t') }", "TypeError: t at b (2:21)"),
            ("function a(){ throw 'plain' }", "plain at a (1:21)"),
        ];
        for (script, expected) in cases {
            assert_eq!(run_job(&job(script)).error.as_deref(), Some(expected), "{script}");
        }
    }

    /// Each expression evaluates to its text: a script throws `String(result)`, and the run's
    /// error text is the result.
    #[track_caller]
    fn each_evaluates_to(cases: &[(&str, &str)]) {
        for (expression, expected) in cases {
            let script = format!("function a(){{ throw String({expression}) }}");
            let error = run_job(&job(&script)).error.unwrap_or_default();
            assert_eq!(error.split(" at a (").next(), Some(*expected), "{expression}: {error}");
        }
    }

    #[test]
    fn repeat_as_the_specification_says() {
        let cases = [
            ("'ab'.repeat(3)", "ababab"),
            ("'ab'.repeat(0)", ""),
            ("''.repeat(1e9)", ""),
            ("'x'.repeat(2.9)", "xx"),
            ("'é\\ud800'.repeat(2) === 'é\\ud800é\\ud800'", "true"),
            ("'xy'.repeat(1000001).length", "2000002"),
            ("'ab'.repeat(7) === 'ab'.concat('ab','ab','ab','ab','ab','ab')", "true"),
            ("String.prototype.repeat.call(12, '2')", "1212"),
            ("(function(){ try { 'a'.repeat(-1) } catch (e) { return e.name } })()", "RangeError"),
            ("(function(){ try { 'a'.repeat(Infinity) } catch (e) { return e.name } })()", "RangeError"),
            ("(function(){ try { 'ab'.repeat(2 ** 31) } catch (e) { return e.name } })()", "RangeError"),
            ("(function(){ try { String.prototype.repeat.call(null, 1) } catch (e) { return e.name } })()", "TypeError"),
            ("[String.prototype.repeat.name, String.prototype.repeat.length].join()", "repeat,1"),
            ("(function(){ var log = []; String.prototype.repeat.call({toString(){ log.push('s'); return 'q' }}, {valueOf(){ log.push('n'); return 2 }}); return log.join() })()", "s,n"),
        ];
        each_evaluates_to(&cases);
    }

    #[test]
    fn json_parse_as_the_specification_says() {
        let cases = [
            ("JSON.stringify(JSON.parse('{\"b\":1,\"a\":[true,null,\"x\"],\"b\":2}'))", "{\"b\":2,\"a\":[true,null,\"x\"]}"),
            ("Object.keys(JSON.parse('{\"z\":1,\"2\":1,\"a\":1,\"1\":1}')).join()", "1,2,z,a"),
            ("Object.is(JSON.parse('-0'), -0)", "true"),
            ("JSON.parse(' 12345678901234567890 ')", "12345678901234567000"),
            ("(function(){ try { JSON.parse('1e400') } catch (e) { return e.name } })()", "SyntaxError"),
            // An escape of a lone surrogate is that code unit (the reader refuses it; read marked).
            ("JSON.parse('\"a\\\\ud800\"').charCodeAt(1).toString(16)", "d800"),
            ("JSON.parse(JSON.stringify('\u{1F600}'.substring(0, 1))).charCodeAt(0).toString(16)", "d83d"),
            ("JSON.parse('\"' + '\u{1F600}'.substring(0, 1) + 'x\"').charCodeAt(0).toString(16)", "d83d"),
            ("JSON.parse('{\"k\\\\udc00\":[\"\\\\ud83d\\\\ude00\",\"\\\\ufdd0\\\\udbff\"]}')['k\\udc00'][1].length", "2"),
            ("JSON.parse('{\"k\\\\udc00\":[\"\\\\ud83d\\\\ude00\",\"\\\\ufdd0\\\\udbff\"]}')['k\\udc00'][0]", "\u{1F600}"),
            ("Object.getPrototypeOf(JSON.parse('{\"__proto__\": {\"x\": 1}}')) === Object.prototype", "true"),
            ("JSON.parse('{\"__proto__\": 5}').__proto__", "5"),
            ("JSON.parse('[1,[2,[3]]]', function (k, v) { return typeof v === 'number' ? v * 10 : v }).join()", "10,20,30"),
            ("JSON.parse({toString() { return '[7]' }})[0]", "7"),
            ("(function(){ try { JSON.parse('{\"a\":}') } catch (e) { return e.name } })()", "SyntaxError"),
            ("(function(){ try { JSON.parse('') } catch (e) { return e.name } })()", "SyntaxError"),
            ("(function(){ try { JSON.parse('[1,]') } catch (e) { return e.name } })()", "SyntaxError"),
            ("JSON.parse('['.repeat(100) + ']'.repeat(100)).length", "1"),
            ("(function(){ try { JSON.parse('['.repeat(300) + ']'.repeat(300)) } catch (e) { return e.name } })()", "SyntaxError"),
            ("[JSON.parse.name, JSON.parse.length].join()", "parse,2"),
            ("JSON.parse('{\"items\":' + JSON.stringify(Array.from({length: 20000}, function (_, i) { return {id: i, name: 'n' + i} })) + '}').items[19999].name", "n19999"),
        ];
        each_evaluates_to(&cases);
    }

    #[test]
    fn at_with_any_index() {
        let cases = [
            ("'abc'.at(-1e20)", "undefined"),
            ("[1, 2, 3].at(-1e20)", "undefined"),
            ("[1, 2, 3].at(-Infinity)", "undefined"),
            ("'abc'.at(1e20)", "undefined"),
            ("'abc'.at(-1)", "c"),
            ("[1, 2, 3].at(-3)", "1"),
            ("[1, 2, 3].at()", "1"),
            ("'abc'.at('1')", "b"),
            ("[Array.prototype.at.name, Array.prototype.at.length, String.prototype.at.length].join()", "at,1,1"),
            ("Array.prototype.at.call({length: 2, 1: 'x'}, -1)", "x"),
        ];
        each_evaluates_to(&cases);
    }
}
