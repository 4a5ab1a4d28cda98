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
    /// Parses `["=", 5]`, `["<", 10]`, `[">", 0, "<=", 5]`: one comparison, or a lower bound
    /// (`>`, `>=`) followed by an upper bound (`<`, `<=`). Messages are AWS's, word for word.
    /// Numbers may be any finite double, as in current EventBridge (older releases capped
    /// them at ±5.0e9).
    pub(crate) fn parse(path: &str, spec: &Value) -> Result<NumericRange, PatternError> {
        let invalid = |reason: String| PatternError::invalid(path, reason);
        let Value::Array(items) = spec else {
            return Err(invalid("Value of numeric must be an array.".into()));
        };
        let number = |idx: usize, word: &str| match items.get(idx) {
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| invalid(format!("Cannot compare number : {n}"))),
            _ => Err(invalid(format!("Value of {word} must be numeric"))),
        };
        let bound = |value, inclusive| Some(Bound { value, inclusive });
        let first_op = match items.first() {
            Some(Value::String(op)) => op.as_str(),
            Some(other) => {
                return Err(invalid(format!(
                    "Invalid member in numeric match: {}",
                    token(other)
                )));
            }
            None => return Err(invalid("Invalid member in numeric match: ]".into())),
        };
        let mut range = NumericRange {
            lower: None,
            upper: None,
        };
        match first_op {
            "=" => {
                let value = number(1, "equals")?;
                range.lower = bound(value, true);
                range.upper = bound(value, true);
            }
            "<" | "<=" => range.upper = bound(number(1, first_op)?, first_op == "<="),
            ">" | ">=" => range.lower = bound(number(1, first_op)?, first_op == ">="),
            other => {
                return Err(invalid(format!(
                    "Unrecognized numeric range operator: {other}"
                )));
            }
        }
        if items.len() == 2 {
            return Ok(range);
        }
        // Only a lower bound may be followed by an upper one.
        if range.upper.is_some() {
            return Err(invalid("Too many elements in numeric expression".into()));
        }
        let second_op = match &items[2] {
            Value::String(op) => op.as_str(),
            other => {
                return Err(invalid(format!(
                    "Bad value in numeric range: {}",
                    token(other)
                )));
            }
        };
        if second_op != "<" && second_op != "<=" {
            return Err(invalid(format!("Bad numeric range operator: {second_op}")));
        }
        let top = number(3, second_op)?;
        if items.len() > 4 {
            return Err(invalid("Too many terms in numeric range expression".into()));
        }
        range.upper = bound(top, second_op == "<=");
        let bottom = range.lower.map_or(f64::NEG_INFINITY, |b| b.value);
        if bottom >= top {
            return Err(invalid("Bottom must be less than top".into()));
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

/// A JSON token as the JSON parser behind AWS names it in messages.
fn token(value: &Value) -> String {
    match value {
        Value::Object(_) => "{".to_owned(),
        Value::Array(_) => "[".to_owned(),
        other => other.to_string(),
    }
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
