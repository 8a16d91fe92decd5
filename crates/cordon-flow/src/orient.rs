//! Turning flows around so the source is the initiator.
//!
//! AWS VPC Flow Logs, GCP flow logs and NetFlow record each direction of a
//! connection on its own, so half the records run from a server back to its
//! client. Left as they are, the reply looks like a server opening
//! connections to random high ports, which the policy denies and detectors
//! misread. A record is a reply when its TCP flags show SYN+ACK without a
//! bare SYN, or, failing flags, when it runs from a service port to a higher
//! ephemeral port.

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
    if let Some(flags) = flow
        .get_attr("tcp_flags")
        .and_then(|f| f.parse::<u16>().ok())
    {
        let syn = flags & 0x02 != 0;
        let ack = flags & 0x10 != 0;
        if syn && ack {
            return true;
        }
        if syn {
            return false;
        }
    }
    is_service(flow.src_port) && !is_service(flow.dst_port) && flow.dst_port > flow.src_port
}

/// `flow` with source and destination swapped if it is a reply.
pub fn orient(mut flow: Flow) -> Flow {
    if is_reply(&flow) {
        std::mem::swap(&mut flow.src_ip, &mut flow.dst_ip);
        std::mem::swap(&mut flow.src_port, &mut flow.dst_port);
        std::mem::swap(&mut flow.bytes_out, &mut flow.bytes_in);
        std::mem::swap(&mut flow.packets_out, &mut flow.packets_in);
        flow.direction = flow.direction.map(|d| match d {
            crate::flow::Direction::Ingress => crate::flow::Direction::Egress,
            crate::flow::Direction::Egress => crate::flow::Direction::Ingress,
        });
        flow.attr("oriented", "reply");
    }
    flow
}
