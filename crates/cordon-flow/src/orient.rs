//! Turning flows around so the source is the initiator.
//!
//! AWS VPC Flow Logs, GCP flow logs and NetFlow record each direction of a
//! connection on its own, so half the records run from a server back to its
//! client. Left as they are, the reply looks like a server opening
//! connections to random high ports, which the policy denies and detectors
//! misread. An AWS record is a reply when its TCP flags show SYN-ACK; any
//! record without telling flags is a reply when it runs from a service port
//! to a higher, ephemeral one.

use crate::flow::{Flow, FlowSource};

/// Ports that are services even above 1024.
const SERVICE_PORTS: &[u16] = &[
    1433, 1521, 2049, 2379, 3000, 3128, 3306, 3389, 5000, 5432, 5601, 5672, 5900, 5985, 5986, 6379,
    6443, 8000, 8080, 8443, 8888, 9000, 9090, 9092, 9200, 9300, 11211, 27017,
];

fn is_service(port: u16) -> bool {
    (port != 0 && port < 1024) || SERVICE_PORTS.contains(&port)
}

/// Whether `flow` looks like the reply half of a connection.
pub fn is_reply(flow: &Flow) -> bool {
    if !matches!(
        flow.source,
        FlowSource::Aws | FlowSource::Gcp | FlowSource::Netflow | FlowSource::Ipfix
    ) {
        return false;
    }
    if flow.protocol != 6 && flow.protocol != 17 && flow.protocol != 132 {
        return false;
    }
    // AWS records only FIN, SYN, RST and SYN-ACK (18), so an ACK bit there
    // means the SYN-ACK side. NetFlow and IPFIX OR every flag of the flow, so
    // both halves show SYN and ACK and only the ports can tell.
    if flow.source == FlowSource::Aws
        && let Some(flags) = flow
            .get_attr("tcp_flags")
            .and_then(|f| f.parse::<u16>().ok())
    {
        if flags & 0x12 == 0x12 {
            return true;
        }
        if flags & 0x02 != 0 {
            return false;
        }
    }
    is_service(flow.src_port) && !is_service(flow.dst_port) && flow.dst_port > flow.src_port
}

/// `flow` with source and destination swapped if it is a reply.
pub fn orient(mut flow: Flow) -> Flow {
    orient_in_place(&mut flow);
    flow
}

/// Swap source and destination of `flow` if it is a reply. A flow already
/// turned around is left alone, so preparing a flow twice (stored flows
/// replayed) does not turn it back.
pub fn orient_in_place(flow: &mut Flow) {
    if !flow.orientation.is_reversed() && is_reply(flow) {
        std::mem::swap(&mut flow.src_ip, &mut flow.dst_ip);
        std::mem::swap(&mut flow.src_port, &mut flow.dst_port);
        std::mem::swap(&mut flow.bytes_out, &mut flow.bytes_in);
        std::mem::swap(&mut flow.packets_out, &mut flow.packets_in);
        flow.direction = flow.direction.map(crate::flow::Direction::reversed);
        flow.orientation = crate::flow::Orientation::Reversed;
    }
}

#[cfg(test)]
mod tests {
    use super::{is_reply, orient};
    use crate::flow::{Flow, FlowSource};

    fn flow(source: FlowSource, sport: u16, dport: u16, flags: Option<&str>) -> Flow {
        let mut f = Flow::new(
            source,
            "10.0.3.10".parse().unwrap(),
            "10.0.1.10".parse().unwrap(),
            6,
        );
        f.src_port = sport;
        f.dst_port = dport;
        f.bytes_out = 380;
        f.bytes_in = 0;
        if let Some(fl) = flags {
            f.attr("tcp_flags", fl);
        }
        f
    }

    #[test]
    fn aws_flags_decide_when_present() {
        assert!(
            is_reply(&flow(FlowSource::Aws, 40000, 50000, Some("18"))),
            "SYN-ACK is the server side"
        );
        assert!(
            !is_reply(&flow(FlowSource::Aws, 8080, 40000, Some("2"))),
            "a bare SYN opens"
        );
        assert!(
            is_reply(&flow(FlowSource::Aws, 8080, 40000, Some("1"))),
            "FIN only: ports decide"
        );
    }

    #[test]
    fn netflow_or_ed_flags_do_not_decide_ports_do() {
        // Both halves of a NetFlow flow carry SYN and ACK.
        assert!(!is_reply(&flow(
            FlowSource::Netflow,
            40000,
            8080,
            Some("27")
        )));
        assert!(is_reply(&flow(
            FlowSource::Netflow,
            8080,
            40000,
            Some("26")
        )));
        let o = orient(flow(FlowSource::Ipfix, 443, 51000, None));
        assert_eq!(
            (o.src_port, o.dst_port, o.bytes_out, o.bytes_in),
            (51000, 443, 0, 380)
        );
        assert_eq!(o.src_ip.to_string(), "10.0.1.10");
        assert!(o.orientation.is_reversed());
        assert_eq!(orient(o.clone()), o, "orienting twice changes nothing");
    }

    #[test]
    fn sources_that_know_the_initiator_are_left_alone() {
        assert!(!is_reply(&flow(FlowSource::Zeek, 443, 51000, None)));
        assert!(!is_reply(&flow(FlowSource::Azure, 443, 51000, None)));
        assert!(
            !is_reply(&flow(FlowSource::Aws, 50000, 60000, None)),
            "two ephemeral ports: leave it"
        );
    }
}
