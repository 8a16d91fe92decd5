//! Flows as CSV (RFC 4180): one header, one row per flow, for the CLI's
//! `flows query --output csv` and the console's export.

use crate::flow::Flow;
use crate::time::format_rfc3339;

/// The columns of [`row`].
pub const HEADER: &str = "start,end,source,src_ip,src_port,dst_ip,dst_port,protocol,bytes_out,bytes_in,packets_out,packets_in,hostname,src_workload,dst_workload,src_groups,dst_groups,vendor,verdict,rule";

/// One CSV cell: quoted when it holds a comma, quote or line break, and
/// prefixed with `'` when it starts like a spreadsheet formula (`=`, `+`,
/// `-`, `@`), so names from the network never run as one.
pub fn field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// `f` as a row of [`HEADER`]'s columns, without the line end.
pub fn row(f: &Flow) -> String {
    let e = f.enrichment.as_deref();
    let name = |n: Option<&str>| n.unwrap_or_default().to_string();
    let fields = [
        format_rfc3339(f.start_ms),
        format_rfc3339(f.end_ms),
        f.source.to_string(),
        f.src_ip.to_string(),
        f.src_port.to_string(),
        f.dst_ip.to_string(),
        f.dst_port.to_string(),
        f.protocol.to_string(),
        f.bytes_out.to_string(),
        f.bytes_in.to_string(),
        f.packets_out.to_string(),
        f.packets_in.to_string(),
        f.hostname.clone().unwrap_or_default(),
        name(e.and_then(|e| e.src_workload.as_deref())),
        name(e.and_then(|e| e.dst_workload.as_deref())),
        e.map(|e| e.src_groups.join(";")).unwrap_or_default(),
        e.map(|e| e.dst_groups.join(";")).unwrap_or_default(),
        name(e.and_then(|e| e.vendor.as_deref())),
        name(e.map(|e| e.verdict.as_str())),
        name(e.and_then(|e| e.rule.as_deref())),
    ];
    let cells: Vec<String> = fields.iter().map(|v| field(v)).collect();
    cells.join(",")
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn cells_are_quoted_and_never_formulas() {
        assert_eq!(field("web-1"), "web-1");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("@x,y"), "\"'@x,y\"");
    }
}
