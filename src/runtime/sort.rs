//! Sorting with a script's comparison function. The engine sorts with the standard library's
//! sort, which panics when the comparisons are not a total order: `xs.sort(() => Math.random() -
//! 0.5)` or `(a, b) => a.v - b.v` over items some of which lack `v` (NaN counts as "equal")
//! crashed the worker. The specification only leaves the order implementation-defined then.
//!
//! `Array.prototype.sort` / `toSorted`, and the typed arrays' `sort` / `toSorted` when given a
//! comparison function, are replaced by the specification's steps around a merge sort, which ends
//! in some order whatever the comparisons answer. A typed array's default (numeric) order is a
//! total order: the engine's own sort keeps it.

use boa_engine::object::builtins::{JsArray, JsTypedArray};
use boa_engine::{js_string, Context, JsNativeError, JsObject, JsResult, JsString, JsValue, NativeFunction};
use std::cmp::Ordering;

/// Installs the replacements in a fresh realm.
pub fn install(ctx: &mut Context) -> JsResult<()> {
    let array = ctx.intrinsics().constructors().array().prototype();
    super::worker::define_builtin(ctx, &array, "sort", 1, NativeFunction::from_fn_ptr(array_sort))?;
    super::worker::define_builtin(ctx, &array, "toSorted", 1, NativeFunction::from_fn_ptr(array_to_sorted))?;
    let typed = ctx.intrinsics().constructors().typed_array().prototype();
    let mut original =
        |name: &'static str| -> JsResult<Option<JsObject>> { Ok(typed.get(JsString::from(name), ctx)?.as_object()) };
    let (Some(sort), Some(to_sorted), Some(entries)) = (original("sort")?, original("toSorted")?, original("entries")?)
    else {
        return Ok(());
    };
    let typed_sort = NativeFunction::from_copy_closure_with_captures(
        |this, args, (original, entries): &(JsObject, JsObject), ctx| {
            let Some(compare) = comparator(args)? else { return original.call(this, args, ctx) };
            // ValidateTypedArray: what the engine's `entries` checks before it makes its iterator.
            entries.call(this, &[], ctx)?;
            let target = typed_array(this)?;
            let sorted = typed_sorted(&target, &compare, ctx)?;
            write_back(&target, sorted, ctx)?;
            Ok(target.into())
        },
        (sort, entries),
    );
    super::worker::define_builtin(ctx, &typed, "sort", 1, typed_sort)?;
    let typed_to_sorted = NativeFunction::from_copy_closure_with_captures(
        |this, args, original: &JsObject, ctx| {
            let Some(compare) = comparator(args)? else { return original.call(this, args, ctx) };
            // ValidateTypedArray and TypedArrayCreateSameType(O, len), before any comparison: the
            // engine's own toSorted in the default order (which cannot fail), overwritten below.
            let copy = original.call(this, &[], ctx)?;
            let target = typed_array(&copy)?;
            let sorted = typed_sorted(&typed_array(this)?, &compare, ctx)?;
            write_back(&target, sorted, ctx)?;
            Ok(copy)
        },
        to_sorted,
    );
    super::worker::define_builtin(ctx, &typed, "toSorted", 1, typed_to_sorted)
}

fn typed_array(value: &JsValue) -> JsResult<JsObject> {
    value.as_object().ok_or_else(|| JsNativeError::typ().with_message("not a typed array").into())
}

/// SortIndexedProperties of a (validated) typed array with read-through-holes, every element read
/// before the first comparison, sorted by CompareTypedArrayElements with a comparison function:
/// its number, NaN as +0.
fn typed_sorted(source: &JsObject, compare: &JsObject, ctx: &mut Context) -> JsResult<Vec<JsValue>> {
    let len = JsTypedArray::from_object(source.clone())?.length(ctx)?;
    let items = (0..len).map(|k| source.get(k, ctx)).collect::<JsResult<Vec<_>>>()?;
    merge_sort(items, &mut |x, y| {
        Ok(compare.call(&JsValue::undefined(), &[x.clone(), y.clone()], ctx)?.to_number(ctx)? > 0.0)
    })
}

/// `Array.prototype.sort ( comparefn )`.
fn array_sort(this: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let compare = comparator(args)?;
    let obj = this.to_object(ctx)?;
    let len = length_of_array_like(&obj, ctx)?;
    // SortIndexedProperties with skip-holes.
    let mut items = Vec::new();
    for k in 0..len {
        if obj.has_property(k, ctx)? {
            items.push(obj.get(k, ctx)?);
        }
    }
    let sorted = merge_sort(items, &mut |x, y| Ok(compare_array_elements(x, y, compare.as_ref(), ctx)?.is_gt()))?;
    let count = sorted.len() as u64;
    write_back(&obj, sorted, ctx)?;
    // The holes that were left out of the sort stay holes, at the end.
    for j in count..len {
        obj.delete_property_or_throw(j, ctx)?;
    }
    Ok(obj.into())
}

/// `Array.prototype.toSorted ( comparefn )`.
fn array_to_sorted(this: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let compare = comparator(args)?;
    let obj = this.to_object(ctx)?;
    let len = length_of_array_like(&obj, ctx)?;
    // ArrayCreate(len), before any element is read.
    if len > u64::from(u32::MAX) {
        return Err(JsNativeError::range().with_message("array exceeded max size").into());
    }
    // SortIndexedProperties with read-through-holes.
    let items = (0..len).map(|k| obj.get(k, ctx)).collect::<JsResult<Vec<_>>>()?;
    let sorted = merge_sort(items, &mut |x, y| Ok(compare_array_elements(x, y, compare.as_ref(), ctx)?.is_gt()))?;
    Ok(JsArray::from_iter(sorted, ctx).into())
}

/// The comparison function argument: a callable, or none; anything else is a TypeError.
fn comparator(args: &[JsValue]) -> JsResult<Option<JsObject>> {
    match args.first() {
        None => Ok(None),
        Some(v) if v.is_undefined() => Ok(None),
        Some(v) => match v.as_object() {
            Some(f) if f.is_callable() => Ok(Some(f.clone())),
            _ => Err(JsNativeError::typ()
                .with_message("The comparison function must be either a function or undefined")
                .into()),
        },
    }
}

/// `LengthOfArrayLike ( obj )`.
fn length_of_array_like(obj: &JsObject, ctx: &mut Context) -> JsResult<u64> {
    obj.get(js_string!("length"), ctx)?.to_length(ctx)
}

/// `Set(obj, j, sorted[j], true)` for each item, in order.
fn write_back(obj: &JsObject, sorted: Vec<JsValue>, ctx: &mut Context) -> JsResult<()> {
    for (j, item) in sorted.into_iter().enumerate() {
        obj.set(j, item, true, ctx)?;
    }
    Ok(())
}

/// `CompareArrayElements ( x, y, comparefn )`: undefined last, then the comparison function's
/// number (NaN as +0), or else the strings' code units.
fn compare_array_elements(
    x: &JsValue,
    y: &JsValue,
    compare: Option<&JsObject>,
    ctx: &mut Context,
) -> JsResult<Ordering> {
    match (x.is_undefined(), y.is_undefined()) {
        (true, true) => return Ok(Ordering::Equal),
        (true, false) => return Ok(Ordering::Greater),
        (false, true) => return Ok(Ordering::Less),
        _ => {}
    }
    if let Some(f) = compare {
        let v = f.call(&JsValue::undefined(), &[x.clone(), y.clone()], ctx)?.to_number(ctx)?;
        return Ok(v.partial_cmp(&0.0).unwrap_or(Ordering::Equal));
    }
    let (xs, ys) = (x.to_string(ctx)?, y.to_string(ctx)?);
    Ok(xs.cmp(&ys))
}

/// A stable merge sort: `after(x, y)` says whether x goes after y. It ends in some order of the
/// items whatever the answers are, and stops at the first error.
fn merge_sort(
    mut items: Vec<JsValue>,
    after: &mut dyn FnMut(&JsValue, &JsValue) -> JsResult<bool>,
) -> JsResult<Vec<JsValue>> {
    let n = items.len();
    let mut merged = Vec::with_capacity(n);
    let mut width = 1;
    while width < n {
        merged.clear();
        let mut start = 0;
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j) = (start, mid);
            while i < mid && j < end {
                if after(&items[i], &items[j])? {
                    merged.push(items[j].clone());
                    j += 1;
                } else {
                    merged.push(items[i].clone());
                    i += 1;
                }
            }
            merged.extend_from_slice(&items[i..mid]);
            merged.extend_from_slice(&items[j..end]);
            start = end;
        }
        std::mem::swap(&mut items, &mut merged);
        width *= 2;
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use boa_engine::Source;

    /// What `code` evaluates to, as a string, in a fresh sandbox realm.
    fn eval(code: &str) -> String {
        let mut ctx = super::super::worker::new_context().expect("realm");
        let value = ctx.eval(Source::from_bytes(code.as_bytes())).unwrap_or_else(|e| panic!("{code}: {e}"));
        value.to_string(&mut ctx).expect("string").to_std_string_escaped()
    }

    #[test]
    fn sorts_as_the_specification_says() {
        for (code, expected) in [
            ("[3, 1, 2].sort().join()", "1,2,3"),
            ("[10, 9, 1].sort().join()", "1,10,9"),
            ("[3, 1, 2].sort((a, b) => b - a).join()", "3,2,1"),
            // undefined last, holes after them, removed from the end.
            ("var a = [3, undefined, , 1]; a.sort(); a.length + ':' + a.join() + ':' + (3 in a)", "4:1,3,,:false"),
            // Stable: equal keys keep their order.
            (
                "[{k:1,n:'a'},{k:0,n:'b'},{k:1,n:'c'},{k:0,n:'d'}].sort((x, y) => x.k - y.k).map(o => o.n).join('')",
                "bdac",
            ),
            // Array-likes, and the result is the object itself.
            ("var o = {length: 2, 0: 'b', 1: 'a'}; Array.prototype.sort.call(o) === o && o[0] + o[1]", "ab"),
            ("var a = [2, 1]; a.toSorted().join() + '|' + a.join()", "1,2|2,1"),
            ("[, 'b', 'a'].toSorted().join()", "a,b,"),
            ("try { [].sort(1) } catch (e) { e instanceof TypeError }", "true"),
            ("try { [].toSorted(null) } catch (e) { e instanceof TypeError }", "true"),
            ("try { Array.prototype.toSorted.call({length: 2 ** 32}) } catch (e) { e instanceof RangeError }", "true"),
            ("try { [1, 2].sort(() => { throw 'no' }) } catch (e) { e }", "no"),
            ("Array.prototype.sort.name + Array.prototype.sort.length", "sort1"),
            ("Object.getOwnPropertyDescriptor(Array.prototype, 'toSorted').enumerable", "false"),
            ("new Int8Array([3, -1, 2]).sort().join()", "-1,2,3"),
            ("new Int8Array([3, -1, 2]).sort((a, b) => b - a).join()", "3,2,-1"),
            ("new Float64Array([2, 1]).toSorted((a, b) => a - b).join()", "1,2"),
            ("var t = new Int8Array([2, 1]); t.toSorted((a, b) => a - b) instanceof Int8Array && t.join()", "2,1"),
            ("try { Int8Array.prototype.sort.call([2, 1], (a, b) => a - b) } catch (e) { e instanceof TypeError }", "true"),
            ("try { new Int8Array(2).toSorted(1) } catch (e) { e instanceof TypeError }", "true"),
            // Every element is read before the first comparison, and written back after the last.
            ("var t = new Int8Array([3, 1, 2]); t.sort((a, b) => { t[0] = -1; return a - b; }).join()", "1,2,3"),
            // The first exception of the comparison function ends the sort: no further calls.
            (
                "var n = 0, xs = []; for (var i = 0; i < 100; i++) xs.push(i); \
                 var stop = () => { if (++n === 51) throw 'stop'; return Math.random() - 0.5; }; \
                 [() => xs.sort(stop), () => xs.toSorted(stop), () => Int32Array.from(xs).sort(stop), \
                  () => Int32Array.from(xs).toSorted(stop)].map(f => { n = 0; try { f() } catch (e) { return e + n } }).join()",
                "stop51,stop51,stop51,stop51",
            ),
        ] {
            assert_eq!(eval(code), expected, "{code}");
        }
    }

    #[test]
    fn comparisons_that_are_no_order_end_in_some_order() {
        let shuffled = "var xs = []; for (var i = 0; i < 200; i++) xs.push(i); \
                        var ys = xs.slice().SORT(() => Math.random() - 0.5); \
                        ys.length === 200 && ys.slice().sort((a, b) => a - b).join() === xs.join()";
        for method in ["sort", "toSorted"] {
            assert_eq!(eval(&shuffled.replace("SORT", method)), "true", "{method}");
        }
        // Sorting by a field some items lack: NaN counts as "equal".
        let by_field = "var xs = []; for (var i = 0; i < 50; i++) xs.push(i % 3 ? {v: 50 - i} : {}); \
                        xs.sort((a, b) => a.v - b.v).length";
        assert_eq!(eval(by_field), "50");
        for typed in ["Int32Array", "Float64Array"] {
            let code = format!(
                "var t = new {typed}(100); for (var i = 0; i < 100; i++) t[i] = i; \
                 var s = t.toSorted(() => Math.random() - 0.5); t.sort(() => Math.random() - 0.5); \
                 [t, s].map(a => Array.from(a).sort((x, y) => x - y).join()).join('|') === \
                 Array.from({{length: 100}}, (_, i) => i).join() + '|' + Array.from({{length: 100}}, (_, i) => i).join() \
                 && s instanceof {typed}"
            );
            assert_eq!(eval(&code), "true", "{typed}");
        }
    }
}
