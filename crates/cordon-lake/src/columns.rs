//! Flows as columns of OCSF Network Activity (class 4001) with nested
//! structs, so engines query `src_endpoint.ip` and `traffic.bytes_out` as
//! Security Lake's own tables name them.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, MapBuilder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, StructArray};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use cordon_flow::flow::{Direction, Flow, Observed, Verdict};
use cordon_flow::ocsf::OCSF_VERSION;
use cordon_store::topology_label;

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn int32(name: &str) -> Field {
    Field::new(name, DataType::Int32, false)
}

fn int64(name: &str) -> Field {
    Field::new(name, DataType::Int64, false)
}

fn time(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    )
}

fn strings(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        false,
    )
}

fn endpoint() -> Fields {
    Fields::from(vec![
        utf8("ip", false),
        int32("port"),
        utf8("hostname", true),
        utf8("name", true),
    ])
}

fn traffic() -> Fields {
    Fields::from(vec![
        int64("bytes_out"),
        int64("bytes_in"),
        int64("bytes"),
        int64("packets_out"),
        int64("packets_in"),
        int64("packets"),
    ])
}

fn connection_info() -> Fields {
    Fields::from(vec![
        int32("protocol_num"),
        utf8("protocol_name", false),
        int32("direction_id"),
    ])
}

fn cordon() -> Fields {
    Fields::from(vec![
        utf8("verdict", true),
        utf8("rule", true),
        utf8("src_group", false),
        utf8("dst_group", false),
        strings("src_groups"),
        strings("dst_groups"),
        utf8("vendor", true),
        utf8("observed", true),
        Field::new("reversed", DataType::Boolean, false),
        Field::new("attrs", attrs_type(), false),
    ])
}

/// `unmapped.cordon.attrs`: the flow's source-specific attributes
/// (`tcp_flags`, `interface`...), a map engines index by key.
fn attrs_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ])),
            false,
        )),
        false,
    )
}

fn metadata() -> Fields {
    Fields::from(vec![
        utf8("version", false),
        utf8("log_name", false),
        Field::new(
            "product",
            DataType::Struct(Fields::from(vec![
                utf8("name", false),
                utf8("vendor_name", false),
            ])),
            false,
        ),
    ])
}

/// The schema of a Network Activity file.
pub fn network_activity_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        time("time"),
        time("start_time"),
        time("end_time"),
        int32("class_uid"),
        int32("category_uid"),
        int32("activity_id"),
        int64("type_uid"),
        int32("severity_id"),
        int32("action_id"),
        utf8("action", false),
        Field::new("disposition_id", DataType::Int32, true),
        utf8("disposition", true),
        Field::new("src_endpoint", DataType::Struct(endpoint()), false),
        Field::new("dst_endpoint", DataType::Struct(endpoint()), false),
        Field::new(
            "connection_info",
            DataType::Struct(connection_info()),
            false,
        ),
        Field::new("traffic", DataType::Struct(traffic()), false),
        Field::new(
            "firewall_rule",
            DataType::Struct(Fields::from(vec![utf8("name", false), utf8("desc", false)])),
            true,
        ),
        Field::new("metadata", DataType::Struct(metadata()), false),
        Field::new(
            "unmapped",
            DataType::Struct(Fields::from(vec![Field::new(
                "cordon",
                DataType::Struct(cordon()),
                false,
            )])),
            false,
        ),
    ]))
}

struct Endpoint {
    ip: StringBuilder,
    port: Int32Builder,
    hostname: StringBuilder,
    name: StringBuilder,
}

impl Endpoint {
    fn new() -> Endpoint {
        Endpoint {
            ip: StringBuilder::new(),
            port: Int32Builder::new(),
            hostname: StringBuilder::new(),
            name: StringBuilder::new(),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, arrow_schema::ArrowError> {
        Ok(Arc::new(StructArray::try_new(
            endpoint(),
            vec![
                Arc::new(self.ip.finish()),
                Arc::new(self.port.finish()),
                Arc::new(self.hostname.finish()),
                Arc::new(self.name.finish()),
            ],
            None,
        )?))
    }
}

/// Flows gathered column by column until a batch is taken.
pub struct NetworkActivity {
    schema: SchemaRef,
    rows: usize,
    time: TimestampMillisecondBuilder,
    start: TimestampMillisecondBuilder,
    end: TimestampMillisecondBuilder,
    action_id: Int32Builder,
    action: StringBuilder,
    disposition_id: Int32Builder,
    disposition: StringBuilder,
    src: Endpoint,
    dst: Endpoint,
    protocol_num: Int32Builder,
    protocol_name: StringBuilder,
    direction_id: Int32Builder,
    traffic: [Int64Builder; 6],
    rule_name: StringBuilder,
    rule_desc: StringBuilder,
    rule_valid: Vec<bool>,
    log_name: StringBuilder,
    verdict: StringBuilder,
    rule: StringBuilder,
    src_group: StringBuilder,
    dst_group: StringBuilder,
    src_groups: ListBuilder<StringBuilder>,
    dst_groups: ListBuilder<StringBuilder>,
    vendor: StringBuilder,
    observed: StringBuilder,
    reversed: BooleanBuilder,
    attrs: MapBuilder<StringBuilder, StringBuilder>,
    text: String,
}

impl Default for NetworkActivity {
    fn default() -> Self {
        Self::new()
    }
}

impl NetworkActivity {
    /// No rows yet.
    pub fn new() -> NetworkActivity {
        NetworkActivity {
            schema: network_activity_schema(),
            rows: 0,
            time: TimestampMillisecondBuilder::new(),
            start: TimestampMillisecondBuilder::new(),
            end: TimestampMillisecondBuilder::new(),
            action_id: Int32Builder::new(),
            action: StringBuilder::new(),
            disposition_id: Int32Builder::new(),
            disposition: StringBuilder::new(),
            src: Endpoint::new(),
            dst: Endpoint::new(),
            protocol_num: Int32Builder::new(),
            protocol_name: StringBuilder::new(),
            direction_id: Int32Builder::new(),
            traffic: std::array::from_fn(|_| Int64Builder::new()),
            rule_name: StringBuilder::new(),
            rule_desc: StringBuilder::new(),
            rule_valid: Vec::new(),
            log_name: StringBuilder::new(),
            verdict: StringBuilder::new(),
            rule: StringBuilder::new(),
            src_group: StringBuilder::new(),
            dst_group: StringBuilder::new(),
            src_groups: ListBuilder::new(StringBuilder::new()),
            dst_groups: ListBuilder::new(StringBuilder::new()),
            vendor: StringBuilder::new(),
            observed: StringBuilder::new(),
            reversed: BooleanBuilder::new(),
            attrs: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            text: String::new(),
        }
    }

    /// Rows gathered since the last batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row is gathered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Add one flow.
    pub fn push(&mut self, flow: &Flow) {
        self.rows += 1;
        let e = flow.enrichment.as_deref();
        let (action_id, action) = match (e.map(|e| e.verdict), flow.observed) {
            (Some(Verdict::Deny), _) | (None, Some(Observed::Rejected)) => (2, "Denied"),
            (Some(_), _) | (None, Some(Observed::Accepted)) => (1, "Allowed"),
            (None, None) => (0, "Unknown"),
        };
        self.time.append_value(flow.end_ms);
        self.start.append_value(flow.start_ms);
        self.end.append_value(flow.end_ms);
        self.action_id.append_value(action_id);
        self.action.append_value(action);
        match e.map(|e| e.verdict) {
            Some(v) => {
                let (id, name) = match v {
                    Verdict::Allow => (1, "Allowed"),
                    Verdict::Deny => (2, "Blocked"),
                    Verdict::WouldDeny => (15, "Detected"),
                };
                self.disposition_id.append_value(id);
                self.disposition.append_value(name);
                self.rule_name
                    .append_value(e.and_then(|e| e.rule.as_deref()).unwrap_or("default"));
                self.text.clear();
                let _ = write!(self.text, "{v}");
                self.rule_desc.append_value(&self.text);
                self.rule_valid.push(true);
                self.verdict.append_value(&self.text);
            }
            None => {
                self.disposition_id.append_null();
                self.disposition.append_null();
                self.rule_name.append_value("");
                self.rule_desc.append_value("");
                self.rule_valid.push(false);
                self.verdict.append_null();
            }
        }
        for (side, ip, port, name) in [
            (
                &mut self.src,
                flow.src_ip,
                flow.src_port,
                e.and_then(|e| e.src_workload.as_deref()),
            ),
            (
                &mut self.dst,
                flow.dst_ip,
                flow.dst_port,
                e.and_then(|e| e.dst_workload.as_deref()),
            ),
        ] {
            self.text.clear();
            let _ = write!(self.text, "{ip}");
            side.ip.append_value(&self.text);
            side.port.append_value(i32::from(port));
            side.name.append_option(name);
        }
        self.src.hostname.append_null();
        self.dst.hostname.append_option(flow.hostname.as_deref());
        self.protocol_num.append_value(i32::from(flow.protocol));
        self.protocol_name.append_value(
            cordon_core::Protocol(flow.protocol)
                .keyword()
                .unwrap_or("other"),
        );
        self.direction_id.append_value(match flow.direction {
            Some(Direction::Ingress) => 1,
            Some(Direction::Egress) => 2,
            None => 0,
        });
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (b, v) in self.traffic.iter_mut().zip([
            flow.bytes_out,
            flow.bytes_in,
            flow.bytes_out.saturating_add(flow.bytes_in),
            flow.packets_out,
            flow.packets_in,
            flow.packets_out.saturating_add(flow.packets_in),
        ]) {
            b.append_value(as_i64(v));
        }
        self.log_name.append_value(flow.source.as_str());
        self.rule.append_option(e.and_then(|e| e.rule.as_deref()));
        let src_groups = e.map(|e| &e.src_groups[..]);
        let dst_groups = e.map(|e| &e.dst_groups[..]);
        self.src_group
            .append_value(topology_label(src_groups, flow.src_ip));
        self.dst_group
            .append_value(topology_label(dst_groups, flow.dst_ip));
        for (list, groups) in [
            (&mut self.src_groups, src_groups),
            (&mut self.dst_groups, dst_groups),
        ] {
            for g in groups.unwrap_or_default() {
                list.values().append_value(g);
            }
            list.append(true);
        }
        self.vendor
            .append_option(e.and_then(|e| e.vendor.as_deref()));
        self.observed.append_option(flow.observed.map(|o| match o {
            Observed::Accepted => "accepted",
            Observed::Rejected => "rejected",
        }));
        self.reversed.append_value(flow.orientation.is_reversed());
        for (k, v) in flow.attrs.iter() {
            self.attrs.keys().append_value(k);
            self.attrs.values().append_value(v);
        }
        // Appending an entry list to a map builder cannot fail.
        let _ = self.attrs.append(true);
    }

    /// The rows gathered as one batch; the builders start again empty.
    ///
    /// # Errors
    /// The columns do not fit the schema (a bug).
    pub fn take(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let n = std::mem::take(&mut self.rows);
        let constant_i32 =
            |v: i32| -> ArrayRef { Arc::new(arrow_array::Int32Array::from(vec![v; n])) };
        let constant_str = |v: &str| -> ArrayRef {
            Arc::new(arrow_array::StringArray::from_iter_values(
                std::iter::repeat_n(v, n),
            ))
        };
        let utc = |b: &mut TimestampMillisecondBuilder| -> ArrayRef {
            Arc::new(b.finish().with_timezone("UTC"))
        };
        let traffic: Vec<ArrayRef> = self
            .traffic
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let rule_valid = std::mem::take(&mut self.rule_valid);
        let firewall_rule = StructArray::try_new(
            Fields::from(vec![utf8("name", false), utf8("desc", false)]),
            vec![
                Arc::new(self.rule_name.finish()),
                Arc::new(self.rule_desc.finish()),
            ],
            Some(rule_valid.into()),
        )?;
        let product = StructArray::try_new(
            Fields::from(vec![utf8("name", false), utf8("vendor_name", false)]),
            vec![constant_str("Cordon"), constant_str("Cordon")],
            None,
        )?;
        let metadata = StructArray::try_new(
            metadata(),
            vec![
                constant_str(OCSF_VERSION),
                Arc::new(self.log_name.finish()),
                Arc::new(product),
            ],
            None,
        )?;
        let cordon = StructArray::try_new(
            cordon(),
            vec![
                Arc::new(self.verdict.finish()),
                Arc::new(self.rule.finish()),
                Arc::new(self.src_group.finish()),
                Arc::new(self.dst_group.finish()),
                Arc::new(self.src_groups.finish()),
                Arc::new(self.dst_groups.finish()),
                Arc::new(self.vendor.finish()),
                Arc::new(self.observed.finish()),
                Arc::new(self.reversed.finish()),
                Arc::new(self.attrs.finish()),
            ],
            None,
        )?;
        let unmapped = StructArray::try_new(
            Fields::from(vec![Field::new(
                "cordon",
                DataType::Struct(self::cordon()),
                false,
            )]),
            vec![Arc::new(cordon)],
            None,
        )?;
        let columns: Vec<ArrayRef> = vec![
            utc(&mut self.time),
            utc(&mut self.start),
            utc(&mut self.end),
            constant_i32(4001),
            constant_i32(4),
            constant_i32(6),
            Arc::new(arrow_array::Int64Array::from(vec![400_106_i64; n])),
            constant_i32(1),
            Arc::new(self.action_id.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.disposition_id.finish()),
            Arc::new(self.disposition.finish()),
            self.src.finish()?,
            self.dst.finish()?,
            Arc::new(StructArray::try_new(
                connection_info(),
                vec![
                    Arc::new(self.protocol_num.finish()),
                    Arc::new(self.protocol_name.finish()),
                    Arc::new(self.direction_id.finish()),
                ],
                None,
            )?),
            Arc::new(StructArray::try_new(self::traffic(), traffic, None)?),
            Arc::new(firewall_rule),
            Arc::new(metadata),
            Arc::new(unmapped),
        ];
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}
