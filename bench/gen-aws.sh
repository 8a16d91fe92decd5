#!/usr/bin/env bash
# Write N synthetic AWS VPC Flow Log records (version 2, 4,000 sources in
# 10.0.0.0/16 talking to 200 servers, 5% rejected, a thousand a second)
# to FILE, unless FILE already holds them. Shared by the bench scripts.
# Usage: bench/gen-aws.sh N FILE
set -euo pipefail
n=${1:?usage: gen-aws.sh N FILE}
aws=${2:?usage: gen-aws.sh N FILE}
[ -s "$aws" ] && exit 0
echo "generating $n AWS VPC flow log records..." >&2
awk -v n="$n" 'BEGIN { srand(7); for (i = 0; i < n; i++) {
  s = int(rand() * 4000); d = int(rand() * 200) + 1;
  printf "2 123456789012 eni-0a1b2c3d 10.0.%d.%d 10.0.2.%d %d %d 6 %d %d %d %d %s OK\n",
    int(s / 250), s % 250 + 1, d, 30000 + int(rand() * 30000), (rand() < 0.2) ? 443 : 5432,
    1 + int(rand() * 50), 60 + int(rand() * 100000), 1700000000 + int(i / 1000), 1700000060 + int(i / 1000),
    (rand() < 0.05) ? "REJECT" : "ACCEPT" } }' > "$aws"
