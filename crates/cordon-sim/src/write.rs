//! Writers for the flow-log formats Cordon reads, as the real sources
//! write them: AWS VPC Flow Logs (v2, one record per direction, long
//! connections cut into aggregation windows), GCP VPC Flow Logs (JSON
//! lines), Azure VNet flow logs (v4 documents, one per hour), Zeek
//! `conn.log` (TSV) and IPFIX (an RFC 5655 file). Every format also gets
//! the resolver's answers as a Zeek `dns.log`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use cordon_flow::time::format_rfc3339;

use crate::{Conn, DnsAnswer, Outcome};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFormat {
    /// AWS VPC Flow Logs v2.
    Aws,
    /// GCP VPC Flow Logs as exported from Cloud Logging.
    Gcp,
    /// Azure VNet flow logs v4.
    Azure,
    /// Zeek conn.log TSV.
    Zeek,
    /// IPFIX file.
    Ipfix,
}

impl OutFormat {
    /// Formats by name.
    pub const ALL: [(&'static str, OutFormat); 5] = [
        ("aws", OutFormat::Aws),
        ("gcp", OutFormat::Gcp),
        ("azure", OutFormat::Azure),
        ("zeek", OutFormat::Zeek),
        ("ipfix", OutFormat::Ipfix),
    ];

    /// The format named `name`.
    pub fn from_name(name: &str) -> Option<OutFormat> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }
}

fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Writes connections in one format into a directory.
pub struct FlowWriter {
    format: OutFormat,
    dir: PathBuf,
    out: Option<BufWriter<File>>,
    dns: BufWriter<File>,
    azure_hour: Option<i64>,
    azure_first: bool,
    ipfix_seq: u32,
    ipfix_records: Vec<u8>,
    ipfix_count: usize,
    /// Files written, for the summary.
    pub files: Vec<PathBuf>,
    /// Records written.
    pub records: u64,
}

const ACCOUNT: &str = "123456789012";

fn eni(ip: IpAddr) -> String {
    let h = ip
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("eni-{:017x}", h)
}

fn uid(c: &Conn) -> String {
    let key = format!(
        "{}{}{}{}{}",
        c.start_ms, c.src, c.src_port, c.dst, c.dst_port
    );
    let hash = |seed: u64| {
        key.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = String::from("C");
    for mut h in [hash(0x8422_2325_cbf2_9ce4), hash(0xcbf2_9ce4_8422_2325)] {
        for _ in 0..9 {
            s.push(char::from(ALPHABET[(h % 62) as usize]));
            h /= 62;
        }
    }
    s
}

impl FlowWriter {
    /// A writer of `format` into `dir` (created).
    ///
    /// # Errors
    /// The directory or files cannot be created.
    pub fn create(format: OutFormat, dir: &Path) -> std::io::Result<FlowWriter> {
        std::fs::create_dir_all(dir)?;
        let open = |name: &str| -> std::io::Result<(PathBuf, BufWriter<File>)> {
            let p = dir.join(name);
            Ok((
                p.clone(),
                BufWriter::with_capacity(1 << 20, File::create(p)?),
            ))
        };
        let (dns_path, mut dns) = open("dns.log")?;
        writeln!(dns, "#separator \\x09")?;
        writeln!(dns, "#path\tdns")?;
        writeln!(
            dns,
            "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected"
        )?;
        writeln!(
            dns,
            "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tcount\tstring\tcount\tstring\tcount\tstring\tbool\tbool\tbool\tbool\tcount\tvector[string]\tvector[interval]\tbool"
        )?;
        let mut files = vec![dns_path];
        let out = match format {
            OutFormat::Azure => None,
            OutFormat::Aws => {
                let (p, mut w) = open("vpc-flow.log")?;
                writeln!(
                    w,
                    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
                )?;
                files.push(p);
                Some(w)
            }
            OutFormat::Gcp => {
                let (p, w) = open("vpc_flows.jsonl")?;
                files.push(p);
                Some(w)
            }
            OutFormat::Zeek => {
                let (p, mut w) = open("conn.log")?;
                writeln!(w, "#separator \\x09")?;
                writeln!(w, "#path\tconn")?;
                writeln!(
                    w,
                    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents"
                )?;
                writeln!(
                    w,
                    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]"
                )?;
                files.push(p);
                Some(w)
            }
            OutFormat::Ipfix => {
                let (p, mut w) = open("flows.ipfix")?;
                w.write_all(&ipfix_message(0, &ipfix_template_set()))?;
                files.push(p);
                Some(w)
            }
        };
        Ok(FlowWriter {
            format,
            dir: dir.to_path_buf(),
            out,
            dns,
            azure_hour: None,
            azure_first: true,
            ipfix_seq: 1,
            ipfix_records: Vec::new(),
            ipfix_count: 0,
            files,
            records: 0,
        })
    }

    /// Write one DNS answer.
    ///
    /// # Errors
    /// Write errors.
    pub fn dns(&mut self, d: &DnsAnswer) -> std::io::Result<()> {
        let answers: Vec<String> = d.answers.iter().map(IpAddr::to_string).collect();
        let ttls: Vec<String> = d
            .answers
            .iter()
            .map(|_| format!("{}.000000", d.ttl))
            .collect();
        writeln!(
            self.dns,
            "{:.6}\t{}\t{}\t{}\t{}\t53\tudp\t{}\t0.001\t{}\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t{}\t{}\tF",
            d.ts_ms as f64 / 1000.0,
            uid(&Conn {
                start_ms: d.ts_ms,
                duration_ms: 0,
                src: d.client,
                src_port: d.client_port,
                dst: d.resolver,
                dst_port: 53,
                protocol: 17,
                bytes_out: 0,
                bytes_in: 0,
                packets_out: 0,
                packets_in: 0,
                outcome: Outcome::Established,
                step: None,
            }),
            d.client,
            d.client_port,
            d.resolver,
            d.ts_ms.rem_euclid(65_536),
            d.query,
            answers.join(","),
            ttls.join(",")
        )
    }

    /// Write one connection (one or more records, by format).
    ///
    /// # Errors
    /// Write errors.
    pub fn conn(&mut self, c: &Conn) -> std::io::Result<()> {
        match self.format {
            OutFormat::Aws => self.aws(c),
            OutFormat::Gcp => self.gcp(c),
            OutFormat::Azure => self.azure(c),
            OutFormat::Zeek => self.zeek(c),
            OutFormat::Ipfix => self.ipfix(c),
        }
    }

    fn aws(&mut self, c: &Conn) -> std::io::Result<()> {
        let Some(w) = self.out.as_mut() else {
            return Ok(());
        };
        let (action, reply) = match c.outcome {
            Outcome::Established => ("ACCEPT", true),
            Outcome::Rejected => ("REJECT", false),
            Outcome::Unanswered => ("ACCEPT", false),
        };
        // The record sits on the internal side's interface.
        let interface = eni(if internal(c.src) { c.src } else { c.dst });
        // Long connections are cut into aggregation windows of 10 minutes.
        let start_s = c.start_ms.div_euclid(1000);
        let end_s = (c.start_ms + c.duration_ms).div_euclid(1000).max(start_s);
        let windows = ((end_s - start_s) / 600 + 1).max(1);
        for i in 0..windows {
            let ws = start_s + i * 600;
            let we = (ws + 600).min(end_s.max(ws + 1));
            let share = |n: u64| -> u64 {
                let part = n / windows as u64;
                if i == windows - 1 {
                    n - part * (windows as u64 - 1)
                } else {
                    part
                }
            };
            writeln!(
                w,
                "2 {ACCOUNT} {interface} {} {} {} {} {} {} {} {ws} {we} {action} OK",
                c.src,
                c.dst,
                c.src_port,
                c.dst_port,
                c.protocol,
                share(c.packets_out).max(1),
                share(c.bytes_out).max(40)
            )?;
            self.records += 1;
            if reply {
                writeln!(
                    w,
                    "2 {ACCOUNT} {interface} {} {} {} {} {} {} {} {ws} {we} ACCEPT OK",
                    c.dst,
                    c.src,
                    c.dst_port,
                    c.src_port,
                    c.protocol,
                    share(c.packets_in).max(1),
                    share(c.bytes_in).max(40)
                )?;
                self.records += 1;
            }
        }
        Ok(())
    }

    fn gcp(&mut self, c: &Conn) -> std::io::Result<()> {
        let Some(w) = self.out.as_mut() else {
            return Ok(());
        };
        let end = c.start_ms + c.duration_ms;
        let mut record = |src: IpAddr,
                          sport: u16,
                          dst: IpAddr,
                          dport: u16,
                          bytes: u64,
                          packets: u64,
                          reporter: &str| {
            let line = serde_json::json!({
                "insertId": format!("{:x}", c.start_ms ^ i64::from(sport)),
                "jsonPayload": {
                    "bytes_sent": bytes.to_string(),
                    "packets_sent": packets.to_string(),
                    "connection": {"src_ip": src.to_string(), "src_port": sport, "dest_ip": dst.to_string(), "dest_port": dport, "protocol": c.protocol},
                    "reporter": reporter,
                    "start_time": format_rfc3339(c.start_ms),
                    "end_time": format_rfc3339(end),
                },
                "logName": "projects/acme-prod/logs/compute.googleapis.com%2Fvpc_flows",
                "resource": {"type": "gce_subnetwork", "labels": {"project_id": "acme-prod", "location": "europe-west1-b"}},
                "timestamp": format_rfc3339(end + 15_000),
            });
            writeln!(w, "{line}")
        };
        let reporter = if internal(c.src) { "SRC" } else { "DEST" };
        record(
            c.src,
            c.src_port,
            c.dst,
            c.dst_port,
            c.bytes_out,
            c.packets_out,
            reporter,
        )?;
        self.records += 1;
        if c.outcome == Outcome::Established {
            record(
                c.dst,
                c.dst_port,
                c.src,
                c.src_port,
                c.bytes_in,
                c.packets_in,
                reporter,
            )?;
            self.records += 1;
        }
        Ok(())
    }

    fn azure(&mut self, c: &Conn) -> std::io::Result<()> {
        let hour = c.start_ms.div_euclid(3_600_000);
        if self.azure_hour != Some(hour) {
            self.close_azure()?;
            let name = format!(
                "vnet-flow-{}.json",
                format_rfc3339(hour * 3_600_000)
                    .get(..13)
                    .unwrap_or("hour")
                    .replace(':', "")
            );
            let path = self.dir.join(name);
            let mut w = BufWriter::new(File::create(&path)?);
            self.files.push(path);
            write!(
                w,
                "{{\"records\":[{{\"time\":\"{}\",\"flowLogVersion\":4,\"flowLogGUID\":\"6a1f3c52-8d0b-4e7a-9c21-0f5b7d2e4a10\",\"macAddress\":\"00224871C205\",\"category\":\"FlowLogFlowEvent\",\"flowLogResourceID\":\"/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/ACME/PROVIDERS/MICROSOFT.NETWORK/NETWORKWATCHERS/NW/FLOWLOGS/ACME-PROD\",\"targetResourceID\":\"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/acme/providers/Microsoft.Network/virtualNetworks/acme-prod\",\"operationName\":\"FlowLogFlowEvent\",\"flowRecords\":{{\"flows\":[{{\"aclID\":\"00000000-1234-abcd-ef00-c1c2c3c4c5c6\",\"flowGroups\":[{{\"rule\":\"acme-prod\",\"flowTuples\":[",
                format_rfc3339(hour * 3_600_000)
            )?;
            self.out = Some(w);
            self.azure_hour = Some(hour);
            self.azure_first = true;
        }
        let direction = if internal(c.src) { "O" } else { "I" };
        let proto = c.protocol;
        let end = c.start_ms + c.duration_ms;
        let tuples = match c.outcome {
            Outcome::Rejected => vec![format!(
                "{},{},{},{},{},{proto},{direction},D,NX,{},{},0,0",
                c.start_ms, c.src, c.dst, c.src_port, c.dst_port, c.packets_out, c.bytes_out
            )],
            _ => vec![
                format!(
                    "{},{},{},{},{},{proto},{direction},B,NX,0,0,0,0",
                    c.start_ms, c.src, c.dst, c.src_port, c.dst_port
                ),
                format!(
                    "{end},{},{},{},{},{proto},{direction},E,NX,{},{},{},{}",
                    c.src,
                    c.dst,
                    c.src_port,
                    c.dst_port,
                    c.packets_out,
                    c.bytes_out,
                    c.packets_in,
                    c.bytes_in
                ),
            ],
        };
        let Some(w) = self.out.as_mut() else {
            return Ok(());
        };
        for t in tuples {
            if !self.azure_first {
                w.write_all(b",")?;
            }
            self.azure_first = false;
            write!(w, "\"{t}\"")?;
            self.records += 1;
        }
        Ok(())
    }

    fn close_azure(&mut self) -> std::io::Result<()> {
        if self.format == OutFormat::Azure
            && let Some(mut w) = self.out.take()
        {
            w.write_all(b"]}]}]}}]}\n")?;
            w.flush()?;
        }
        Ok(())
    }

    fn zeek(&mut self, c: &Conn) -> std::io::Result<()> {
        let Some(w) = self.out.as_mut() else {
            return Ok(());
        };
        let (state, history, resp_pkts, orig_bytes, resp_bytes) = match c.outcome {
            Outcome::Established => ("SF", "ShADadFf", c.packets_in, c.bytes_out, c.bytes_in),
            Outcome::Rejected => ("REJ", "Sr", 1, 0, 0),
            Outcome::Unanswered => ("S0", "S", 0, 0, 0),
        };
        let (proto, history) = if c.protocol == 17 {
            ("udp", "Dd")
        } else {
            ("tcp", history)
        };
        let service = match (c.protocol, c.dst_port) {
            (17, 53) => "dns",
            (6, 443) => "ssl",
            (6, 80 | 8080) => "http",
            (6, 22) => "ssh",
            (6, 587 | 25) => "smtp",
            (6, 5432) => "postgresql",
            _ => "-",
        };
        let service = if c.outcome == Outcome::Established {
            service
        } else {
            "-"
        };
        writeln!(
            w,
            "{:.6}\t{}\t{}\t{}\t{}\t{}\t{proto}\t{service}\t{:.6}\t{orig_bytes}\t{resp_bytes}\t{state}\t{}\t{}\t0\t{history}\t{}\t{}\t{resp_pkts}\t{}\t(empty)",
            c.start_ms as f64 / 1000.0,
            uid(c),
            c.src,
            c.src_port,
            c.dst,
            c.dst_port,
            c.duration_ms as f64 / 1000.0,
            if internal(c.src) { "T" } else { "F" },
            if internal(c.dst) { "T" } else { "F" },
            c.packets_out,
            orig_bytes + 40 * c.packets_out,
            resp_bytes + 40 * resp_pkts,
        )?;
        self.records += 1;
        Ok(())
    }

    fn ipfix(&mut self, c: &Conn) -> std::io::Result<()> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (c.src, c.dst) else {
            return Ok(());
        };
        let end = c.start_ms + c.duration_ms;
        let flags: u8 = match c.outcome {
            Outcome::Established => 0x1b,
            Outcome::Rejected => 0x02,
            Outcome::Unanswered => 0x02,
        };
        let mut push = |s: std::net::Ipv4Addr,
                        d: std::net::Ipv4Addr,
                        sp: u16,
                        dp: u16,
                        packets: u64,
                        bytes: u64,
                        flags: u8| {
            let r = &mut self.ipfix_records;
            r.extend(s.octets());
            r.extend(d.octets());
            r.extend(sp.to_be_bytes());
            r.extend(dp.to_be_bytes());
            r.push(c.protocol);
            r.extend(u32::try_from(packets).unwrap_or(u32::MAX).to_be_bytes());
            r.extend(u32::try_from(bytes).unwrap_or(u32::MAX).to_be_bytes());
            r.extend((c.start_ms as u64).to_be_bytes());
            r.extend((end as u64).to_be_bytes());
            r.push(flags);
            self.ipfix_count += 1;
        };
        push(
            src,
            dst,
            c.src_port,
            c.dst_port,
            c.packets_out,
            c.bytes_out,
            flags,
        );
        self.records += 1;
        if c.outcome == Outcome::Established {
            push(
                dst,
                src,
                c.dst_port,
                c.src_port,
                c.packets_in,
                c.bytes_in,
                0x1b,
            );
            self.records += 1;
        }
        if self.ipfix_count >= 30 {
            self.flush_ipfix(c.start_ms)?;
        }
        Ok(())
    }

    fn flush_ipfix(&mut self, now_ms: i64) -> std::io::Result<()> {
        if self.ipfix_count == 0 {
            return Ok(());
        }
        let mut set = Vec::with_capacity(self.ipfix_records.len() + 4);
        set.extend(256u16.to_be_bytes());
        set.extend(
            u16::try_from(self.ipfix_records.len() + 4)
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        set.extend(&self.ipfix_records);
        let mut msg = ipfix_message(self.ipfix_seq, &set);
        // Export time: the newest record's second.
        msg[4..8].copy_from_slice(&((now_ms / 1000) as u32).to_be_bytes());
        if let Some(w) = self.out.as_mut() {
            w.write_all(&msg)?;
        }
        self.ipfix_seq = self.ipfix_seq.wrapping_add(self.ipfix_count as u32);
        self.ipfix_records.clear();
        self.ipfix_count = 0;
        Ok(())
    }

    /// Flush and close everything.
    ///
    /// # Errors
    /// Write errors.
    pub fn finish(mut self) -> std::io::Result<Vec<PathBuf>> {
        self.flush_ipfix(0)?;
        self.close_azure()?;
        if let Some(mut w) = self.out.take() {
            w.flush()?;
        }
        self.dns.flush()?;
        Ok(self.files)
    }
}

/// IPFIX fields of each record: (element id, length).
const IPFIX_FIELDS: [(u16, u16); 10] = [
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (2, 4),
    (1, 4),
    (152, 8),
    (153, 8),
    (6, 1),
];

fn ipfix_template_set() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(256u16.to_be_bytes());
    t.extend((IPFIX_FIELDS.len() as u16).to_be_bytes());
    for (id, len) in IPFIX_FIELDS {
        t.extend(id.to_be_bytes());
        t.extend(len.to_be_bytes());
    }
    let mut set = Vec::new();
    set.extend(2u16.to_be_bytes());
    set.extend(((t.len() + 4) as u16).to_be_bytes());
    set.extend(t);
    set
}

fn ipfix_message(seq: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + 16);
    m.extend(10u16.to_be_bytes());
    m.extend(
        u16::try_from(body.len() + 16)
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    m.extend(1_770_076_800u32.to_be_bytes());
    m.extend(seq.to_be_bytes());
    m.extend(1u32.to_be_bytes());
    m.extend(body);
    m
}

/// Run `scenario` for `hours` with `seed` and write its flows (and the
/// resolver's `dns.log`, and the AWS account's `cloudtrail.json`) into
/// `dir` as `format`, with the ground truth as
/// `truth.json` beside them. Returns the truth, the files written (the
/// truth last) and how many flow records were written.
///
/// # Errors
/// A file that cannot be written.
pub fn write_simulation(
    scenario: crate::Scenario,
    format: OutFormat,
    hours: u32,
    seed: u64,
    dir: &std::path::Path,
) -> std::io::Result<(crate::truth::Truth, Vec<std::path::PathBuf>, u64)> {
    let mut writer = FlowWriter::create(format, dir)?;
    let sim = crate::Simulation::new(scenario, hours, seed);
    let error: std::cell::RefCell<Option<std::io::Error>> = std::cell::RefCell::new(None);
    let writer_cell = std::cell::RefCell::new(&mut writer);
    let keep = |result: std::io::Result<()>| {
        if let Err(e) = result {
            error.borrow_mut().get_or_insert(e);
        }
    };
    // The company's CloudTrail, as S3 delivers it: one `Records` document.
    let trail_path = dir.join("cloudtrail.json");
    let mut trail = BufWriter::with_capacity(1 << 20, File::create(&trail_path)?);
    trail.write_all(b"{\"Records\":[")?;
    let mut first = true;
    let truth = sim.run_with_cloud(
        &mut |c| {
            if error.borrow().is_none() {
                keep(writer_cell.borrow_mut().conn(c));
            }
        },
        &mut |d| {
            if error.borrow().is_none() {
                keep(writer_cell.borrow_mut().dns(d));
            }
        },
        Some(&mut |r| {
            if error.borrow().is_none() {
                let sep: &[u8] = if first { b"\n" } else { b",\n" };
                first = false;
                keep(trail.write_all(sep).and_then(|()| {
                    serde_json::to_writer(&mut trail, r).map_err(std::io::Error::other)
                }));
            }
        }),
    );
    trail.write_all(b"\n]}\n")?;
    trail.flush()?;
    drop(trail);
    if let Some(e) = error.into_inner() {
        return Err(e);
    }
    let records = writer.records;
    let mut files = writer.finish()?;
    files.push(trail_path);
    let truth_path = dir.join("truth.json");
    let text = serde_json::to_string_pretty(&truth).map_err(std::io::Error::other)?;
    std::fs::write(&truth_path, text)?;
    files.push(truth_path);
    Ok((truth, files, records))
}
