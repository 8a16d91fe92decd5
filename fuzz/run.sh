#!/usr/bin/env bash
# Run one fuzz target with coverage instrumentation on the stable toolchain.
#   fuzz/run.sh policy_parse 300      # target, seconds
# Targets: policy_parse, inventory_parse, policy_bundle, names, flow_lines, flow_documents, netflow, pcap_capture, audit_events, detection_inputs, gateway_inputs, agent_inputs, server_inputs, response_inputs, taxii_inputs. Crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [SECONDS]}
seconds=${2:-60}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
# Instrument only our code's target; build scripts and proc-macros stay plain
# because of the explicit --target.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
triple=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --target "$triple" --bin "$target"
mkdir -p "corpus/$target" artifacts
case $target in
  policy_parse) cp -n ../examples/*.yaml ../crates/cordon-policy/tests/corpus/*.policy.yaml "corpus/$target/" ;;
  inventory_parse) cp -n ../examples/acme-inventory.yaml ../crates/cordon-policy/tests/inventory/* "corpus/$target/" 2>/dev/null || true ;;
  flow_lines|flow_documents) cp -n ../crates/cordon-flow/samples/*.{log,json,jsonl} "corpus/$target/" ;;
  audit_events)
    printf '%s' '{"Records":[{"eventVersion":"1.08","eventTime":"2026-03-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutBucketPolicy","sourceIPAddress":"198.51.100.7","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/r/s","accountId":"111122223333"},"recipientAccountId":"111122223333","requestParameters":{"bucketName":"b","bucketPolicy":{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}}}]}' > "corpus/$target/cloudtrail.json"
    printf '%s' '{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"logging.googleapis.com","methodName":"google.logging.v2.ConfigServiceV2.DeleteSink"},"timestamp":"2026-03-01T10:00:00Z"}' > "corpus/$target/gcp.json" ;;
  response_inputs) cp -n ../examples/responses.yaml ../examples/playbook.yaml "corpus/$target/" ;;
  taxii_inputs)
    printf '%s' '{"objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-12-01T10:00:00.000Z","modified":"2026-12-01T10:00:00.000Z","pattern":"[ipv4-addr:value = '"'"'198.51.100.7'"'"']","pattern_type":"stix","valid_from":"2026-12-01T10:00:00Z","created_by_ref":"identity--ef84a4a1-1574-4b68-9b46-16dddbf9790b"}]}' > "corpus/$target/envelope.json"
    printf '%s' 'limit=1&added_after=2026-12-01T10:00:00.123456Z&match[type]=indicator,malware&match[version]=first,2026-12-01T10:00:00Z&next=AAZiBi05t6wAAAAAAAAAAhVbIMbEfBAWzqtYTV9ja4w' > "corpus/$target/query"
    printf '%s' 'application/taxii+json;version=2.1, */*;q=0.1' > "corpus/$target/accept" ;;
esac
"$CARGO_TARGET_DIR/$triple/release/$target" "corpus/$target" \
  -max_total_time="$seconds" -max_len=65536 -artifact_prefix="artifacts/$target-"
