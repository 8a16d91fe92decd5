# Sourced by the bench scripts: sets `cordon` to $CORDON_BIN when given
# (to score another build), else to a release build of this checkout.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/cordon/target}
if [ -n "${CORDON_BIN:-}" ]; then
  cordon=$CORDON_BIN
else
  cargo build --release -q --bin cordon
  cordon="$CARGO_TARGET_DIR/release/cordon"
fi
