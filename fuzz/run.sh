#!/usr/bin/env bash
# Run one fuzz target with coverage instrumentation on the stable toolchain.
#   fuzz/run.sh policy_parse 300      # target, seconds
# Targets: policy_parse, inventory_parse, names, flow_lines, flow_documents, netflow, pcap_capture, detection_inputs, gateway_inputs, agent_inputs, server_inputs, response_inputs. Crashes land in fuzz/artifacts/.
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
  response_inputs) cp -n ../examples/responses.yaml ../examples/playbook.yaml "corpus/$target/" ;;
esac
"$CARGO_TARGET_DIR/$triple/release/$target" "corpus/$target" \
  -max_total_time="$seconds" -max_len=65536 -artifact_prefix="artifacts/$target-"
