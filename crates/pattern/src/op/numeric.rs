//! `numeric`: comparisons and ranges over JSON numbers (never numeric strings).

use crate::error::PatternError;
use serde_json::Value;

/// One side of a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub inclusive: bool,
}

/// A numeric range, open on the sides without a bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericRange {
    pub lower: Option<Bound>,
    pub upper: Option<Bound>,
}

impl NumericRange {
    /// Parses `["=", 5]`, `["<", 10]`, `[">", 0, "<=", 5]`: an optional lower bound (`>`,
    /// `>=`) followed by an optional upper bound (`<`, `<=`), or a single `=`.
    pub(crate) fn parse(path: &str, spec: &Value) -> Result<NumericRange, PatternError> {
        let Value::Array(items) = spec else {
            return Err(PatternError::invalid(
                path,
                "Value of numeric must be an array.",
            ));
        };
        let mut range = NumericRange {
            lower: None,
            upper: None,
        };
        let mut items = items.iter();
        let mut n_ops = 0;
        while let Some(op) = items.next() {
            let Value::String(op) = op else {
                return Err(PatternError::invalid(
                    path,
                    format!("Unrecognized numeric range operator: {}", compact(op)),
                ));
            };
            let value = match items.next() {
                Some(Value::Number(number)) => number.as_f64().unwrap_or(f64::NAN),
                _ => {
                    return Err(PatternError::invalid(
                        path,
                        format!("Value of {op} must be numeric"),
                    ));
                }
            };
            check_range(path, op, value)?;
            n_ops += 1;
            let bound = |inclusive| Some(Bound { value, inclusive });
            match (op.as_str(), n_ops) {
                ("=", 1) => {
                    range.lower = bound(true);
                    range.upper = bound(true);
                    if items.len() > 0 {
                        return Err(PatternError::invalid(path, "Bad numeric range operator: ="));
                    }
                }
                (">" | ">=", 1) => range.lower = bound(op == ">="),
                ("<" | "<=", _) if range.upper.is_none() => range.upper = bound(op == "<="),
                ("=" | ">" | ">=" | "<" | "<=", _) => {
                    return Err(PatternError::invalid(
                        path,
                        format!("Bad numeric range operator: {op}"),
                    ));
                }
                _ => {
                    return Err(PatternError::invalid(
                        path,
                        format!("Unrecognized numeric range operator: {op}"),
                    ));
                }
            }
        }
        if n_ops == 0 {
            return Err(PatternError::invalid(path, "Empty numeric range"));
        }
        if let (Some(lower), Some(upper)) = (range.lower, range.upper)
            && lower.value >= upper.value
            && !(lower.value == upper.value && lower.inclusive && upper.inclusive)
        {
            return Err(PatternError::invalid(path, "Bottom must be less than top"));
        }
        Ok(range)
    }

    pub fn contains(&self, n: f64) -> bool {
        let above = match self.lower {
            Some(Bound {
                value,
                inclusive: true,
            }) => n >= value,
            Some(Bound {
                value,
                inclusive: false,
            }) => n > value,
            None => true,
        };
        let below = match self.upper {
            Some(Bound {
                value,
                inclusive: true,
            }) => n <= value,
            Some(Bound {
                value,
                inclusive: false,
            }) => n < value,
            None => true,
        };
        above && below
    }
}

/// EventBridge only compares numbers in ±5.0e9 (see `number::check_range`).
fn check_range(path: &str, op: &str, value: f64) -> Result<(), PatternError> {
    if !(-MAX_MAGNITUDE..=MAX_MAGNITUDE).contains(&value) {
        return Err(PatternError::invalid(
            path,
            format!("Value of {op} must be a number between -5.0E9 and 5.0E9 inclusive"),
        ));
    }
    Ok(())
}

const MAX_MAGNITUDE: f64 = 5.0e9;

fn compact(value: &Value) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(spec: Value) -> NumericRange {
        NumericRange::parse("n", &spec).expect("valid range")
    }

    fn reason(spec: Value) -> String {
        NumericRange::parse("n", &spec)
            .expect_err("invalid range")
            .reason()
            .to_owned()
    }

    #[test]
    fn ranges_respect_inclusivity() {
        let r = range(json!([">", 0, "<=", 5]));
        assert!(!r.contains(0.0));
        assert!(r.contains(0.1));
        assert!(r.contains(5.0));
        assert!(!r.contains(5.01));
        assert!(range(json!(["=", 300])).contains(300.0));
        assert!(range(json!([">=", -1.5])).contains(-1.5));
        assert!(range(json!(["<", 10])).contains(-1e9));
    }

    #[test]
    fn malformed_ranges_are_rejected_as_aws_does() {
        assert_eq!(reason(json!(10)), "Value of numeric must be an array.");
        assert_eq!(
            reason(json!([">", 0, ">", 0])),
            "Bad numeric range operator: >"
        );
        assert_eq!(reason(json!([">", 0, "<"])), "Value of < must be numeric");
        assert_eq!(
            reason(json!([">", 5, "<", 1])),
            "Bottom must be less than top"
        );
    }
}
