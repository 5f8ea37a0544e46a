//! `console.log`/`info`/`warn`/`error`/`debug` and the `zitadel/log` module: formatted records
//! with the per-run count and size limits.

use super::*;

pub(super) fn inspect(v: &JsValue, ctx: &mut Context) -> String {
    if let Some(s) = v.as_string() {
        return s.to_std_string_escaped();
    }
    if v.is_undefined() {
        return "undefined".into();
    }
    // An error reads as `String(err)` ("TypeError: boom"), as in upstream's log formatting (its
    // own members are not enumerable, so as JSON it would be `{}`).
    let is_error = v.as_object().is_some_and(|o| o.is::<boa_engine::builtins::error::Error>());
    if !v.is_callable() && !is_error {
        if let Ok(Some(json)) = v.to_json(ctx) {
            return json.to_string();
        }
    }
    v.to_string(ctx).map(|s| s.to_std_string_escaped()).unwrap_or_else(|_| "[object]".into())
}

/// `util.format`: `%s %d %i %f %j %o %O %%`, extra arguments space-joined.
pub(super) fn format(args: &[JsValue], ctx: &mut Context) -> JsResult<String> {
    let Some(first) = args.first() else { return Ok(String::new()) };
    let mut rest = 1;
    let mut out = String::new();
    if let Some(fmt) = first.as_string() {
        let fmt = fmt.to_std_string_escaped();
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
                    match f {
                        's' => out.push_str(&inspect(a, ctx)),
                        'd' | 'i' => {
                            let n = a.to_number(ctx)?;
                            let n = if f == 'i' { n.trunc() } else { n };
                            out.push_str(&JsValue::from(n).to_string(ctx)?.to_std_string_escaped());
                        }
                        'f' => {
                            let n = a.to_number(ctx)?;
                            out.push_str(&JsValue::from(n).to_string(ctx)?.to_std_string_escaped());
                        }
                        _ => out.push_str(&inspect(a, ctx)),
                    }
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
    let message = format(args, ctx)?;
    with_run(ctx, |r| {
        let mut r = r.borrow_mut();
        if r.truncated {
            return;
        }
        let bytes = message.len() as u64;
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        if r.logs.len() >= MAX_LOG_RECORDS || r.log_bytes + bytes > MAX_LOG_BYTES {
            r.truncated = true;
            r.logs.push(LogRecord {
                level: "warn".into(),
                message: "log truncated: a run keeps at most 1000 records and 64 KiB".into(),
                time,
            });
            return;
        }
        r.log_bytes += bytes;
        r.logs.push(LogRecord { level: level.into(), message, time });
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
