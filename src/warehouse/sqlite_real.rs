//! `tidemark_real(text, bits)`: decimal text → SQLite REAL, exactly.
//!
//! SQLite's own text-to-REAL conversion (`CAST(x AS REAL)`, JSON numbers) is not correctly
//! rounded: `-1e-300` becomes `-9.9999999999999986e-301`, one unit in the last place off.
//! Staged values are exact decimal text, so the merge converts them with Rust's parser (which
//! is correctly rounded) through this function, registered on every SQLite connection
//! tidemark opens. `bits` = 32: the value is a FLOAT (single precision), rounded to f32 first,
//! as the upstream column held it. `Infinity`/`-Infinity` are REAL's infinities; `NaN` (which
//! REAL cannot hold) is NULL; anything else that is not a number is an error.

use std::ffi::{c_char, c_int, CStr};

use libsqlite3_sys as ffi;

const NAME: &CStr = c"tidemark_real";

/// Registers the function on a connection; SQLite's result code.
pub fn register(handle: &mut sqlx::sqlite::LockedSqliteHandle<'_>) -> c_int {
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is an open connection, locked for us by sqlx while `handle` lives; the name
    // is NUL-terminated and static; the function keeps no user data: nothing to destroy.
    unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            NAME.as_ptr(),
            2,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_INNOCUOUS,
            std::ptr::null_mut(),
            Some(tidemark_real),
            None,
            None,
            None,
        )
    }
}

/// What a staged text becomes: `Ok(None)` is NULL.
pub fn parse(text: &str, bits: i64) -> Result<Option<f64>, String> {
    let t = text.trim();
    let v = match t {
        "Infinity" | "inf" => f64::INFINITY,
        "-Infinity" | "-inf" => f64::NEG_INFINITY,
        "NaN" => return Ok(None),
        _ if bits == 32 => t.parse::<f32>().map(f64::from).map_err(|_| format!("`{t}` is not a number"))?,
        _ => t.parse::<f64>().map_err(|_| format!("`{t}` is not a number"))?,
    };
    Ok(Some(v))
}

unsafe extern "C" fn tidemark_real(ctx: *mut ffi::sqlite3_context, n: c_int, args: *mut *mut ffi::sqlite3_value) {
    // SAFETY: SQLite passes `n` (= 2, as registered) valid argument pointers.
    let args = unsafe { std::slice::from_raw_parts(args, n.max(0) as usize) };
    let [value, bits] = args else {
        // SAFETY: `ctx` is the call's context; the message is NUL-terminated.
        unsafe { ffi::sqlite3_result_error(ctx, c"tidemark_real takes 2 arguments".as_ptr(), -1) };
        return;
    };
    // SAFETY: the argument pointers are valid for this call.
    let (kind, bits) = unsafe { (ffi::sqlite3_value_type(*value), ffi::sqlite3_value_int64(*bits)) };
    match kind {
        ffi::SQLITE_NULL => unsafe { ffi::sqlite3_result_null(ctx) },
        // SAFETY: as above.
        ffi::SQLITE_INTEGER | ffi::SQLITE_FLOAT => unsafe {
            ffi::sqlite3_result_double(ctx, ffi::sqlite3_value_double(*value))
        },
        _ => {
            // SAFETY: sqlite3_value_text returns NUL-terminated UTF-8 (or NULL on OOM), valid
            // until the value changes; it is read here, before anything else touches it.
            let text = unsafe { ffi::sqlite3_value_text(*value) };
            if text.is_null() {
                unsafe { ffi::sqlite3_result_error_nomem(ctx) };
                return;
            }
            let s = unsafe { CStr::from_ptr(text as *const c_char) }.to_string_lossy();
            match parse(&s, bits) {
                Ok(Some(f)) => unsafe { ffi::sqlite3_result_double(ctx, f) },
                Ok(None) => unsafe { ffi::sqlite3_result_null(ctx) },
                Err(e) => {
                    let msg = std::ffi::CString::new(e).unwrap_or_default();
                    // SQLITE_TRANSIENT: SQLite copies the message before `msg` is dropped.
                    unsafe { ffi::sqlite3_result_error(ctx, msg.as_ptr(), -1) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_is_read_to_the_nearest_double() {
        assert_eq!(parse("-1e-300", 64).unwrap().unwrap().to_bits(), (-1e-300f64).to_bits());
        assert_eq!(parse("4.9E-324", 64).unwrap(), Some(f64::from_bits(1)));
        assert_eq!(parse("3.4028235e38", 32).unwrap(), Some(f64::from(f32::MAX)));
        assert_eq!(parse("Infinity", 64).unwrap(), Some(f64::INFINITY));
        assert_eq!(parse("NaN", 64).unwrap(), None);
        assert!(parse("x", 64).is_err());
    }
}
