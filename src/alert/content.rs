//! What an alert says beyond the rule: who called, for which product and usage, and where to
//! look, read from the CloudTrail record (the envelope's `detail`).

use super::{MAX_RECORDS, Principal, UsageRecord};
use crate::field::Tree;
use serde_json::Value;

/// The event fields alert content is read from: parsing only these for an alerting event
/// costs a fraction of building its whole value.
pub const FIELDS: &[&str] = &[
    "detail.eventName",
    "detail.errorMessage",
    "detail.userIdentity.type",
    "detail.userIdentity.arn",
    "detail.userIdentity.accountId",
    "detail.userIdentity.invokedBy",
    "detail.userIdentity.sessionContext.sessionIssuer.arn",
    "detail.requestParameters.productCode",
    "detail.requestParameters.usageDimension",
    "detail.requestParameters.usageQuantity",
    "detail.requestParameters.timestamp",
    "detail.requestParameters.usageRecords",
    "detail.responseElements.results",
    "detail.responseElements.unprocessedRecords",
];

fn text<T: Tree>(value: Option<&T>) -> Option<String> {
    value.and_then(T::as_str).map(str::to_owned)
}

/// `userIdentity`, with the role behind an assumed-role session.
pub fn principal(detail: &impl Tree) -> Option<Principal> {
    let identity = detail.member("userIdentity")?;
    Some(Principal {
        kind: text(identity.member("type")),
        arn: text(identity.member("arn")),
        role_arn: text(
            identity
                .member("sessionContext")
                .and_then(|context| context.member("sessionIssuer"))
                .and_then(|issuer| issuer.member("arn")),
        ),
        account_id: text(identity.member("accountId")),
        invoked_by: text(identity.member("invokedBy")),
    })
}

/// `requestParameters.productCode`.
pub fn product_code(detail: &impl Tree) -> Option<String> {
    text(detail.member("requestParameters")?.member("productCode"))
}

/// The usage records a call carried ([`records`]), read once for all the alerts an event
/// raises, and where each array's elements are among them.
#[derive(Debug, Default)]
pub struct Records {
    all: Vec<UsageRecord>,
    /// How many of `all` are BatchMeterUsage results (then come its unprocessed records).
    n_results: usize,
    /// Whether `all` holds the request's records (a response with neither array).
    from_request: bool,
}

impl Records {
    pub fn read<T: Tree>(detail: &T) -> Records {
        let all = records(detail);
        let response = detail.member("responseElements");
        let n_results = response
            .and_then(|response| response.member("results"))
            .and_then(T::elements)
            .map_or(0, <[T]>::len);
        let n_unprocessed = response
            .and_then(|response| response.member("unprocessedRecords"))
            .and_then(T::elements)
            .map_or(0, <[T]>::len);
        let from_request = n_results == 0 && n_unprocessed == 0 && !all.is_empty();
        Records {
            all,
            n_results,
            from_request,
        }
    }

    /// How many records the call carried.
    pub fn n_records(&self) -> usize {
        self.all.len()
    }

    /// What an alert lists: for a per-element alert (`element`: its array's dotted path and
    /// index) only the record that element is, if it is one; else the first
    /// [`MAX_RECORDS`]. With how many were left out, if any: so an event's alerts together
    /// hold each record a bounded number of times, however many records it has.
    pub fn listed(&self, element: Option<(&str, usize)>) -> (Vec<UsageRecord>, Option<u64>) {
        let listed: Vec<UsageRecord> = match element {
            None => self.all.iter().take(MAX_RECORDS).cloned().collect(),
            Some((array, idx)) => {
                let at = match array {
                    "detail.responseElements.results" if idx < self.n_results => Some(idx),
                    "detail.responseElements.unprocessedRecords" => {
                        Some(self.n_results.saturating_add(idx))
                    }
                    "detail.requestParameters.usageRecords" if self.from_request => Some(idx),
                    _ => None,
                };
                at.and_then(|at| self.all.get(at))
                    .cloned()
                    .into_iter()
                    .collect()
            }
        };
        let omitted = self.all.len() - listed.len();
        (listed, (omitted > 0).then_some(omitted as u64))
    }
}

/// The usage records a call carried: MeterUsage's one; BatchMeterUsage's results (with their
/// status) and unprocessed records, else its request's records.
pub fn records<T: Tree>(detail: &T) -> Vec<UsageRecord> {
    let request = detail.member("requestParameters");
    let response = detail.member("responseElements");
    match detail.member("eventName").and_then(T::as_str) {
        Some("MeterUsage") => request
            .map(|request| {
                vec![UsageRecord {
                    customer: None,
                    dimension: text(request.member("usageDimension")),
                    quantity: request.member("usageQuantity").map(T::to_value),
                    timestamp: text(request.member("timestamp")),
                    status: None,
                }]
            })
            .unwrap_or_default(),
        Some("BatchMeterUsage") => {
            fn array<'v, T: Tree>(value: Option<&'v T>, key: &str) -> &'v [T] {
                value
                    .and_then(|v| v.member(key))
                    .and_then(T::elements)
                    .unwrap_or_default()
            }
            let results = array(response, "results");
            let unprocessed = array(response, "unprocessedRecords");
            if results.is_empty() && unprocessed.is_empty() {
                return array(request, "usageRecords")
                    .iter()
                    .map(|record| usage_record(record, None))
                    .collect();
            }
            results
                .iter()
                .map(|result| {
                    let status = text(result.member("status"));
                    match result.member("usageRecord") {
                        Some(record) => usage_record(record, status),
                        None => usage_record(&Value::Null, status),
                    }
                })
                .chain(
                    unprocessed
                        .iter()
                        .map(|record| usage_record(record, Some("Unprocessed".into()))),
                )
                .collect()
        }
        _ => Vec::new(),
    }
}

fn usage_record(record: &impl Tree, status: Option<String>) -> UsageRecord {
    UsageRecord {
        customer: text(record.member("customerIdentifier"))
            .or_else(|| text(record.member("customerAWSAccountId")))
            // AWS's API reference spells it so; CloudTrail, `…Id`.
            .or_else(|| text(record.member("customerAWSAccountID"))),
        dimension: text(record.member("dimension")),
        quantity: record.member("quantity").map(Tree::to_value),
        timestamp: text(record.member("timestamp")),
        status,
    }
}

/// The event in the CloudTrail console's event history, in its own region.
pub fn console_url(region: Option<&str>, event_id: Option<&str>) -> Option<String> {
    let region = region.filter(|r| is_region(r))?;
    let event_id = event_id.filter(|id| {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })?;
    Some(format!(
        "https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{event_id}"
    ))
}

/// A region name such as `us-east-1` (kept out of URLs otherwise: it comes from the event).
fn is_region(region: &str) -> bool {
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A stable id for one rule's finding about one event (and element): repeats share it, which
/// lets subscribers and FIFO topics deduplicate.
pub fn alert_id(rule: &str, event_id: Option<&str>, element: Option<&str>) -> String {
    const NAMESPACE: uuid::Uuid = uuid::uuid!("5b0c2f4e-6f7a-4d1e-9a3b-8c2d1e0f4a6b");
    let (event_id, element) = (event_id.unwrap_or(""), element.unwrap_or(""));
    // Built and formatted by hand: `format!` costs as much as the hash.
    let mut name = String::with_capacity(rule.len() + event_id.len() + element.len() + 2);
    for (idx, part) in [rule, event_id, element].into_iter().enumerate() {
        if idx > 0 {
            name.push('\n');
        }
        name.push_str(part);
    }
    let id = uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes());
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut text).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_records_carry_their_status() {
        let detail = json!({
            "eventName": "BatchMeterUsage",
            "responseElements": {
                "results": [{"usageRecord": {"customerIdentifier": "c1", "dimension": "d", "quantity": 2,
                              "timestamp": "Apr 19, 2018 4:32:50 PM"}, "status": "DuplicateRecord"}],
                "unprocessedRecords": [{"customerAWSAccountId": "111122223333", "dimension": "d"},
                                       {"customerAWSAccountID": "444455556666", "dimension": "d"}]
            }
        });
        let records = records(&detail);
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].status.as_deref(), Some("DuplicateRecord"));
        assert_eq!(records[0].quantity, Some(json!(2)));
        assert_eq!(records[1].customer.as_deref(), Some("111122223333"));
        assert_eq!(records[1].status.as_deref(), Some("Unprocessed"));
        // The API reference's spelling.
        assert_eq!(records[2].customer.as_deref(), Some("444455556666"));
    }

    #[test]
    fn the_role_behind_a_session_is_named() {
        let detail = json!({"userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/r/s",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/r"}}}});
        let principal = principal(&detail).expect("a principal");
        assert_eq!(principal.role_arn.as_deref(), Some("arn:aws:iam::1:role/r"));
    }

    #[test]
    fn console_links_only_from_plain_region_and_id() {
        assert_eq!(
            console_url(Some("eu-west-1"), Some("cEXAMPLE-e6c2")).as_deref(),
            Some(
                "https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events/cEXAMPLE-e6c2"
            )
        );
        assert_eq!(console_url(Some("evil.com/x"), Some("id")), None);
        assert_eq!(console_url(Some("us-east-1"), Some("a b")), None);
    }

    #[test]
    fn alert_ids_are_stable_and_distinct() {
        let a = alert_id("r", Some("e"), None);
        assert_eq!(a, alert_id("r", Some("e"), None));
        assert_ne!(a, alert_id("r", Some("e"), Some("x[0]")));
        assert_ne!(a, alert_id("q", Some("e"), None));
    }
}
