//! `console.log`/`info`/`warn`/`error`/`debug` and the `zitadel/log` module: formatted records
//! with the per-run count and size limits.

use super::*;

/// A number as Node's `util.format` prints it: JavaScript's `String(n)`, except `-0` for negative zero.
fn format_number(n: f64, ctx: &mut Context) -> String {
    if n == 0.0 && n.is_sign_negative() {
        return "-0".into();
    }
    JsValue::from(n).to_string(ctx).map(|s| s.to_std_string_lossy()).unwrap_or_else(|_| n.to_string())
}

/// A value as a log shows it: strings as they are, numbers as `String(n)` (`-0` kept), BigInts with
/// their `n`, symbols as `Symbol(description)`, errors as `String(err)`, other values as JSON.
/// Never throws for a primitive.
pub(super) fn inspect(v: &JsValue, ctx: &mut Context) -> String {
    if let Some(s) = v.as_string() {
        return s.to_std_string_lossy();
    }
    if v.is_undefined() {
        return "undefined".into();
    }
    if let Some(n) = v.as_number() {
        return format_number(n, ctx);
    }
    if let Some(b) = v.as_bigint() {
        return format!("{b}n");
    }
    if let Some(sym) = v.as_symbol() {
        return sym.descriptive_string().to_std_string_lossy();
    }
    // An error reads as `String(err)` ("TypeError: boom"), as in upstream's log formatting (its
    // own members are not enumerable, so as JSON it would be `{}`).
    let is_error = v.as_object().is_some_and(|o| o.is::<boa_engine::builtins::error::Error>());
    if !v.is_callable() && !is_error {
        if let Ok(Some(json)) = v.to_json(ctx) {
            return json.to_string();
        }
    }
    v.to_string(ctx).map(|s| s.to_std_string_lossy()).unwrap_or_else(|_| "[object]".into())
}

/// Calls one of the realm's own global functions (`parseInt`, `parseFloat`: the intrinsics, not
/// what a script may have put in their place) on `v`, as a number.
fn parse_with(f: boa_engine::object::builtins::JsFunction, v: &JsValue, ctx: &mut Context) -> JsResult<f64> {
    let n = f.call(&JsValue::undefined(), std::slice::from_ref(v), ctx)?;
    Ok(n.as_number().unwrap_or(f64::NAN))
}

/// One `%` directive applied to its argument, as Node's `util.format` does: `%d` is `Number(v)`,
/// `%i` `parseInt(v)`, `%f` `parseFloat(v)` (a BigInt keeps its `n` for `%d`/`%i`, a symbol is
/// `NaN`), `%j` `JSON.stringify(v)` (`[Circular]` for a cycle), `%s %o %O` as [`inspect`].
fn directive(f: char, a: &JsValue, ctx: &mut Context) -> JsResult<String> {
    let is_symbol = a.as_symbol().is_some();
    Ok(match f {
        'd' | 'i' if a.is_bigint() => format!("{}n", a.as_bigint().expect("a bigint")),
        'd' | 'i' | 'f' if is_symbol => "NaN".into(),
        'd' => {
            let n = a.to_numeric_number(ctx)?;
            format_number(n, ctx)
        }
        'i' => {
            let n = parse_with(ctx.intrinsics().objects().parse_int(), a, ctx)?;
            format_number(n, ctx)
        }
        'f' => {
            let n = parse_with(ctx.intrinsics().objects().parse_float(), a, ctx)?;
            format_number(n, ctx)
        }
        'j' => match stringify(a, ctx) {
            Ok(Some(text)) => text,
            Ok(None) => "undefined".into(),
            Err(e) if e.to_string().contains("cyclic") => "[Circular]".into(),
            // JSON.stringify refuses a BigInt (also inside an object) or a throwing toJSON: the
            // log shows the value as other directives do rather than failing the run.
            Err(_) => inspect(a, ctx),
        },
        _ => inspect(a, ctx),
    })
}

/// `util.format`: `%s %d %i %f %j %o %O %%`, extra arguments space-joined.
pub(super) fn format(args: &[JsValue], ctx: &mut Context) -> JsResult<String> {
    let Some(first) = args.first() else { return Ok(String::new()) };
    let mut rest = 1;
    let mut out = String::new();
    if let Some(fmt) = first.as_string() {
        let fmt = fmt.to_std_string_lossy();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.peek().copied() {
                Some('%') => {
                    chars.next();
                    out.push('%');
                }
                Some(f @ ('s' | 'd' | 'i' | 'f' | 'j' | 'o' | 'O')) if rest < args.len() => {
                    chars.next();
                    let a = &args[rest];
                    rest += 1;
                    out.push_str(&directive(f, a, ctx)?);
                }
                _ => out.push('%'),
            }
        }
    } else {
        out = inspect(first, ctx);
    }
    for a in &args[rest..] {
        out.push(' ');
        out.push_str(&inspect(a, ctx));
    }
    Ok(out)
}

pub(super) fn record(level: &str, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let mut message = format(args, ctx)?;
    // Also out of the worker's memory at once: kept should the run end without an answer.
    let spill = ctx.get_data::<std::rc::Rc<crate::runtime::LogSpill>>().cloned();
    with_run(ctx, |r| {
        let mut r = r.borrow_mut();
        if r.truncated {
            return;
        }
        // Redacted first: the bounds below count what is kept.
        r.redact(&mut message);
        let bytes = message.len() as u64;
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let record = if r.logs.len() >= MAX_LOG_RECORDS || r.log_bytes + bytes > MAX_LOG_BYTES {
            r.truncated = true;
            LogRecord {
                level: "warn".into(),
                message: "log truncated: a run keeps at most 1000 records and 64 KiB".into(),
                time,
            }
        } else {
            r.log_bytes += bytes;
            LogRecord { level: level.into(), message, time }
        };
        if let Some(spill) = &spill {
            spill.append(&record);
        }
        r.logs.push(record);
    });
    Ok(JsValue::undefined())
}

pub(super) fn log_info(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    record("info", args, ctx)
}
pub(super) fn log_debug(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    record("debug", args, ctx)
}
pub(super) fn log_warn(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    record("warn", args, ctx)
}
pub(super) fn log_error(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    record("error", args, ctx)
}

pub(super) fn logger(ctx: &mut Context) -> JsObject {
    let mut init = ObjectInitializer::new(ctx);
    for (name, f) in [
        ("log", log_info as NativeFn),
        ("info", log_info),
        ("debug", log_debug),
        ("warn", log_warn),
        ("error", log_error),
    ] {
        init.function(NativeFunction::from_fn_ptr(f), JsString::from(name), 0);
    }
    init.build()
}
